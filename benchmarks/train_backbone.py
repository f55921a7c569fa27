"""Train base rewards on a causal-LM backbone for a time budget; record throughput, memory and accuracy.

    python benchmarks/train_backbone.py --minutes 1 --max-answers 400                     # CPU smoke run
    accelerate launch --num_processes 1 benchmarks/train_backbone.py --minutes 3         # one GPU
    accelerate launch --multi_gpu --num_processes 8 benchmarks/train_backbone.py \\
        --model Qwen/Qwen2.5-0.5B --mode full                                            # 8 GPUs

Trains on ``--data`` (any file ``preflm`` reads, e.g. the Attributes world JSONL of ``preflm world``)
or, without it, on a freshly built Attributes world; only the seen users' (``train``) answers are used.
The budget is shared by the two phases in proportion to their step counts. One entry per run is
added to ``--out`` (default ``benchmarks/results/backbone_<cpu|gpu>.json``), replacing an earlier entry
of the same model, mode and number of processes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

from preflm.data import AnswerMatrix, load_preferences, normalize_frame, split_answers
from preflm.factorize import FactorizeConfig
from preflm.factorize.backbone import BackboneConfig, train_backbone

RESULTS = Path(__file__).parent / "results"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, help="answers file; default: build an Attributes world")
    parser.add_argument("--model", default="smollm2", help="'smollm2' (offline GGUF), a hub id or a local path")
    parser.add_argument("--mode", choices=["lora", "full", "frozen"], default="lora")
    parser.add_argument("--minutes", type=float, default=3.0, help="training time budget (both phases)")
    parser.add_argument("--phase1-steps", type=int, default=200, help="upper bound; the budget usually stops first")
    parser.add_argument("--phase2-steps", type=int, default=800)
    parser.add_argument("--batch-size", type=int, default=16, help="pairs per process and micro-step")
    parser.add_argument("--grad-accum", type=int, default=1)
    parser.add_argument("--encode-batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--pooling", choices=["last", "mean"], default="last")
    parser.add_argument("--n-factors", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, help="backbone rate; default 2e-4 (lora) or 2e-5 (full)")
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--max-answers", type=int, help="train on a random subset of this many answers")
    parser.add_argument("--eval-every", type=int, default=25)
    parser.add_argument("--eval-answers", type=int, default=512)
    parser.add_argument("--checkpoint-every", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", type=Path, help="default: benchmarks/results/runs/<model>-<mode>")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoints in --output-dir")
    parser.add_argument("--out", type=Path, help="results JSON; default benchmarks/results/backbone_<device>.json")
    return parser.parse_args(argv)


def load_train_answers(args: argparse.Namespace) -> AnswerMatrix:
    """Seen users' answers of the data file or of a fresh Attributes world, optionally subsampled."""
    if args.data is not None:
        frame = load_preferences(args.data)
    else:
        from preflm.simulate import WorldConfig, build_world

        frame = normalize_frame(build_world(WorldConfig(seed=args.seed)).to_frame(), "<attributes world>")
    train = split_answers(AnswerMatrix.from_frame(frame), seed=args.seed).train
    if args.max_answers is not None and args.max_answers < train.n_answers:
        keep = np.zeros(train.n_answers, dtype=bool)
        keep[np.random.default_rng(args.seed).choice(train.n_answers, args.max_answers, replace=False)] = True
        train = train.subset(keep)
    return train


def device_name() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    return f"{platform.machine()} {platform.processor() or 'cpu'} ({os.cpu_count()} cores)".strip()


def record_result(out: Path, result: dict) -> None:
    """Add one run to the results file, replacing an earlier run of the same model, mode and processes."""
    runs = json.loads(out.read_text())["runs"] if out.is_file() else []
    key = lambda r: (r["model"], r["mode"], r["num_processes"])  # noqa: E731
    runs = [r for r in runs if key(r) != key(result)] + [result]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"runs": runs}, indent=2) + "\n")


def main(argv=None) -> dict:
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    args = parse_args(argv)
    state = PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))
    started = time.perf_counter()
    train = load_train_answers(args)
    load_seconds = time.perf_counter() - started

    slug = Path(args.model).name if Path(args.model).exists() else args.model.replace("/", "_")
    output_dir = args.output_dir or RESULTS / "runs" / f"{slug}-{args.mode}"
    if not args.resume and state.is_main_process:
        shutil.rmtree(output_dir, ignore_errors=True)
    state.wait_for_everyone()

    learning_rate = args.learning_rate or (2e-5 if args.mode == "full" else 2e-4)
    config = BackboneConfig(
        model=args.model, mode=args.mode, pooling=args.pooling, max_length=args.max_length,
        factorize=FactorizeConfig(head="linear", n_factors=args.n_factors, seed=args.seed),
        learning_rate=learning_rate, batch_size=args.batch_size,
        gradient_accumulation_steps=args.grad_accum, encode_batch_size=args.encode_batch_size,
        phase1_steps=args.phase1_steps, phase2_steps=args.phase2_steps, eval_every=args.eval_every,
        eval_answers=args.eval_answers, checkpoint_every=args.checkpoint_every,
        gradient_checkpointing=args.gradient_checkpointing, time_budget_minutes=args.minutes,
        output_dir=str(output_dir),
    )
    train_started = time.perf_counter()
    model = train_backbone(train, config, progress=state.is_main_process)
    train_seconds = time.perf_counter() - train_started

    summary = model.training_summary_
    stages = summary["stages"]
    on_gpu = torch.cuda.is_available()
    result = {
        "model": args.model,
        "mode": args.mode,
        "device": device_name(),
        "num_processes": summary["num_processes"],
        "mixed_precision": summary.get("mixed_precision", "no"),
        "budget_minutes": args.minutes,
        "n_train_answers": int(train.n_answers),
        "n_items": int(train.n_items),
        "n_users": int(len(train.answered_users())),
        "validation_accuracy": summary["validation_accuracy"],
        "examples_per_second": {
            name: stage.get("examples_per_second", stage.get("items_per_second"))
            for name, stage in stages.items()
            if "examples_per_second" in stage or "items_per_second" in stage
        },
        "peak_memory_bytes": summary["peak_memory_bytes"],
        "peak_memory_kind": "torch.cuda.max_memory_allocated" if on_gpu else "max RSS",
        "wall_seconds": {
            "load_data": load_seconds,
            **{name: stage["seconds"] for name, stage in stages.items()},
            "train_backbone": train_seconds,
        },
        "stages": stages,
        "history": model.history_,
        "trainable_parameters": summary.get("trainable_parameters"),
        "mean_tokens_per_item": summary.get("mean_tokens_per_item"),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    }
    if state.is_main_process:
        out = args.out or RESULTS / f"backbone_{'gpu' if on_gpu else 'cpu'}.json"
        record_result(out, result)
        print(json.dumps({k: result[k] for k in ("model", "mode", "device", "validation_accuracy",
                                                 "examples_per_second", "peak_memory_bytes", "wall_seconds")}, indent=2))
    return result


if __name__ == "__main__":
    main()
