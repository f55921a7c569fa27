"""PReF against its peers on the same data: pooled RLHF, per-user, VPL, PAL-B and LoRe.

Runs ``preflm.eval.run.run_evaluation`` with PReF (active and random questions), the known-phi bound and
every baseline on (1) the Attributes world and (2) the DSP data when ``../shared/data/dsp`` is present,
with the default featurizer. Writes, per dataset, ``results.json`` and ``report.md`` (+ plots) under
``benchmarks/results/baselines_<dataset>/``, and ``benchmarks/results/baselines_summary.md`` with
accuracy and AUC at 5/10/20/40 answers (95% intervals) and training time per method.

All methods run with one CPU thread (torch, BLAS): the models are small, and on shared cores
multi-threaded small ops spin and run many times slower, which would distort training times.

    python benchmarks/baselines.py [--seeds 3] [--datasets attributes,dsp]
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from unseen_prompts import prepare  # noqa: E402

from preflm.baselines import BASELINE_NAMES, register_baselines  # noqa: E402
from preflm.eval.harness import HarnessConfig  # noqa: E402
from preflm.eval.report import write_report  # noqa: E402
from preflm.eval.run import run_evaluation, save_results  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
BUDGETS = [1, 2, 3, 5, 10, 15, 20, 30, 40]
TABLE_BUDGETS = ("5", "10", "20", "40")
METHODS = ["pref", *BASELINE_NAMES]


def _cell(entry: dict) -> str:
    low, high = entry["ci"]
    half = (high - low) / 2 if low == low else float("nan")
    return f"{entry['mean']:.3f} ± {half:.3f}"


def summary_table(results: dict, metric: str) -> list[str]:
    """Markdown rows: method, strategy, train seconds, metric at 5/10/20/40 answers."""
    lines = [
        "| method | questions | train s | " + " | ".join(f"{metric} @{b}" for b in TABLE_BUDGETS) + " |",
        "|---|---|---|" + "---|" * len(TABLE_BUDGETS),
    ]
    for name, entry in results["methods"].items():
        for strategy, per_budget in entry["strategies"].items():
            cells = [_cell(per_budget[b][metric]) if b in per_budget else "–" for b in TABLE_BUDGETS]
            lines.append(f"| {name} | {strategy} | {entry['train_seconds']:.1f} | " + " | ".join(cells) + " |")
    if "oracle" in results:
        lines.append(f"| oracle (true reward) | – | – | {_cell(results['oracle'][metric])} | | | |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--datasets", default="attributes,dsp")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads for every method")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    register_baselines()
    command = f"python benchmarks/baselines.py --seeds {args.seeds} --datasets {args.datasets}"
    summary = [
        "# PReF vs baselines",
        "",
        f"Command: `{command}`",
        f"Machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores (shared), "
        f"torch threads {args.threads}. Featurizer minilm+stats; budgets {BUDGETS}; seeds {args.seeds}.",
        "Baselines see each new user's pool answers in one shared random order; PReF also chooses "
        "questions actively. Cells: mean over new users ± half-width of the 95% t-interval.",
        "",
    ]
    with tempfile.TemporaryDirectory(prefix="preflm-baselines-") as tmp:
        for dataset in [d.strip() for d in args.datasets.split(",") if d.strip()]:
            data = prepare(dataset, Path(tmp))
            if data is None:
                summary += [f"## {dataset}", "", "Skipped: data not available.", ""]
                continue
            start = time.perf_counter()
            results = run_evaluation(
                data,
                featurizer="minilm+stats",
                harness_config=HarnessConfig(budgets=BUDGETS, seeds=args.seeds),
                methods=METHODS,
                ablations=False,
                known_phi=True,
            )
            results["wall_seconds"] = time.perf_counter() - start
            results["dataset"] = dataset
            results["torch_threads"] = args.threads
            out = RESULTS / f"baselines_{dataset}"
            save_results(results, out / "results.json")
            write_report(results, out, f"PReF vs baselines: {dataset}", command)
            summary += [
                f"## {dataset}",
                "",
                f"{results['n_seen_users']} seen users, {results['n_new_users']} new users, "
                f"{results['n_train_answers']} train answers; whole run {results['wall_seconds']:.0f} s. "
                f"Plots and full tables: [report](baselines_{dataset}/report.md).",
                "",
                *summary_table(results, "accuracy"),
                "",
                *summary_table(results, "auc"),
                "",
            ]
            print(json.dumps({m: e["train_seconds"] for m, e in results["methods"].items()}, indent=1))
    path = RESULTS / "baselines_summary.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(summary) + "\n")
    print(path.read_text())


if __name__ == "__main__":
    main()
