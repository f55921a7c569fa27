"""Time one onboarding step (select the next question + refit lambda) over 100,000 candidate pairs, J = 8.

Writes the median (and other percentiles) to benchmarks/results/onboard_speed.json.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import numpy as np

from preflm.onboard import OnboardingSession

N_CANDIDATES, J, ANSWERS, REPEATS = 100_000, 8, 10, 50


def main() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(size=(N_CANDIDATES, J))
    true_weights = rng.normal(size=J)
    timings = []
    for repeat in range(REPEATS // ANSWERS):
        session = OnboardingSession(z, np.zeros(J), np.eye(J), selector="active", seed=repeat)
        for _ in range(ANSWERS):
            start = time.perf_counter()
            question = session.next_question()
            answer = float(rng.random() < 1 / (1 + np.exp(-z[question] @ true_weights)))
            session.record(question, answer)
            timings.append((time.perf_counter() - start) * 1000)
    result = {
        "median_ms": float(np.median(timings)),
        "p90_ms": float(np.percentile(timings, 90)),
        "n_candidates": N_CANDIDATES,
        "n_factors": J,
        "steps_timed": len(timings),
        "machine": f"{platform.machine()} {platform.processor() or ''} cores={__import__('os').cpu_count()}".strip(),
        "command": "python benchmarks/onboard_speed.py",
    }
    out = Path(__file__).parent / "results" / "onboard_speed.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
