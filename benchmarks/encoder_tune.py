"""End-to-end encoder fine-tuning inside the factorization vs the frozen encoder, unseen-prompts protocol.

For each dataset and each tuning setting: fine-tunes MiniLM (``preflm.factorize.encoder.tune_encoder``)
on the seen users' training answers (early stopping on held-out training prompts), embeds every item
with the tuned encoder, and runs PReF (active, random) and the per-user baseline on the same new users,
with the tuned embedding alone and with hashed n-grams + text statistics beside it. Writes
``<out>/<dataset><tag>.json`` and prints one line per run. With ``--checkpoint-dir`` each tuning run
checkpoints every epoch to ``<checkpoint-dir>/<dataset>-<setting>``, and rerunning the same command resumes
the runs a kill interrupted.

    python benchmarks/encoder_tune.py [--datasets dsp,attributes] \\
        [--settings "top2:train_layers=2;all:train_layers=null"] [--checkpoint-dir encoder-checkpoints]
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from unseen_prompts import BUDGETS, parse_variant, pref_vs_per_user, prepare  # noqa: E402

from preflm.data import AnswerMatrix, load_preferences, split_answers  # noqa: E402
from preflm.eval.harness import HarnessConfig  # noqa: E402
from preflm.factorize import FactorizeConfig  # noqa: E402
from preflm.factorize.encoder import EncoderTuneConfig, tune_encoder  # noqa: E402
from preflm.factorize.pipeline import featurize_items  # noqa: E402
from preflm.featurize import EncoderLayersFeaturizer, featurizer_from_name  # noqa: E402


def evaluate(features, split, seeds):
    harness = HarnessConfig(budgets=BUDGETS, strategies=("active", "random"), seeds=seeds)
    results = pref_vs_per_user(features, split, FactorizeConfig(), harness)
    return {"methods": results["methods"], "paired": results["paired"]}


def line(name, res):
    pref = res["methods"]["pref"]["strategies"]
    per_user = res["methods"]["per_user"]["strategies"]["random"]
    return (f"{name}: active acc@10 {pref['active']['10']['accuracy']['mean']:.3f} "
            f"acc@40 {pref['active']['40']['accuracy']['mean']:.3f} random@10 {pref['random']['10']['accuracy']['mean']:.3f} "
            f"per-user@10 {per_user['10']['accuracy']['mean']:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default="dsp,attributes")
    parser.add_argument("--settings", default="top2:train_layers=2;all:train_layers=null")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/unseen"))
    parser.add_argument("--tag", default="_encoder_tune")
    parser.add_argument("--checkpoint-dir", type=Path, default=None,
                        help="checkpoint each tuning run every epoch under this folder; a rerun resumes")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with tempfile.TemporaryDirectory() as tmp:
        for dataset in args.datasets.split(","):
            path = prepare(dataset, Path(tmp))
            if path is None:
                continue
            matrix = AnswerMatrix.from_frame(load_preferences(path), source=str(path))
            split = split_answers(matrix)
            extra = featurize_items(matrix, featurizer_from_name("ngrams+stats"))
            out = {"dataset": dataset, "device": device, "command": " ".join(sys.argv), "runs": {}}
            for setting in args.settings.split(";"):
                name, overrides = parse_variant(setting)
                if args.checkpoint_dir is not None:
                    overrides = {**overrides, "checkpoint_dir": str(args.checkpoint_dir / f"{dataset}-{name}")}
                started = time.perf_counter()
                tuned = tune_encoder(split.train, EncoderTuneConfig(**overrides), out_dir=Path(tmp) / f"{dataset}-{name}", progress=True)
                tune_seconds = time.perf_counter() - started
                embedder = EncoderLayersFeaturizer(tuned["path"], layers=[tuned["encoder"].config.num_hidden_layers],
                                                   weights_id=tuned["weights_id"])
                embedded = featurize_items(matrix, embedder)
                for label, features in (("tuned", embedded), ("tuned+ngrams+stats", np.hstack([embedded, extra]))):
                    res = evaluate(features, split, args.seeds)
                    res.update(tune_seconds=tune_seconds, history=tuned["history"], best_epoch=tuned["best_epoch"],
                               tune_config=tuned["config"])
                    out["runs"][f"{name} | {label}"] = res
                    print(f"{dataset} {name} {label} (tuned in {tune_seconds:.0f}s on {device}): " + line("", res), flush=True)
                (args.out / f"{dataset}{args.tag}.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
