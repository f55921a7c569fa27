"""``preflm serve`` as a real process: answer under load, ``kill -9`` it several times, restart, and
find every acknowledged answer stored exactly once (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from serve_helpers import ADMIN_KEY, ServerProcess, backends, bearer, database_url, tiny_model
from sqlalchemy import create_engine, text


@pytest.fixture(params=backends())
def db_url(request, tmp_path):
    with database_url(request.param, tmp_path) as url:
        yield url


def test_acknowledged_answers_survive_kill_9_exactly_once(tmp_path, db_url):
    model_dir, questions = tiny_model(tmp_path)
    server = ServerProcess(model_dir, questions, db_url, tmp_path / "server.log")
    server.start()
    users = []
    for i in range(6):
        reply = httpx.post(f"{server.url}/v1/users", json={"user_id": f"load-{i}"}, headers=bearer(ADMIN_KEY), timeout=10)
        assert reply.status_code == 201
        users.append((reply.json()["user_id"], reply.json()["api_key"]))
    acknowledged: dict[str, list[int]] = {user_id: [] for user_id, _ in users}
    failures: list[str] = []
    stop_at = time.monotonic() + 120

    def answer_all(user_id: str, key: str) -> None:
        """Answer questions 0..11 in order; retry each with its idempotency key until acknowledged."""
        with httpx.Client(timeout=5) as client:
            for question in range(12):
                while time.monotonic() < stop_at:
                    try:
                        reply = client.post(f"{server.url}/v1/users/{user_id}/answers",
                                            json={"question_id": question, "preference": "ab"[question % 2]},
                                            headers=bearer(key) | {"Idempotency-Key": f"{user_id}-{question}"})
                    except httpx.TransportError:
                        time.sleep(0.05)
                        continue
                    if reply.status_code in (200, 201):
                        acknowledged[user_id].append(question)
                        break
                    if reply.status_code != 503:
                        failures.append(f"{user_id} q{question}: {reply.status_code} {reply.text}")
                        return
                    time.sleep(0.05)
                time.sleep(0.02)

    threads = [threading.Thread(target=answer_all, args=user) for user in users]
    for thread in threads:
        thread.start()
    kills, restarts = 0, []
    for threshold in (10, 30, 50):  # kill -9 once this many answers of the 72 are acknowledged
        while time.monotonic() < stop_at and sum(map(len, acknowledged.values())) < threshold and not failures:
            time.sleep(0.005)
        server.kill()
        kills += 1
        start = time.monotonic()
        server.start()
        restarts.append(time.monotonic() - start)
    for thread in threads:
        thread.join(timeout=max(1.0, stop_at - time.monotonic()))
    server.kill()

    assert not failures, failures
    assert kills == 3 and sum(map(len, acknowledged.values())) == 72
    assert all(sorted(a) == list(range(12)) for a in acknowledged.values()), acknowledged
    engine = create_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT user_id, question_id FROM preflm_answers")).all()
        counts = dict(conn.execute(text("SELECT id, n_answers FROM preflm_users")).all())
    engine.dispose()
    stored = sorted((u, q) for u, q in rows)
    assert stored == sorted((u, q) for u, qs in acknowledged.items() for q in qs)
    assert all(counts[user_id] == 12 for user_id, _ in users)
