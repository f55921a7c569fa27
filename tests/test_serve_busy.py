"""The service under a busy or stopping backend: a held database lock, a failing or slow featurizer,
an exhausted pool, a closed service. Each must stay responsive elsewhere or answer 503 with its cause."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from fastapi import HTTPException
from fastapi.testclient import TestClient
from serve_helpers import ADMIN_KEY, POSTGRES_ENV, bearer, database_url
from sqlalchemy import event, text

from preflm.serve import ServeSettings, create_app
from preflm.serve import db as serve_db
from preflm.serve.auth import Caller, hash_key
from preflm.serve.errors import Unavailable
from preflm.serve.routers import onboarding


def make_client(serve_model, db_url, **overrides) -> TestClient:
    model_dir, questions = serve_model
    settings = ServeSettings(model_dir=str(model_dir), questions=str(questions), db_url=db_url, admin_key=ADMIN_KEY,
                             budget=4, target_confidence=0.99, **overrides)
    return TestClient(create_app(settings))


def new_user(client: TestClient) -> tuple[str, str]:
    reply = client.post("/v1/users", json=None, headers=bearer(ADMIN_KEY))
    assert reply.status_code == 201, reply.text
    return reply.json()["user_id"], reply.json()["api_key"]


def answer(client: TestClient, user_id: str, key: str, question_id: int = 0):
    return client.post(f"/v1/users/{user_id}/answers", json={"question_id": question_id, "preference": "a"},
                       headers=bearer(key))


@pytest.fixture
def sqlite_client(serve_model, tmp_path):
    url = f"sqlite:///{tmp_path / 'service.db'}"
    with make_client(serve_model, url) as client:
        yield client, tmp_path / "service.db"


def test_a_writer_waiting_for_the_sqlite_lock_leaves_reads_and_refusals_answering(sqlite_client):
    """Another process holds SQLite's write lock: the answer waits for it on the writer thread while the
    event loop still serves the profile, /healthz, and the 401/403 of keys that must not take the lock."""
    client, path = sqlite_client
    user, key = new_user(client)
    other, other_key = new_user(client)
    writing = threading.Event()
    event.listen(client.app.state.engine, "begin", lambda conn: writing.set(), insert=True)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    with ThreadPoolExecutor(1) as pool:
        try:
            pending = pool.submit(answer, client, user, key)
            assert writing.wait(30), "the answer never opened its write transaction"
            profile = client.get(f"/v1/users/{user}/profile", headers=bearer(key))
            health = client.get("/healthz")
            bogus = answer(client, user, "pk_" + "x" * 43)
            foreign = answer(client, user, other_key)
            still_waiting = not pending.done()
        finally:
            holder.execute("COMMIT")
            holder.close()
        stored = pending.result(60)
    assert still_waiting
    assert profile.status_code == 200 and profile.json()["answers"] == 0
    assert health.status_code == 200 and health.json()["database"] == "ok"
    assert bogus.status_code == 401 and foreign.status_code == 403
    assert stored.status_code == 201, stored.text
    assert client.get(f"/v1/users/{user}/profile", headers=bearer(key)).json()["answers"] == 1


def test_a_key_deleted_after_the_check_is_refused_inside_the_write_transaction(sqlite_client):
    client, _ = sqlite_client
    app = client.app
    gone = Caller(False, hash_key("pk_deleted-meanwhile"))
    with pytest.raises(HTTPException) as refused:
        onboarding._answer(app.state.engine, app.state.service, gone, "someone", 0, 1.0, None, 10)
    assert refused.value.status_code == 401


def test_featurizer_failure_and_timeout_answer_503(sqlite_client, monkeypatch):
    client, _ = sqlite_client
    user, key = new_user(client)
    service = client.app.state.service

    def broken(prompts, responses):
        raise RuntimeError("backbone out of memory")

    monkeypatch.setattr(service.batcher, "embed", broken)
    reply = client.post("/v1/score", json={"prompt": "p", "responses": ["a", "b"]}, headers=bearer(key))
    assert reply.status_code == 503
    assert "featurizer failed" in reply.json()["detail"] and "backbone out of memory" in reply.json()["detail"]

    gate = threading.Event()
    monkeypatch.setattr(service.batcher, "embed", lambda prompts, responses: gate.wait(30) * np.zeros((len(prompts), 1)))
    try:
        with pytest.raises(Unavailable, match="did not answer within"):
            asyncio.run(service.base_rewards_async(["p"], ["r"], timeout=0.01))
    finally:
        gate.set()


def test_an_exhausted_connection_pool_answers_503(sqlite_client, monkeypatch):
    client, _ = sqlite_client
    user, key = new_user(client)
    engine = client.app.state.engine
    monkeypatch.setattr(engine.pool, "_timeout", 0.01)
    held = []
    try:
        while engine.pool.checkedout() < engine.pool.size() + engine.pool._max_overflow:
            held.append(engine.connect())
        reply = client.get(f"/v1/users/{user}/profile", headers=bearer(key))
    finally:
        for conn in held:
            conn.close()
    assert reply.status_code == 503 and "pool exhausted" in reply.json()["detail"]


def test_after_close_database_work_and_scoring_fail_fast(serve_model, tmp_path):
    with make_client(serve_model, f"sqlite:///{tmp_path / 'service.db'}") as client:
        app = client.app
    engine, service = app.state.engine, app.state.service

    async def call(write: bool):
        return await serve_db.run_db(engine, lambda: 1, write=write)

    for write in (False, True):
        with pytest.raises(Unavailable, match="shutting down"):
            asyncio.run(call(write))
    with pytest.raises(Unavailable, match="shut down"):
        asyncio.run(service.base_rewards_async(["p"], ["r"]))
    with pytest.raises(Unavailable, match="shut down"):
        service.base_rewards(["p"], ["r"])


def test_a_closing_batcher_finishes_queued_requests_and_refuses_new_ones():
    from preflm.serve.core import FeatureBatcher

    entered, gate = threading.Event(), threading.Event()

    def embed(prompts, responses):
        entered.set()
        gate.wait(30)
        return np.asarray([[float(r)] for r in responses])

    batcher = FeatureBatcher(embed, window_s=0.0)
    first = batcher.submit(["p"], ["1"])
    assert entered.wait(30)
    queued = batcher.submit(["p"], ["2"])
    closing = threading.Thread(target=batcher.close)
    closing.start()
    while not batcher._closed:
        threading.Event().wait(0.001)
    with pytest.raises(Unavailable, match="shut down"):
        batcher.submit(["p"], ["3"])
    gate.set()
    closing.join(30)
    assert first.result(30).tolist() == [[1.0]] and queued.result(30).tolist() == [[2.0]]


def test_postgres_row_lock_held_past_lock_timeout_answers_503(serve_model, tmp_path):
    if not os.environ.get(POSTGRES_ENV):
        pytest.skip(f"{POSTGRES_ENV} not set")
    with database_url("postgres", tmp_path) as url:
        with make_client(serve_model, url, db_lock_timeout_ms=100) as client:
            user, key = new_user(client)
            holder = serve_db.make_engine(url, lock_timeout_ms=0)
            try:
                with holder.connect() as conn, conn.begin():
                    conn.execute(text("SELECT id FROM preflm_users WHERE id = :id FOR UPDATE"), {"id": user})
                    reply = answer(client, user, key)
                after = answer(client, user, key)
            finally:
                holder.dispose()
    assert reply.status_code == 503
    assert "lock_timeout (100 ms)" in reply.json()["detail"]
    assert after.status_code == 201, after.text
