"""Do the learned base rewards carry the world's attributes over to an LLM's texts?

Reads what ``benchmarks/generation.py --reward-data world`` left in its work folder (the world, its reward model, the LLM's
candidates), fits a ridge map from phi (and from the raw features) to the seven true attribute scores on
the world's texts, and reports, per attribute, the correlation of the mapped scores with the truth on the
candidates, next to the attribute spread in both text sets.

    python benchmarks/generation.py --reward-data world && python benchmarks/generation_transfer.py
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.linear_model import RidgeCV

from preflm.data import AnswerMatrix, load_preferences
from preflm.factorize import RewardFactorization
from preflm.generate.personalize import CandidateSet
from preflm.simulate import ATTRIBUTE_NAMES, score_texts

ROOT = Path(__file__).resolve().parent


def correlation(truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    a, b = truth - truth.mean(0), predicted - predicted.mean(0)
    return (a * b).sum(0) / np.sqrt((a * a).sum(0) * (b * b).sum(0) + 1e-12)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", type=Path, default=Path("runs/generation-benchmark"))
    parser.add_argument("--tag", default="smollm2_world")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "generation_transfer.json")
    args = parser.parse_args(argv)
    saved = CandidateSet.load(args.work_dir / f"candidates-{args.tag}.json")
    texts = [t for row in saved.candidates for t in row]
    prompts = [p for p, row in zip(saved.prompts, saved.candidates) for _ in row]
    world = AnswerMatrix.from_frame(load_preferences(args.work_dir / f"world-seed{args.seed}.jsonl"))
    world_prompts, world_texts = list(world.item_prompts), list(world.item_responses)
    model = RewardFactorization.load(args.work_dir / f"model-{args.tag}")
    truth_world, truth_llm = score_texts(world_texts), score_texts(texts)
    raw_world, raw_llm = model.featurizer().transform(world_prompts, world_texts), model.featurizer().transform(prompts, texts)
    inputs = {"phi": (model.base_rewards(raw_world), model.base_rewards(raw_llm)), "raw features": (raw_world, raw_llm)}
    result = {"command": "python benchmarks/generation_transfer.py", "n_world_texts": len(world_texts),
              "n_candidates": len(texts), "attribute_std": {
                  "world": dict(zip(ATTRIBUTE_NAMES, np.round(truth_world.std(0), 3).tolist())),
                  "candidates": dict(zip(ATTRIBUTE_NAMES, np.round(truth_llm.std(0), 3).tolist()))}}
    for name, (on_world, on_llm) in inputs.items():
        ridge = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(on_world, truth_world)
        result[f"correlation on candidates, ridge from {name}"] = dict(
            zip(ATTRIBUTE_NAMES, np.round(correlation(truth_llm, ridge.predict(on_llm)), 3).tolist()))
        result[f"correlation on world texts (in sample), ridge from {name}"] = dict(
            zip(ATTRIBUTE_NAMES, np.round(correlation(truth_world, ridge.predict(on_world)), 3).tolist()))
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
