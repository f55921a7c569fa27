"""Time and peak memory of ``preflm train`` on synthetic answer sets of growing size.

A fixed text set (``N_PROMPTS`` prompts x ``N_RESPONSES`` responses) is shared by every size, so the
``stats`` features are computed once and cached; users have low-rank preferences over those features.
Each size is written as Parquet with pyarrow (text columns dictionary-encoded, in row groups) and trained
in a fresh process under ``/usr/bin/time -v``; wall time and peak RSS come from there.

    python benchmarks/train_scale.py --sizes 100000 1000000 [--keep-data DIR]

Writes ``benchmarks/results/train_scale.json`` (and prints a table).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

N_PROMPTS, N_RESPONSES, TRUE_RANK, ANSWERS_PER_USER = 2000, 6, 4, 100
ROW_GROUP = 1_000_000
WORDS = (
    "the a model answer short long clear brief detailed simple example reason because therefore however "
    "you your I my we data result value step first second next finally note idea plan test case"
).split()
RESULTS = Path(__file__).parent / "results"


def text_set(seed: int = 0) -> tuple[list[str], list[list[str]]]:
    """Prompts and, for each, responses that differ in length, punctuation, person and digits."""
    rng = np.random.default_rng(seed)
    prompts = [f"Question {i}: " + " ".join(rng.choice(WORDS, 8)) + "?" for i in range(N_PROMPTS)]
    responses = []
    for i in range(N_PROMPTS):
        row = []
        for j in range(N_RESPONSES):
            n_sentences = int(rng.integers(1, 6))
            ending = rng.choice([".", "!", "?"], p=[0.6, 0.25, 0.15])
            sentences = []
            for _ in range(n_sentences):
                words = list(rng.choice(WORDS, int(rng.integers(3, 15))))
                if rng.random() < 0.3:
                    words.insert(int(rng.integers(len(words))), str(int(rng.integers(1, 999))))
                if rng.random() < 0.3:
                    words.insert(len(words) // 2, "and,")
                sentences.append(" ".join(words).capitalize() + ending)
            row.append(f"[{i}.{j}] " + " ".join(sentences))
        responses.append(row)
    return prompts, responses


def write_dataset(path: Path, n_answers: int, seed: int = 0) -> dict:
    """Parquet of ``n_answers`` answers: users with ``TRUE_RANK``-dimensional tastes over text statistics."""
    from preflm.featurize import TextStatsFeaturizer

    prompts, responses = text_set(seed)
    item_prompt = np.repeat(np.arange(N_PROMPTS), N_RESPONSES)
    flat = [r for row in responses for r in row]
    stats = np.asarray(TextStatsFeaturizer().transform([prompts[p] for p in item_prompt], flat), dtype=np.float64)
    stats = (stats - stats.mean(0)) / (stats.std(0) + 1e-9)
    rng = np.random.default_rng(seed + 1)
    item_reward_basis = stats @ rng.normal(size=(stats.shape[1], TRUE_RANK)) / np.sqrt(stats.shape[1])
    n_users = max(2, n_answers // ANSWERS_PER_USER)
    user_weights = rng.normal(size=(n_users, TRUE_RANK)) * 2.0
    prompt_dict = pa.array(prompts)
    response_dict = pa.array(flat)
    user_dict = pa.array([f"user{u:07d}" for u in range(n_users)])
    writer = None
    try:
        for start in range(0, n_answers, ROW_GROUP):
            n = min(ROW_GROUP, n_answers - start)
            user = (np.arange(start, start + n) // ANSWERS_PER_USER) % n_users
            prompt = rng.integers(N_PROMPTS, size=n)
            first = rng.integers(N_RESPONSES, size=n)
            second = (first + rng.integers(1, N_RESPONSES, size=n)) % N_RESPONSES
            item_a, item_b = prompt * N_RESPONSES + first, prompt * N_RESPONSES + second
            logit = np.einsum("nk,nk->n", item_reward_basis[item_a] - item_reward_basis[item_b], user_weights[user])
            label = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float64)
            table = pa.table(
                {
                    "user_id": pa.DictionaryArray.from_arrays(pa.array(user.astype(np.int32)), user_dict),
                    "prompt": pa.DictionaryArray.from_arrays(pa.array(prompt.astype(np.int32)), prompt_dict),
                    "response_a": pa.DictionaryArray.from_arrays(pa.array(item_a.astype(np.int32)), response_dict),
                    "response_b": pa.DictionaryArray.from_arrays(pa.array(item_b.astype(np.int32)), response_dict),
                    "preference": label,
                }
            )
            if writer is None:
                writer = pq.ParquetWriter(str(path), table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    return {"n_answers": n_answers, "n_users": n_users, "n_items": len(flat), "file_mb": path.stat().st_size / 2**20}


def timed_train(data: Path, output: Path, extra: list[str], threads: int) -> dict:
    """Run ``preflm train`` in a fresh process; wall seconds and peak RSS (GB) from ``/usr/bin/time -v``."""
    command = [
        "/usr/bin/time", "-v", sys.executable, "-m", "preflm", "--threads", str(threads), "train", str(data), "--output-dir", str(output),
        "--featurizer", "stats", *extra,
    ]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"preflm train failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    accuracy = re.search(r"held-out accuracy on seen users: ([0-9.]+) \(step (\d+)\)", done.stdout)
    return {
        "seconds": round(wall, 1),
        "peak_rss_gb": round(peak_kb / 2**20, 2),
        "validation_accuracy": float(accuracy.group(1)) if accuracy else None,
        "best_step": int(accuracy.group(2)) if accuracy else None,
        "command": " ".join(["preflm", "--threads", str(threads), "train", data.name, "--featurizer", "stats", *extra]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--keep-data", type=Path, default=None, help="Folder to keep the generated Parquet files in.")
    parser.add_argument("--output", type=Path, default=RESULTS / "train_scale.json")
    parser.add_argument("--train-args", default="", help="Extra options for preflm train, e.g. '--max-steps 500'.")
    parser.add_argument("--threads", type=int, default=1, help="preflm --threads (torch and BLAS threads).")
    args = parser.parse_args()
    folder = args.keep_data or Path(tempfile.mkdtemp(prefix="train_scale_"))
    folder.mkdir(parents=True, exist_ok=True)
    runs = []
    for size in args.sizes:
        data = folder / f"answers_{size}.parquet"
        start = time.perf_counter()
        info = write_dataset(data, size) if not data.exists() else {"n_answers": size, "file_mb": data.stat().st_size / 2**20}
        info["generate_seconds"] = round(time.perf_counter() - start, 1)
        result = {**info, **timed_train(data, folder / f"model_{size}", args.train_args.split(), args.threads)}
        result["us_per_answer"] = round(1e6 * result["seconds"] / size, 1)
        runs.append(result)
        print(json.dumps(result), flush=True)
        if args.keep_data is None:
            data.unlink()
    report = {
        "benchmark": "preflm train --featurizer stats on synthetic Parquet answers (fixed text set, cached features)",
        "text_set": {"prompts": N_PROMPTS, "responses_per_prompt": N_RESPONSES, "answers_per_user": ANSWERS_PER_USER},
        "machine": f"{platform.machine()} cores={os.cpu_count()} python={platform.python_version()}",
        "runs": runs,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
