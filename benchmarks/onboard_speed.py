"""Time one onboarding step (select the next question + refit the weights) over 100,000 candidate pairs.

Two sizes of a user's weight vector: J = 8 learned base rewards alone, and J + K = 8 + 32 with the
default residual base rewards. Writes the median (and other percentiles) of each to
benchmarks/results/onboard_speed.json, with the load average at the start.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from preflm.onboard import OnboardingSession

N_CANDIDATES, ANSWERS, REPEATS = 100_000, 10, 50
SIZES = {"J = 8": 8, "J + K = 8 + 32 (default residual)": 40}


def time_steps(n_weights: int) -> list[float]:
    """Milliseconds of each onboarding step for sessions of ANSWERS answers each."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=(N_CANDIDATES, n_weights))
    true_weights = rng.normal(size=n_weights)
    timings = []
    for repeat in range(REPEATS // ANSWERS):
        session = OnboardingSession(z, np.zeros(n_weights), np.eye(n_weights), selector="active", seed=repeat)
        for _ in range(ANSWERS):
            start = time.perf_counter()
            question = session.next_question()
            answer = float(rng.random() < 1 / (1 + np.exp(-z[question] @ true_weights)))
            session.record(question, answer)
            timings.append((time.perf_counter() - start) * 1000)
    return timings


def main() -> None:
    load = os.getloadavg()[0]
    runs = []
    for label, n_weights in SIZES.items():
        timings = time_steps(n_weights)
        runs.append({
            "weights": label, "n_weights": n_weights, "median_ms": float(np.median(timings)),
            "p90_ms": float(np.percentile(timings, 90)), "steps_timed": len(timings),
        })
    result = {
        "runs": runs,
        "n_candidates": N_CANDIDATES,
        "load_average_at_start": load,
        "machine": f"{platform.machine()} {platform.processor() or ''} cores={os.cpu_count()}".strip(),
        "command": "python benchmarks/onboard_speed.py",
    }
    out = Path(__file__).parent / "results" / "onboard_speed.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
