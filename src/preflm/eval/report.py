"""Markdown report with PNG plots from the harness's JSON results."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

TABLE_BUDGETS = ("5", "10", "20", "40")


def _fmt(entry: dict | None) -> str:
    if not entry:
        return "–"
    low, high = entry["ci"]
    if low != low:
        return f"{entry['mean']:.3f}"
    return f"{entry['mean']:.3f} ± {(high - low) / 2:.3f}"


def _curve(ax, strategies: dict, strategy: str, metric: str, label: str, style: str) -> None:
    budgets = sorted(int(b) for b in strategies[strategy])
    means = [strategies[strategy][str(b)][metric]["mean"] for b in budgets]
    lows = [strategies[strategy][str(b)][metric]["ci"][0] for b in budgets]
    highs = [strategies[strategy][str(b)][metric]["ci"][1] for b in budgets]
    line = ax.plot(budgets, means, style, label=label)[0]
    ax.fill_between(budgets, lows, highs, color=line.get_color(), alpha=0.15)


def plot_curves(results: dict, metric: str, path: Path, methods: list[str] | None = None) -> Path:
    """Metric vs number of answers: each method and strategy, with the oracle as a line."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, entry in results["methods"].items():
        if methods is not None and name not in methods:
            continue
        for strategy in entry["strategies"]:
            style = "-" if strategy == "active" else "--"
            _curve(ax, entry["strategies"], strategy, metric, f"{name} ({strategy})", style)
    if "oracle" in results:
        ax.axhline(results["oracle"][metric]["mean"], color="black", linestyle=":", label="oracle (true reward)")
    ax.set_xlabel("answers from the new user")
    ax.set_ylabel(f"held-out {metric}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_bars(labels: list[str], values: list[float], errors: list[float], title: str, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 3.8))
    ax.bar(labels, values, yerr=errors, capsize=4, color="#4c72b0")
    ax.set_ylim(max(0.0, min(values) - 0.1), min(1.0, max(values) + 0.05))
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    plt.setp(ax.get_xticklabels(), rotation=20, ha="right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _half_width(entry: dict) -> float:
    low, high = entry["ci"]
    return 0.0 if low != low else (high - low) / 2


def write_report(results: dict, directory: str | Path, title: str, command: str, table=None) -> Path:
    """Write ``report.md`` and its PNG plots into ``directory``; returns the markdown path.

    ``table`` (the harness's long table) adds paired per-user differences.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    lines = [f"# {title}", "", f"Command: `{command}`", ""]
    lines += [
        f"Seen users: {results['n_seen_users']}, new users: {results['n_new_users']}, "
        f"train answers: {results['n_train_answers']}, mean pool/test answers per new user: "
        f"{results['mean_pool_size']:.0f}/{results['mean_test_size']:.0f}, seeds: {results['seeds']}.",
        f"Featurizer: `{results.get('featurizer', '?')}` ({results.get('n_items', '?')} texts, "
        f"{results.get('featurize_seconds', float('nan')):.0f} s to featurize; cached texts cost nothing).",
        "Accuracy: sign of the predicted reward difference vs the answer, ties excluded. "
        "Figures are means over new users with 95% t-intervals (±).",
        "",
    ]
    for metric in ("accuracy", "auc"):
        lines += [f"## {metric.upper() if metric == 'auc' else 'Accuracy'} by number of answers", ""]
        header = "| method | strategy | train s | " + " | ".join(f"{b} answers" for b in TABLE_BUDGETS) + " |"
        lines += [header, "|" + "---|" * (3 + len(TABLE_BUDGETS))]
        for name, entry in results["methods"].items():
            for strategy, per_budget in entry["strategies"].items():
                cells = [_fmt(per_budget.get(b, {}).get(metric)) for b in TABLE_BUDGETS]
                lines.append(f"| {name} | {strategy} | {entry['train_seconds']:.1f} | " + " | ".join(cells) + " |")
        if "oracle" in results:
            lines.append(f"| oracle (true reward) | – | – | {_fmt(results['oracle'][metric])} | | | |")
        plot = plot_curves(results, metric, directory / f"{metric}_vs_answers.png")
        lines += ["", f"![{metric} vs answers]({plot.name})", ""]

    rivals = [
        (name, strategy)
        for name, entry in results["methods"].items()
        if name != "known_phi"
        for strategy in entry["strategies"]
        if (name, strategy) != ("pref", "active")
    ]
    if "pref" in results["methods"] and rivals and table is not None:
        from preflm.eval.harness import paired_difference

        lines += [
            "## Paired accuracy differences: PReF (active) minus each method",
            "",
            "Same new users, same answers: mean per-user difference with a paired 95% t-interval; "
            "an interval above 0 means PReF is better.",
            "",
            "| method | strategy | " + " | ".join(f"{b} answers" for b in TABLE_BUDGETS) + " |",
            "|" + "---|" * (2 + len(TABLE_BUDGETS)),
        ]
        for name, strategy in rivals:
            cells = [
                _fmt(paired_difference(table, ("pref", "active"), (name, strategy), int(b)))
                if b in results["methods"][name]["strategies"][strategy]
                and b in results["methods"]["pref"]["strategies"].get("active", {})
                else "–"
                for b in TABLE_BUDGETS
            ]
            lines.append(f"| {name} | {strategy} | " + " | ".join(cells) + " |")
        lines.append("")

    validation = {n: e["validation_accuracy"] for n, e in results["methods"].items() if "validation_accuracy" in e}
    if validation:
        lines += ["## Seen-user validation accuracy", ""]
        for name, value in validation.items():
            share = results["methods"][name].get("svd_init_used")
            kept = f" (SVD initialization kept in {share:.0%} of the seeds)" if share is not None else ""
            chosen_j = results["methods"][name].get("n_factors_by_seed")
            kept += f"; J chosen per seed: {', '.join(map(str, chosen_j))}" if chosen_j else ""
            strengths = results["methods"][name].get("residual_strength_by_seed")
            kept += f"; residual prior strength chosen per seed: {', '.join(f'{v:g}' for v in strengths)}" if strengths else ""
            lines.append(f"- {name}: {value:.3f}{kept}")
        lines.append("")

    ablation = [
        n for n in ("pref", "pref_svd_init", "pref_no_svd_init", "pref_no_l2", "pref_no_residual")
        if "10" in results["methods"].get(n, {}).get("strategies", {}).get("active", {})
    ]
    if len(ablation) > 1:
        entries = [results["methods"][n]["strategies"]["active"]["10"] for n in ablation]
        plot = plot_bars(
            ablation, [e["auc"]["mean"] for e in entries], [_half_width(e["auc"]) for e in entries],
            "Ablations: AUC after 10 active answers", directory / "ablations.png",
        )
        lines += ["## Ablations (10 active answers)", "", f"![ablations]({plot.name})", ""]

    if "j_sweep" in results:
        sweep = results["j_sweep"]
        budgets = list(next(iter(sweep.values())))
        header = " | ".join(f"acc@{b} | AUC@{b}" for b in budgets)
        lines += ["## Number of base rewards J (active questions)", "", f"| J | {header} |",
                  "|---|" + "---|---|" * len(budgets)]
        for J, per_budget in sweep.items():
            cells = " | ".join(f"{_fmt(per_budget[b]['accuracy'])} | {_fmt(per_budget[b]['auc'])}" for b in budgets)
            lines.append(f"| {J} | {cells} |")
        first = budgets[0]
        plot = plot_bars(
            [f"J={J}" for J in sweep], [sweep[J][first]["auc"]["mean"] for J in sweep],
            [_half_width(sweep[J][first]["auc"]) for J in sweep], f"AUC after {first} active answers by J",
            directory / "j_sweep.png",
        )
        lines += ["", f"![J sweep]({plot.name})", ""]
    path = directory / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
