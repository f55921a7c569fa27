"""Shared by the service tests: a tiny trained model with its question file, and database URLs.

The model is trained once per test process on a small Attributes world with text statistics as
features (no model download); ``database_url`` gives an SQLite file or, when
``PREFLM_TEST_POSTGRES_URL`` is set, a fresh PostgreSQL schema that is dropped afterwards.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest

import preflm

POSTGRES_ENV = "PREFLM_TEST_POSTGRES_URL"
ADMIN_KEY = "admin-secret-for-tests"
_BUILT: dict[str, tuple[Path, Path]] = {}
SOURCE_ROOT = Path(preflm.__file__).resolve().parents[1]


def tiny_model(root: Path) -> tuple[Path, Path]:
    """(model folder, questions file): 3 factors, linear head, ~60 steps; built once per process."""
    if "model" in _BUILT:
        return _BUILT["model"]
    from preflm.data import AnswerMatrix, load_preferences
    from preflm.factorize import RewardFactorization
    from preflm.factorize.pipeline import featurize_items
    from preflm.featurize import TextStatsFeaturizer
    from preflm.simulate import WorldConfig, write_world

    world = write_world(root / "world.jsonl", WorldConfig(
        n_prompts=20, n_mixture_users=6, train_answers_per_user=60, pool_size=30, test_size=10,
    ))
    frame = load_preferences(world)
    train = AnswerMatrix.from_frame(frame[frame["split"] == "train"])
    featurizer = TextStatsFeaturizer()
    model = RewardFactorization(n_factors=3, head="linear", max_steps=60, featurizer=featurizer)
    model.fit(featurize_items(train, featurizer), train, progress=False)
    model_dir = model.save(root / "model")
    pool = frame[frame["split"] == "pool"][["prompt", "response_a", "response_b"]].drop_duplicates().head(40)
    questions = root / "questions.csv"
    pool.to_csv(questions, index=False)
    _BUILT["model"] = (model_dir, questions)
    return _BUILT["model"]


def backends() -> list:
    """sqlite always; postgres as a parameter that skips (locally) when no server URL is given."""
    marks = [] if os.environ.get(POSTGRES_ENV) else [pytest.mark.skip(reason=f"{POSTGRES_ENV} not set")]
    return ["sqlite", pytest.param("postgres", marks=marks)]


@contextmanager
def database_url(backend: str, tmp_path: Path):
    """A URL to an empty database of that backend, cleaned up afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'service.db'}"
        return
    from sqlalchemy import create_engine, text

    base = os.environ[POSTGRES_ENV]
    schema = f"preflm_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def bearer(key: str | None) -> dict:
    return {} if key is None else {"Authorization": f"Bearer {key}"}


class FakeOpenAI:
    """A local OpenAI-compatible /v1/chat/completions that answers ``n`` distinct, deterministic choices.

    Choice i repeats "!" i times, so text statistics (and the model's rewards) differ between choices.
    Set ``status`` to an error code to make every request fail with it.
    """

    def __init__(self):
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        requests = self.requests = []
        self.status = 200
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                requests.append(payload)
                if fake.status != 200:
                    self.send_response(fake.status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                user = payload["messages"][-1]["content"]
                choices = [{"index": i, "message": {"role": "assistant", "content": f"Answer {i} to {user}" + "!" * i}}
                           for i in range(payload.get("n", 1))]
                data = json.dumps({"choices": choices, "usage": {"completion_tokens": 5}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def spec(self) -> str:
        return f"openai:http://127.0.0.1:{self.server.server_address[1]}/v1#fake-model"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """Starts ``preflm serve`` on a free port and kills it with SIGKILL; every wait is bounded."""

    def __init__(self, model_dir: Path, questions: Path, db_url: str, log: Path, extra: tuple[str, ...] = ()):
        self.port = closed_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = [sys.executable, "-c", "from preflm.cli import app; app()", "--threads", "1", "serve",
                        "--reward-model", str(model_dir), "--questions", str(questions), "--db", db_url, "--port", str(self.port),
                        "--log-level", "warning", *extra]
        self.env = {**os.environ, "PREFLM_ADMIN_KEY": ADMIN_KEY, "PYTHONPATH": str(SOURCE_ROOT), "HF_HUB_OFFLINE": "1"}
        self.log = log
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> None:
        import httpx

        with self.log.open("a") as log:
            self.process = subprocess.Popen(self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited with {self.process.returncode}: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.kill()
        raise AssertionError(f"the server did not become healthy in {timeout} s: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def serve_model(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny trained model and its question file, once per test module."""
    return tiny_model(tmp_path_factory.mktemp("serve-model"))


@pytest.fixture(scope="module")
def fake_llm():
    """A fake OpenAI-compatible server on 127.0.0.1, once per test module."""
    server = FakeOpenAI()
    yield server
    server.close()
