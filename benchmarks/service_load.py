"""Load test of ``preflm serve`` as a real process: many users onboard (answers) and then score candidates.

For each database (SQLite file, PostgreSQL when --postgres-url is given) and worker count, a fresh server
is started; ``--users`` simulated users run concurrently, each answering ``--answers`` questions
(next question, then answer) and then sending ``--score-requests`` scoring requests of ``--candidates``
responses. Reports throughput and p50/p99 latency per endpoint, errors, scoring texts/s next to the
featurizer's own offline rate, and how many texts each featurizer call embedded (request batching).

    python benchmarks/service_load.py --postgres-url postgresql+psycopg://postgres@127.0.0.1:5432/test

The client is a minimal keep-alive HTTP/1.1 client on asyncio streams, so it costs the server as little
CPU as possible when both share a small machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import numpy as np

ADMIN_KEY = "bench-admin-key"
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def build_model(workdir: Path, featurizer_name: str, seed: int) -> tuple[Path, Path, list[tuple[str, str]]]:
    """A small Attributes world, a model on it, its pool pairs as questions, and (prompt, text) items to score."""

    from preflm.data import AnswerMatrix, load_preferences
    from preflm.factorize import RewardFactorization
    from preflm.factorize.pipeline import featurize_items
    from preflm.featurize import featurizer_from_name
    from preflm.simulate import WorldConfig, write_world

    world = write_world(workdir / "world.jsonl", WorldConfig(n_prompts=40, n_mixture_users=12, seed=seed,
                                                             train_answers_per_user=150, pool_size=60, test_size=20))
    frame = load_preferences(world)
    train = AnswerMatrix.from_frame(frame[frame["split"] == "train"])
    featurizer = featurizer_from_name(featurizer_name)
    model = RewardFactorization(n_factors=4, head="linear", max_steps=400, seed=seed, featurizer=featurizer)
    model.fit(featurize_items(train, featurizer), train, progress=False)
    model_dir = model.save(workdir / "model")
    questions = workdir / "questions.csv"
    frame[frame["split"] == "pool"][["prompt", "response_a", "response_b"]].drop_duplicates().to_csv(questions, index=False)
    items = list(zip(train.item_prompts, train.item_responses))
    return model_dir, questions, items


def offline_rate(model_dir: Path, items: list[tuple[str, str]], n: int = 1000) -> float:
    """Texts/s of the model's featurizer embedding ``n`` texts in one call (warm)."""
    from preflm.factorize import RewardFactorization
    from preflm.featurize import build_featurizer
    from preflm.serve.core import quiet_featurizer

    featurizer = quiet_featurizer(build_featurizer(RewardFactorization.load(model_dir).featurizer_spec))
    picks = [items[i % len(items)] for i in range(n)]
    prompts = [p for p, _ in picks]
    texts = [f"{r} ({i})" for i, (_, r) in enumerate(picks)]
    featurizer.transform(prompts[:32], texts[:32])
    start = time.perf_counter()
    featurizer.transform(prompts, texts)
    return n / (time.perf_counter() - start)


class Connection:
    """One keep-alive HTTP/1.1 connection; requests on it are sequential."""

    def __init__(self, port: int):
        self.port = port
        self.reader = self.writer = None

    async def request(self, method: str, path: str, body: dict | None = None, headers: dict | None = None) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        data = b"" if body is None else json.dumps(body).encode()
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}", f"Content-Length: {len(data)}",
                 "Content-Type: application/json"] + [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + data)
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("connection closed")
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        payload = await self.reader.readexactly(length) if length else b""
        return int(status_line.split()[1]), payload

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class Recorder:
    def __init__(self):
        self.latency: dict[str, list[float]] = {}
        self.errors: dict[str, int] = {}
        self.error_examples: list[str] = []

    async def call(self, conn: Connection, name: str, method: str, path: str, body=None, headers=None, ok=(200, 201)):
        start = time.perf_counter()
        try:
            status, payload = await conn.request(method, path, body, headers)
        except (OSError, asyncio.IncompleteReadError, ConnectionError) as err:
            status, payload = 0, str(err).encode()
            conn.close()
            conn.writer = None
        self.latency.setdefault(name, []).append(time.perf_counter() - start)
        if status not in ok:
            self.errors[name] = self.errors.get(name, 0) + 1
            if len(self.error_examples) < 5:
                self.error_examples.append(f"{name}: {status} {payload[:200]!r}")
            return None
        return json.loads(payload) if payload else {}

    def summary(self, seconds: dict[str, float]) -> dict:
        out = {}
        for name, values in self.latency.items():
            ms = np.asarray(values) * 1000
            out[name] = {
                "requests": len(values), "errors": self.errors.get(name, 0),
                "per_s": round(len(values) / seconds[name], 1),
                "p50_ms": round(float(np.percentile(ms, 50)), 2), "p99_ms": round(float(np.percentile(ms, 99)), 2),
            }
        return out


async def run_load(port: int, users: list[tuple[str, str]], n_answers: int, n_scores: int, n_candidates: int,
                   items: list[tuple[str, str]], seed: int) -> dict:
    recorder = Recorder()
    rng = random.Random(seed)

    async def onboard(user_id: str, key: str):
        conn = Connection(port)
        auth = {"Authorization": f"Bearer {key}"}
        for step in range(n_answers):
            question = await recorder.call(conn, "questions/next", "POST", f"/v1/users/{user_id}/questions/next", headers=auth)
            if question is None or question.get("done"):
                break
            await recorder.call(conn, "answers", "POST", f"/v1/users/{user_id}/answers",
                                {"question_id": question["question_id"], "preference": rng.choice("abb")},
                                auth | {"Idempotency-Key": f"{user_id}-{step}"})
        conn.close()

    async def score(user_id: str, key: str):
        conn = Connection(port)
        auth = {"Authorization": f"Bearer {key}"}
        for request in range(n_scores):
            picks = rng.sample(items, n_candidates)
            body = {"prompt": picks[0][0], "responses": [f"{text} ({user_id} {request} {i})" for i, (_, text) in enumerate(picks)]}
            await recorder.call(conn, "score", "POST", "/v1/score", body, auth)
        conn.close()

    start = time.perf_counter()
    await asyncio.gather(*(onboard(*u) for u in users))
    onboarding = time.perf_counter() - start
    start = time.perf_counter()
    await asyncio.gather(*(score(*u) for u in users))
    scoring = time.perf_counter() - start
    result = recorder.summary({"questions/next": onboarding, "answers": onboarding, "score": scoring})
    return {
        "endpoints": result, "onboarding_seconds": round(onboarding, 2), "scoring_seconds": round(scoring, 2),
        "answers_per_s": result.get("answers", {}).get("per_s", 0.0),
        "scored_texts_per_s": round(result.get("score", {}).get("requests", 0) * n_candidates / scoring, 1),
        "error_examples": recorder.error_examples,
    }


def metric_values(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("preflm_featurizer_texts_total") or line.startswith("preflm_featurizer_seconds_count") \
                or line.startswith("preflm_featurizer_seconds_sum") or line.startswith("preflm_answers_total"):
            name, value = line.rsplit(" ", 1)
            values[name] = values.get(name, 0.0) + float(value)
    return values


def start_server(model_dir: Path, questions: Path, db_url: str, workers: int, log: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {**os.environ, "PREFLM_ADMIN_KEY": ADMIN_KEY, "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    command = [sys.executable, "-c", "from preflm.cli import app; app()", "serve", "--reward-model", str(model_dir), "--questions",
               str(questions), "--db", db_url, "--port", str(port), "--workers", str(workers), "--log-level", "warning"]
    process = subprocess.Popen(command, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return process, port
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("server did not start in 600 s")


def create_users(port: int, n: int) -> list[tuple[str, str]]:
    async def create():
        conn = Connection(port)
        users = []
        for i in range(n):
            status, payload = await conn.request("POST", "/v1/users", {"user_id": f"bench-{i}"},
                                                 {"Authorization": f"Bearer {ADMIN_KEY}"})
            assert status == 201, payload
            body = json.loads(payload)
            users.append((body["user_id"], body["api_key"]))
        conn.close()
        return users

    return asyncio.run(create())


def postgres_schema(base_url: str, drop: str | None = None) -> str:
    from sqlalchemy import create_engine, text

    engine = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        if drop:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {drop} CASCADE"))
            engine.dispose()
            return drop
        schema = f"preflm_bench_{uuid.uuid4().hex[:10]}"
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    return schema


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--answers", type=int, default=10)
    parser.add_argument("--score-requests", type=int, default=2)
    parser.add_argument("--candidates", type=int, default=10)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--featurizer", default="minilm+stats")
    parser.add_argument("--postgres-url", default=os.environ.get("PREFLM_TEST_POSTGRES_URL"))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/service_load.json")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="preflm-bench-"))
    model_dir, questions, items = build_model(workdir, args.featurizer, args.seed)
    offline = offline_rate(model_dir, items)
    print(f"featurizer {args.featurizer}: {offline:.0f} texts/s offline (one call of 1000 texts)", flush=True)
    backends = [("sqlite", None)] + ([("postgresql", args.postgres_url)] if args.postgres_url else [])
    runs = []
    for backend, url in backends:
        for workers in [int(w) for w in args.workers.split(",")]:
            schema = None
            if backend == "sqlite":
                db_url = f"sqlite:///{workdir / f'bench-{workers}.db'}"
            else:
                schema = postgres_schema(url)
                db_url = f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
            process, port = start_server(model_dir, questions, db_url, workers, workdir / f"server-{backend}-{workers}.log")
            try:
                users = create_users(port, args.users)
                before = metric_values(port)
                result = asyncio.run(run_load(port, users, args.answers, args.score_requests, args.candidates, items, args.seed))
                after = metric_values(port)
            finally:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                if schema:
                    postgres_schema(url, drop=schema)
            calls = after.get("preflm_featurizer_seconds_count", 0) - before.get("preflm_featurizer_seconds_count", 0)
            texts = after.get("preflm_featurizer_texts_total", 0) - before.get("preflm_featurizer_texts_total", 0)
            busy = after.get("preflm_featurizer_seconds_sum", 0) - before.get("preflm_featurizer_seconds_sum", 0)
            result.update(backend=backend, workers=workers, featurizer_calls=int(calls),
                          texts_per_featurizer_call=round(texts / calls, 1) if calls else None,
                          featurizer_busy_texts_per_s=round(texts / busy, 1) if busy else None,
                          scored_vs_offline=round(result["scored_texts_per_s"] / offline, 3))
            runs.append(result)
            print(json.dumps({k: v for k, v in result.items() if k != "error_examples"}), flush=True)
    report = {
        "command": "python benchmarks/service_load.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()} cores={os.cpu_count()} (client and server share it)",
        "users": args.users, "answers_per_user": args.answers, "score_requests_per_user": args.score_requests,
        "candidates_per_request": args.candidates, "featurizer": args.featurizer,
        "featurizer_offline_texts_per_s": round(offline, 1), "runs": runs,
        "targets": {"answers_per_s": 300, "answers_p99_ms": 100, "errors": 0},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
