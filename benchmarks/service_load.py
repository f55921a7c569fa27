"""Load test of ``preflm serve`` as a real process: many users onboard (answers) and then score candidates.

For each database (SQLite file, PostgreSQL when --postgres-url is given), worker count and mode, a fresh
server is started; ``--users`` simulated users each answer ``--answers`` questions (next question, then
answer) and then send ``--score-requests`` scoring requests of ``--candidates`` responses. Two modes:

- closed: no think time, every user sends its next request when the last one answered; saturation
  throughput, and latency that is queueing time (Little's law: p50 ~ users / request rate);
- paced: open loop at ``--answers-per-s`` onboarding steps and ``--scores-per-s`` scoring requests per
  second, whatever the latency: the latency at a fixed offered load, which is what a p99 target means.

Reports throughput and p50/p99 latency per endpoint, errors, CPU milliseconds per request of the server
process tree, of the load generator and of PostgreSQL, the load average, scoring texts/s next to the
featurizer's own offline rate, and how many texts each featurizer call embedded (request batching).
Every loop is bounded in count (users x requests) and time (``--request-timeout``, ``--phase-timeout``);
all traffic goes to 127.0.0.1.

    python benchmarks/service_load.py --featurizer stats --postgres-url postgresql+psycopg://postgres@127.0.0.1:5432/test

The client is a minimal keep-alive HTTP/1.1 client on asyncio streams (uvloop when installed), so it
costs as little CPU as possible when it shares a small machine with the server.
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


def offline_rate(model_dir: Path, items: list[tuple[str, str]], n: int = 1000, repeats: int = 5) -> float:
    """Texts/s of the model's featurizer embedding ``n`` texts in one call (warm; the best of ``repeats``, as
    the machine is shared and a slow repeat measures other jobs, not the featurizer)."""
    from preflm.factorize import RewardFactorization
    from preflm.featurize import build_featurizer
    from preflm.serve.core import quiet_featurizer

    featurizer = quiet_featurizer(build_featurizer(RewardFactorization.load(model_dir).featurizer_spec))
    picks = [items[i % len(items)] for i in range(n)]
    prompts = [p for p, _ in picks]
    texts = [f"{r} ({i})" for i, (_, r) in enumerate(picks)]
    featurizer.transform(prompts[:32], texts[:32])
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        featurizer.transform(prompts, texts)
        best = min(best, time.perf_counter() - start)
    return n / best


class Connection:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1; requests on it are sequential and time-bounded."""

    def __init__(self, port: int, timeout: float):
        self.port, self.timeout = port, timeout
        self.reader = self.writer = None

    async def request(self, method: str, path: str, body: dict | None = None, headers: dict | None = None) -> tuple[int, bytes]:
        return await asyncio.wait_for(self._request(method, path, body, headers), self.timeout)

    async def _request(self, method, path, body, headers) -> tuple[int, bytes]:
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
        self.reader = self.writer = None


class Recorder:
    """Latency of every request per endpoint, errors, and (paced mode) how late each step started."""

    def __init__(self):
        self.latency: dict[str, list[float]] = {}
        self.errors: dict[str, int] = {}
        self.error_examples: list[str] = []
        self.step_from_schedule: list[float] = []

    def error(self, name: str, message: str) -> None:
        self.errors[name] = self.errors.get(name, 0) + 1
        if len(self.error_examples) < 5:
            self.error_examples.append(f"{name}: {message[:200]}")

    async def call(self, conn: Connection, name: str, method: str, path: str, body=None, headers=None, ok=(200, 201)):
        start = time.perf_counter()
        try:
            status, payload = await conn.request(method, path, body, headers)
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError) as err:
            status, payload = 0, f"{type(err).__name__} {err}".encode()
            conn.close()
        self.latency.setdefault(name, []).append(time.perf_counter() - start)
        if status not in ok:
            self.error(name, f"{status} {payload[:200]!r}")
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


class CpuMeter:
    """CPU seconds (user + system) of the server process tree, of this load-generator process and of PostgreSQL."""

    def __init__(self, server_pid: int, postgres: bool):
        import psutil

        self.psutil, self.server, self.postgres = psutil, psutil.Process(server_pid), postgres

    def _tree(self, root) -> float:
        total = 0.0
        for proc in [root, *root.children(recursive=True)]:
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except self.psutil.Error:
                pass
        return total

    def _postgres(self) -> float | None:
        """All postgres processes plus what the postmaster reaped from exited backends (other clients too)."""
        if not self.postgres:
            return None
        total = 0.0
        for proc in self.psutil.process_iter(["name"]):
            if proc.info["name"] != "postgres":
                continue
            try:
                times = proc.cpu_times()
                total += times.user + times.system
                if proc.parent() is None or proc.parent().name() != "postgres":
                    total += times.children_user + times.children_system
            except self.psutil.Error:
                pass
        return total

    def snapshot(self) -> dict:
        return {"server": self._tree(self.server), "client": time.process_time(), "postgres": self._postgres()}

    @staticmethod
    def per_request(before: dict, after: dict, requests: int) -> dict:
        out = {}
        for part in ("server", "client", "postgres"):
            if before[part] is not None and requests:
                out[f"{part}_cpu_ms_per_request"] = round(1000 * (after[part] - before[part]) / requests, 3)
        return out


async def bounded(coroutines, phase_timeout: float, recorder: Recorder, name: str) -> None:
    """Run the users' loops; a phase past ``phase_timeout`` seconds is cancelled and counted as an error."""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    done, pending = await asyncio.wait(tasks, timeout=phase_timeout)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
        recorder.error(name, f"phase timeout after {phase_timeout} s: {len(pending)} users unfinished")
    for task in done:
        if task.exception() is not None:
            recorder.error(name, repr(task.exception()))


def score_body(rng: random.Random, items, user_id: str, request: int, n_candidates: int) -> dict:
    picks = rng.sample(items, n_candidates)
    return {"prompt": picks[0][0], "responses": [f"{text} ({user_id} {request} {i})" for i, (_, text) in enumerate(picks)]}


async def run_load(port: int, users: list[tuple[str, str]], args, items: list[tuple[str, str]], meter: CpuMeter,
                   paced: bool) -> dict:
    """Closed loop (each user sends its next request as soon as the last one answered) or paced (open loop).

    Paced: user i's k-th onboarding step (next question + answer) is scheduled at t0 + i / rate + k * users / rate,
    so steps arrive evenly at ``rate`` per second whatever the latency; a step starts late only when the
    same user's previous step has not finished. Scoring requests likewise at ``--scores-per-s``.
    """
    recorder = Recorder()
    rng = random.Random(args.seed)
    loop = asyncio.get_running_loop()
    n_users = len(users)

    async def onboard(index: int, user_id: str, key: str, t0: float):
        conn = Connection(port, args.request_timeout)
        auth = {"Authorization": f"Bearer {key}"}
        try:
            for step in range(args.answers):
                if paced:
                    scheduled = t0 + (index + step * n_users) / args.answers_per_s
                    await asyncio.sleep(max(0.0, scheduled - loop.time()))
                question = await recorder.call(conn, "questions/next", "POST", f"/v1/users/{user_id}/questions/next", headers=auth)
                if question is None or question.get("done"):
                    break
                await recorder.call(conn, "answers", "POST", f"/v1/users/{user_id}/answers",
                                    {"question_id": question["question_id"], "preference": rng.choice("abb")},
                                    auth | {"Idempotency-Key": f"{user_id}-{step}"})
                if paced:
                    recorder.step_from_schedule.append(loop.time() - scheduled)
        finally:
            conn.close()

    async def score(index: int, user_id: str, key: str, t0: float):
        conn = Connection(port, args.request_timeout)
        auth = {"Authorization": f"Bearer {key}"}
        try:
            for request in range(args.score_requests):
                if paced:
                    await asyncio.sleep(max(0.0, t0 + (index + request * n_users) / args.scores_per_s - loop.time()))
                await recorder.call(conn, "score", "POST", "/v1/score", score_body(rng, items, user_id, request, args.candidates), auth)
        finally:
            conn.close()

    phases = {}
    for name, body in (("onboarding", onboard), ("scoring", score)):
        load_before = os.getloadavg()[0]
        cpu_before = meter.snapshot()
        start = time.perf_counter()
        t0 = loop.time() + 0.2
        await bounded([body(i, *u, t0) for i, u in enumerate(users)], args.phase_timeout, recorder, name)
        seconds = time.perf_counter() - start - (0.2 if paced else 0.0)
        names = ["questions/next", "answers"] if name == "onboarding" else ["score"]
        requests = sum(len(recorder.latency.get(n, [])) for n in names)
        phases[name] = {"seconds": round(seconds, 2), "requests": requests, "load_average_1min_start": round(load_before, 2),
                        **meter.per_request(cpu_before, meter.snapshot(), requests)}
    result = recorder.summary({"questions/next": phases["onboarding"]["seconds"], "answers": phases["onboarding"]["seconds"],
                               "score": phases["scoring"]["seconds"]})
    out = {
        "endpoints": result, "phases": phases,
        "answers_per_s": result.get("answers", {}).get("per_s", 0.0),
        "scored_texts_per_s": round(result.get("score", {}).get("requests", 0) * args.candidates / max(phases["scoring"]["seconds"], 1e-9), 1),
        "errors": sum(recorder.errors.values()), "error_examples": recorder.error_examples,
    }
    if paced:
        late = np.asarray(recorder.step_from_schedule) * 1000
        out.update(offered_answers_per_s=args.answers_per_s, offered_scores_per_s=args.scores_per_s,
                   step_done_after_schedule_p50_ms=round(float(np.percentile(late, 50)), 2) if len(late) else None,
                   step_done_after_schedule_p99_ms=round(float(np.percentile(late, 99)), 2) if len(late) else None)
    return out


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


def run_async(coroutine):
    """Run on uvloop when installed (the load generator then takes less of the CPU it shares with the server)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)


def create_users(port: int, n: int) -> list[tuple[str, str]]:
    async def create():
        conn = Connection(port, 60)
        users = []
        for i in range(n):
            status, payload = await conn.request("POST", "/v1/users", {"user_id": f"bench-{i}"},
                                                 {"Authorization": f"Bearer {ADMIN_KEY}"})
            assert status == 201, payload
            body = json.loads(payload)
            users.append((body["user_id"], body["api_key"]))
        conn.close()
        return users

    return run_async(create())


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


EXPLANATION = (
    "closed: every user sends its next request as soon as the previous one answered (no think time), so the "
    "server is saturated and latency is queueing time: by Little's law p50 ~ users in flight / request rate. "
    "paced: open loop at a fixed offered load (--answers-per-s onboarding steps, each a next-question and an "
    "answer request, then --scores-per-s scoring requests), the latency a p99 target refers to; "
    "step_done_after_schedule counts from when a step was due, so a server that falls behind shows it. "
    "cpu_ms_per_request: CPU seconds of the server process tree, of the load generator, and of all PostgreSQL "
    "processes (other clients of that server included) over the phase, divided by its requests."
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--answers", type=int, default=10)
    parser.add_argument("--score-requests", type=int, default=2)
    parser.add_argument("--candidates", type=int, default=10)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--modes", default="closed,paced", help="closed (saturation) and/or paced (open loop)")
    parser.add_argument("--answers-per-s", type=float, default=300.0, help="paced: onboarding steps offered per second")
    parser.add_argument("--scores-per-s", type=float, default=100.0, help="paced: scoring requests offered per second")
    parser.add_argument("--request-timeout", type=float, default=30.0, help="seconds before one request counts as an error")
    parser.add_argument("--phase-timeout", type=float, default=300.0, help="seconds before a phase is cancelled")
    parser.add_argument("--featurizer", default="minilm+stats")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--postgres-url", default=os.environ.get("PREFLM_TEST_POSTGRES_URL"))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/service_load.json")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.postgres_url and not args.postgres_url.split("@")[-1].startswith(("127.0.0.1", "localhost")):
        parser.error("--postgres-url must point at 127.0.0.1 (the benchmark sends traffic to this machine only)")

    load_start = os.getloadavg()
    workdir = Path(tempfile.mkdtemp(prefix="preflm-bench-"))
    model_dir, questions, items = build_model(workdir, args.featurizer, args.seed)
    offline = offline_rate(model_dir, items)
    print(f"featurizer {args.featurizer}: {offline:.0f} texts/s offline (one call of 1000 texts, best of 5)", flush=True)
    wanted = args.backends.split(",")
    backends = [("sqlite", None)] * ("sqlite" in wanted) + [("postgresql", args.postgres_url)] * ("postgresql" in wanted and bool(args.postgres_url))
    runs = []
    for backend, url in backends:
        for workers in [int(w) for w in args.workers.split(",")]:
            for mode in args.modes.split(","):
                schema = None
                if backend == "sqlite":
                    db_url = f"sqlite:///{workdir / f'bench-{workers}-{mode}.db'}"
                else:
                    schema = postgres_schema(url)
                    db_url = f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
                process, port = start_server(model_dir, questions, db_url, workers, workdir / f"server-{backend}-{workers}-{mode}.log")
                load_before = os.getloadavg()
                try:
                    users = create_users(port, args.users)
                    before = metric_values(port)
                    meter = CpuMeter(process.pid, postgres=backend == "postgresql")
                    result = run_async(run_load(port, users, args, items, meter, paced=mode == "paced"))
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
                result = {"backend": backend, "workers": workers, "mode": mode, **result,
                          "load_average_1min": {"start": round(load_before[0], 2), "end": round(os.getloadavg()[0], 2)},
                          "featurizer_calls": int(calls), "texts_per_featurizer_call": round(texts / calls, 1) if calls else None,
                          "featurizer_busy_texts_per_s": round(texts / busy, 1) if busy else None,
                          "scored_vs_offline": round(result["scored_texts_per_s"] / offline, 3)}
                runs.append(result)
                print(json.dumps({k: v for k, v in result.items() if k != "error_examples"}), flush=True)
    report = {
        "command": "python benchmarks/service_load.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()} cores={os.cpu_count()} (client, server and PostgreSQL share it, and other jobs)",
        "load_average_1_5_15min": {"start": [round(v, 2) for v in load_start], "end": [round(v, 2) for v in os.getloadavg()]},
        "users": args.users, "answers_per_user": args.answers, "score_requests_per_user": args.score_requests,
        "candidates_per_request": args.candidates, "featurizer": args.featurizer,
        "paced_offered": {"answers_per_s": args.answers_per_s, "scores_per_s": args.scores_per_s},
        "featurizer_offline_texts_per_s": round(offline, 1), "explanation": EXPLANATION, "runs": runs,
        "targets": {"answers_per_s": 300, "answers_p99_ms": 100, "errors": 0, "scored_vs_offline": 0.8},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
