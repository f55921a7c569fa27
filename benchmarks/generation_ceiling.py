"""How far can any user weights take the learned base rewards on the LLM's candidates? (the ceiling of r)

Reads what ``benchmarks/generation.py`` left in its work folder for each tag (the reward model, the benchmark
candidates, the world's users) and fits, for every new user, least-squares weights that best reproduce the
user's true rewards of the candidates (within prompt). In sample (fitted and scored on all prompts, as the
benchmark's own reference) the fit also explains noise; held out by prompt (fitted on half the prompts,
scored on the other half, both ways) it is the r that weights learned from any number of answers can
reach on new prompts. Both for the J learned base rewards and for J + K with the residual ones, and, as a
bound on the features rather than on the answers, for a phi that no preference data gives: a ridge map
from the same features to the seven true attribute scores, fitted on the LLM's training answers.

    python benchmarks/generation.py [--tag T ...] && python benchmarks/generation_ceiling.py [T ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.linear_model import RidgeCV

from generation import centred_fit, tag_for, within_prompt_correlation
from preflm.factorize import RewardFactorization
from preflm.generate.personalize import CandidateSet
from preflm.simulate import score_texts, true_reward, users_path

ROOT = Path(__file__).resolve().parent
TAGS = ["smollm2", "smollm2_no_residual", "smollm2_j_choice", "smollm2_lmfeatures", "smollm2_llm_world"]


def ceilings(phi: np.ndarray, truth: np.ndarray) -> dict:
    """Mean over users of r in sample and held out by prompt (two interleaved halves of the prompts)."""
    every = np.ones(phi.shape[0], dtype=bool)
    halves = np.arange(phi.shape[0]) % 2 == 0
    held_out = centred_fit(phi, truth, halves, ~halves) + centred_fit(phi, truth, ~halves, halves)
    return {"in_sample": float(np.nanmean(within_prompt_correlation(centred_fit(phi, truth, every, every), truth))),
            "held_out_prompts": float(np.nanmean(within_prompt_correlation(held_out, truth)))}


def attribute_supervised(model, training: CandidateSet, candidates: CandidateSet, truth: np.ndarray) -> dict:
    """Ceilings of phi = ridge map from the model's features to the true attribute scores of the training answers."""
    def features(saved: CandidateSet) -> tuple[np.ndarray, list[str]]:
        texts = [t for row in saved.candidates for t in row]
        prompts = [p for p, row in zip(saved.prompts, saved.candidates) for _ in row]
        return np.asarray(model.featurizer().transform(prompts, texts)), texts

    train_x, train_texts = features(training)
    x, _ = features(candidates)
    mean, scale = train_x.mean(0), train_x.std(0) + 1e-6
    ridge = RidgeCV(alphas=np.logspace(0, 4, 9)).fit((train_x - mean) / scale, score_texts(train_texts))
    phi = ridge.predict((x - mean) / scale).reshape(len(candidates.prompts), candidates.n, -1)
    return {**ceilings(phi, truth), "ridge_alpha": float(ridge.alpha_), "n_training_answers": len(train_texts)}


def ceiling_for(work_dir: Path, results: Path, tag: str, seed: int) -> dict:
    model = RewardFactorization.load(work_dir / f"model-{tag}")
    candidates = CandidateSet.load(work_dir / f"candidates-{tag}.json")
    report = json.loads((results / f"generation_{tag}.json").read_text())
    sidecar = json.loads(users_path(work_dir / f"llm-world-{tag}-seed{seed}.jsonl").read_text())
    weights = np.array([u["weights"] for u in sidecar["users"] if u["is_new"]])
    if len(weights) != report["settings"]["n_users"]:
        raise SystemExit(f"{tag}: the run judged {report['settings']['n_users']} of {len(weights)} new users (--n-users); "
                         "the ceiling needs a run over all of them")
    P, N = len(candidates.prompts), candidates.n
    texts = [t for row in candidates.candidates for t in row]
    truth = true_reward(weights, texts).reshape(P, N, len(weights)).transpose(2, 0, 1)
    J = model.config.n_factors
    phi = candidates.rewards(model, np.eye(model.n_weights)).transpose(1, 2, 0)
    out = {"n_factors": J, "residual_factors": model.config.residual_factors, "n_users": len(weights),
           "learned": ceilings(phi[..., :J], truth)}
    if model.n_weights > J:
        out["learned_and_residual"] = ceilings(phi, truth)
    training = work_dir / f"train-candidates-{tag_for(report['generator'])}.json"
    if training.is_file():
        out["attribute_supervised"] = attribute_supervised(model, CandidateSet.load(training), candidates, truth)
    out["onboarding_r"] = {b: round(v["reward_alignment"], 3) for b, v in report["vs_answers"].items()}
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tags", nargs="*", default=TAGS, help="tags of benchmarks/generation.py runs (llm-trained)")
    parser.add_argument("--work-dir", type=Path, default=Path("runs/generation-benchmark"))
    parser.add_argument("--results", type=Path, default=ROOT / "results", help="folder of generation_<tag>.json")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "generation_ceiling.json")
    args = parser.parse_args(argv)
    missing = [t for t in args.tags if not (args.work_dir / f"model-{t}").is_dir()]
    if missing:
        raise SystemExit(f"no model in {args.work_dir} for {missing}: run benchmarks/generation.py with those tags first")
    result = {"command": "python benchmarks/generation_ceiling.py " + " ".join(args.tags),
              "tags": {t: ceiling_for(args.work_dir, args.results, t, args.seed) for t in args.tags}}
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
