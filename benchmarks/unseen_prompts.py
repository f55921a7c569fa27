"""Featurizers side by side on the unseen-prompts protocol (issue 10): Attributes world and DSP.

For each dataset (written with unseen-prompt splits: no prompt of a new user's pool or test is in
training) and each featurizer, runs PReF (active and random questions) and the per-user baseline on
the same users and answers, plus the known-phi bound and the oracle. Besides the new users' figures it
reports a *seen-user prompt-held-out validation accuracy*: PReF fitted on the seen users' answers to
85% of the training prompts and scored on the other 15%. That figure never looks at new users, so
it is the one to choose featurizers and regularization by.

Caveat while ``RewardFactorization.fit`` holds out random answers (not whole prompts) for early
stopping: its internal stopping point is chosen on answers whose prompts it also trains on.

Variants are ``name:key=value,key=value`` FactorizeConfig overrides, e.g. ``linear:head=linear``.
Writes ``<out>/<dataset>.json`` and ``<out>/summary.md``.

    python benchmarks/unseen_prompts.py [--datasets attributes,dsp] [--featurizers minilm+stats,ngrams+stats]
        [--variants default] [--seeds 3] [--out benchmarks/results/unseen]
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
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from preflm.baselines import per_user_method  # noqa: E402
from preflm.data import AnswerMatrix, load_preferences, split_answers  # noqa: E402
from preflm.data.split import prompt_holdout_mask  # noqa: E402
from preflm.eval.harness import (  # noqa: E402
    HarnessConfig,
    evaluate_methods,
    known_phi_method,
    paired_difference,
    pref_method,
    summarize,
)
from preflm.factorize import FactorizeConfig, RewardFactorization  # noqa: E402
from preflm.factorize.pipeline import featurize_items  # noqa: E402
from preflm.featurize import CachedFeaturizer, featurizer_from_name  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DSP_SOURCE = Path(
    os.environ.get("PREFLM_DSP", ROOT.parent / "shared" / "data" / "dsp" / "domain_specific_preference.part1.json")
)
BUDGETS = [5, 10, 20, 40]


def pref_vs_per_user(features, split, config: FactorizeConfig, harness: HarnessConfig) -> dict:
    """PReF (active and random questions) and the per-user baseline, with paired per-user differences."""
    table, info = evaluate_methods(features, split, [pref_method("pref", config), per_user_method()], harness, progress=False)
    results = summarize(table, info)
    results["paired"] = {
        f"pref_active-per_user@{b}": paired_difference(table, ("pref", "active"), ("per_user", "random"), b)
        for b in harness.budgets
    }
    results["paired"]["pref_active-pref_random@10"] = paired_difference(table, ("pref", "active"), ("pref", "random"), 10)
    return results


def prepare(name: str, workdir: Path) -> Path | None:
    """The dataset's JSONL (unseen-prompt splits, the writers' default), or None when its source is missing."""
    if name == "attributes":
        from preflm.simulate import write_world

        return write_world(workdir / "attributes.jsonl")
    if name == "dsp":
        if not DSP_SOURCE.is_file():
            print(f"skipping DSP: {DSP_SOURCE} not found")
            return None
        from preflm.simulate.dsp import write_dsp_dataset

        return write_dsp_dataset(DSP_SOURCE, workdir / "dsp.jsonl", seed=0)
    raise ValueError(f"unknown dataset {name!r}: use attributes or dsp")


def parse_variant(text: str) -> tuple[str, dict]:
    """``name:key=value,...`` -> (name, overrides); values parsed as JSON where they can be."""
    name, _, rest = text.partition(":")
    overrides = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    return name, overrides


def prompt_validation(features: np.ndarray, train: AnswerMatrix, config: FactorizeConfig, seeds: int) -> dict:
    """Seen users' accuracy on 15% of the training prompts held out from fitting, over seeds."""
    scores = []
    for seed in range(seeds):
        held = prompt_holdout_mask(train, 0.15, seed=1000 + seed)
        model = RewardFactorization(replace(config, seed=seed)).fit(features, train.subset(~held), progress=False)
        scores.append(model.score(features, train.subset(held)))
    return {"mean": float(np.mean(scores)), "per_seed": [float(s) for s in scores]}


def run_dataset(path: Path, featurizers: list[str], variants: list[str], seeds: int) -> dict:
    matrix = AnswerMatrix.from_frame(load_preferences(path), source=str(path))
    split = split_answers(matrix)
    harness = HarnessConfig(budgets=BUDGETS, strategies=("active", "random"), seeds=seeds)
    out: dict = {"dataset": path.name, "n_items": int(matrix.n_items), "runs": {}}
    if matrix.item_true_features is not None:
        bound = summarize(*evaluate_methods(np.zeros((matrix.n_items, 1)), split,
                                            [known_phi_method(matrix.item_true_features)], harness, progress=False))
        out["known_phi"] = bound["methods"]["known_phi"]
        out["oracle"] = bound.get("oracle")
        out.update({k: bound[k] for k in ("n_seen_users", "n_new_users", "n_train_answers", "mean_pool_size", "mean_test_size")})
    for name in featurizers:
        featurizer = CachedFeaturizer(featurizer_from_name(name))
        started = time.perf_counter()
        features = featurize_items(matrix, featurizer)
        featurize_seconds = time.perf_counter() - started
        for variant in variants:
            label, overrides = parse_variant(variant)
            config = FactorizeConfig(**overrides)
            started = time.perf_counter()
            results = pref_vs_per_user(features, split, config, harness)
            validation = prompt_validation(features, split.train, config, seeds)
            key = f"{name} | {label}"
            results["methods"]["pref"]["prompt_validation_accuracy"] = validation
            out["runs"][key] = {
                "featurizer": name,
                "featurizer_spec": featurizer.spec(),
                "variant": label,
                "factorize_config": config.to_dict(),
                "featurize_seconds": featurize_seconds,
                "seconds": time.perf_counter() - started,
                "methods": results["methods"],
                "paired": results["paired"],
            }
            pref = results["methods"]["pref"]["strategies"]
            print(
                f"{path.name} {key}: active acc@10 {pref['active']['10']['accuracy']['mean']:.3f} "
                f"random {pref['random']['10']['accuracy']['mean']:.3f} "
                f"per-user {results['methods']['per_user']['strategies']['random']['10']['accuracy']['mean']:.3f} "
                f"prompt-val {validation['mean']:.3f} ({featurize_seconds:.0f}s features)",
                flush=True,
            )
    return out


def _cell(entry: dict) -> str:
    low, high = entry["ci"]
    return f"{entry['mean']:.3f} ± {(high - low) / 2:.3f}"


def summary(all_results: dict, command: str) -> str:
    lines = [
        "# Featurizers on the unseen-prompts protocol",
        "",
        f"Command: `{command}`. Machine: {platform.machine()} CPU, {os.cpu_count()} cores "
        "(the 2-core development box unless stated), torch threads 1.",
        "Accuracy (ties excluded) and AUC over new users, mean ± 95% half-interval, seeds averaged per user first. "
        "`prompt-val`: seen users' accuracy on training prompts held out from fitting (selection criterion).",
        "Caveat: `RewardFactorization.fit` still early-stops on random held-out answers, not whole prompts.",
        "",
    ]
    for dataset, res in all_results.items():
        lines += [f"## {dataset}", ""]
        if "oracle" in res and res["oracle"]:
            known = res["known_phi"]["strategies"]["active"]
            lines.append(
                f"{res['n_seen_users']} seen users ({res['n_train_answers']} answers), {res['n_new_users']} new users "
                f"(pool {res['mean_pool_size']:.0f}, test {res['mean_test_size']:.0f} answers each). "
                f"Oracle accuracy {_cell(res['oracle']['accuracy'])}; known φ active acc@10 {_cell(known['10']['accuracy'])}."
            )
            lines.append("")
        head = "| featurizer | variant | method | " + " | ".join(f"acc@{b}" for b in BUDGETS) + " | AUC@10 | prompt-val | feat. s |"
        lines += [head, "|" + "---|" * (head.count("|") - 1)]
        for key, run in res["runs"].items():
            rows = [("PReF active", run["methods"]["pref"]["strategies"]["active"]),
                    ("PReF random", run["methods"]["pref"]["strategies"]["random"]),
                    ("per-user", run["methods"]["per_user"]["strategies"]["random"])]
            for i, (method, per_budget) in enumerate(rows):
                val = f"{run['methods']['pref']['prompt_validation_accuracy']['mean']:.3f}" if i == 0 else ""
                seconds = f"{run['featurize_seconds']:.0f}" if i == 0 else ""
                cells = " | ".join(_cell(per_budget[str(b)]["accuracy"]) for b in BUDGETS)
                lines.append(f"| {run['featurizer']} | {run['variant']} | {method} | {cells} | "
                             f"{_cell(per_budget['10']['auc'])} | {val} | {seconds} |")
        lines += ["", "Paired per-user differences (mean ± 95% half-interval):", "",
                  "| featurizer | variant | " + " | ".join(f"active − per-user @{b}" for b in BUDGETS) + " | active − random @10 |",
                  "|---|---|" + "---|" * (len(BUDGETS) + 1)]
        for key, run in res["runs"].items():
            cells = [_cell(run["paired"][f"pref_active-per_user@{b}"]) for b in BUDGETS]
            cells.append(_cell(run["paired"]["pref_active-pref_random@10"]))
            lines.append(f"| {run['featurizer']} | {run['variant']} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default="attributes,dsp")
    parser.add_argument("--featurizers", default="minilm+stats,ngrams+stats,minilm+ngrams+stats")
    parser.add_argument("--variants", default="default", help="';'-separated name:key=value,... overrides")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "unseen")
    parser.add_argument("--tag", default="", help="suffix of the output files")
    args = parser.parse_args()
    torch.set_num_threads(1)
    import sys

    command = "python benchmarks/unseen_prompts.py " + " ".join(sys.argv[1:])
    args.out.mkdir(parents=True, exist_ok=True)
    all_results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for dataset in args.datasets.split(","):
            path = prepare(dataset, Path(tmp))
            if path is None:
                continue
            all_results[dataset] = run_dataset(path, args.featurizers.split(","), args.variants.split(";"), args.seeds)
            all_results[dataset]["command"] = command
            (args.out / f"{dataset}{args.tag}.json").write_text(json.dumps(all_results[dataset], indent=1) + "\n")
    (args.out / f"summary{args.tag}.md").write_text(summary(all_results, command))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
