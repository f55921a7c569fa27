"""The HTTP service through FastAPI's client: every endpoint, its errors and who may call it.

Runs on SQLite, and on PostgreSQL too when PREFLM_TEST_POSTGRES_URL is set (``.ci/run`` sets it).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from fastapi.testclient import TestClient
from serve_helpers import ADMIN_KEY, POSTGRES_ENV, backends, bearer, closed_port, database_url
from typer.testing import CliRunner

from preflm.factorize import RewardFactorization
from preflm.factorize.model import model_id_of
from preflm.serve import ServeSettings, create_app, store
from preflm.serve import db as serve_db
from preflm.serve.auth import Caller, hash_key
from preflm.serve.core import FeatureBatcher
from preflm.serve.errors import Unavailable
from preflm.serve.routers import onboarding



@pytest.fixture(params=backends())
def db_url(request, tmp_path):
    with database_url(request.param, tmp_path) as url:
        yield url


def settings_for(serve_model, db_url, **overrides) -> ServeSettings:
    model_dir, questions = serve_model
    values = dict(model_dir=str(model_dir), questions=str(questions), db_url=db_url, admin_key=ADMIN_KEY, budget=4,
                  target_confidence=0.99, max_body_bytes=8192)
    return ServeSettings(**{**values, **overrides})


class Api:
    """A TestClient plus shortcuts for creating users and answering."""

    def __init__(self, client: TestClient):
        self.client = client
        self.app = client.app

    def user(self, user_id: str | None = None) -> tuple[str, str]:
        reply = self.client.post("/v1/users", json={"user_id": user_id} if user_id else None, headers=bearer(ADMIN_KEY))
        assert reply.status_code == 201, reply.text
        return reply.json()["user_id"], reply.json()["api_key"]

    def next(self, user_id, key):
        return self.client.post(f"/v1/users/{user_id}/questions/next", headers=bearer(key))

    def answer(self, user_id, key, question_id, preference="a", idempotency_key=None):
        headers = bearer(key) | ({"Idempotency-Key": idempotency_key} if idempotency_key else {})
        return self.client.post(f"/v1/users/{user_id}/answers", json={"question_id": question_id, "preference": preference},
                                headers=headers)


@pytest.fixture
def api(serve_model, db_url, fake_llm):
    with TestClient(create_app(settings_for(serve_model, db_url, generator=fake_llm.spec))) as client:
        yield Api(client)


def test_onboarding_asks_distinct_questions_until_the_budget_then_says_done(api):
    user_id, key = api.user()
    service = api.app.state.service
    asked, confidences = [], [0.0]
    for step in range(10):
        question = api.next(user_id, key).json()
        if question["done"]:
            break
        assert question["answers"] == step and question["question_id"] not in asked
        row = service.questions.iloc[question["question_id"]]
        assert question["prompt"] == row["prompt"] and question["response_b"] == row["response_b"]
        reply = api.answer(user_id, key, question["question_id"], "ab"[step % 2])
        assert reply.status_code == 201 and reply.json()["answers"] == step + 1
        asked.append(question["question_id"])
        confidences.append(reply.json()["confidence"])
    assert len(asked) == 4 and question == {**question, "done": True, "answers": 4, "question_id": None}
    assert all(a < b for a, b in zip(confidences, confidences[1:]))

    profile = api.client.get(f"/v1/users/{user_id}/profile", headers=bearer(key)).json()
    labels = [1.0, 0.0, 1.0, 0.0]
    weights, covariance = service.model.fit_users(service.z[asked], np.array(labels))
    assert profile["answers"] == 4 and profile["done"] is True and profile["model_id"] == service.model_id
    np.testing.assert_allclose(profile["weights"], weights, rtol=1e-6)
    np.testing.assert_allclose(profile["covariance"], covariance, rtol=1e-6)
    assert profile["confidence"] == pytest.approx(confidences[-1])


def test_the_first_question_is_the_bandit_rules_pick_under_the_prior(api):
    user_id, key = api.user()
    service = api.app.state.service
    prior = service.prior_profile()
    scores = service.selector.scores(service.z, prior.weights, prior.covariance)
    assert api.next(user_id, key).json()["question_id"] == int(np.argmax(scores))


def test_confident_profile_stops_before_the_budget(serve_model, db_url):
    with TestClient(create_app(settings_for(serve_model, db_url, budget=30, target_confidence=0.2))) as client:
        api = Api(client)
        user_id, key = api.user()
        for _ in range(30):
            question = api.next(user_id, key).json()
            if question["done"]:
                break
            api.answer(user_id, key, question["question_id"])
        assert question["done"] and question["confidence"] >= 0.2 and question["answers"] < 30


def test_answer_errors_and_idempotent_retries(api):
    user_id, key = api.user()
    first = api.answer(user_id, key, 3, "tie", idempotency_key="try-1")
    assert first.status_code == 201 and first.json()["preference"] == "tie" and not first.json()["replayed"]
    again = api.answer(user_id, key, 3, "tie", idempotency_key="try-1")
    assert again.status_code == 200 and again.json()["replayed"] and again.json()["answers"] == 1
    assert store.count_answers(api.app.state.engine, user_id) == 1

    other = api.answer(user_id, key, 4, "a", idempotency_key="try-1")
    assert other.status_code == 409 and "Idempotency-Key" in other.json()["detail"]
    duplicate = api.answer(user_id, key, 3, "a")
    assert duplicate.status_code == 409 and "already answered" in duplicate.json()["detail"]
    missing = api.answer(user_id, key, 10_000)
    assert missing.status_code == 404 and "no question 10000" in missing.json()["detail"]
    for body in ({"question_id": 1, "preference": "c"}, {"question_id": -1, "preference": "a"},
                 {"question_id": 1}, {"question_id": 1, "preference": "a", "extra": 1}):
        reply = api.client.post(f"/v1/users/{user_id}/answers", json=body, headers=bearer(key))
        assert reply.status_code == 422, body
    for bad_key in ("x" * 201, "has space"):
        assert api.answer(user_id, key, 5, idempotency_key=bad_key).status_code == 422
    broken = api.client.post(f"/v1/users/{user_id}/answers", content=b"{not json", headers=bearer(key) | {"Content-Type": "application/json"})
    assert broken.status_code == 422
    assert store.count_answers(api.app.state.engine, user_id) == 1


def test_concurrent_answers_of_one_user_are_all_kept(api):
    """Many threads answer for one user at once (with some retried keys), half as the user (the route's
    path: the key lookup locks the row) and half as the admin (locked by id): every answer once, profile
    from all."""
    user_id, key = api.user()
    service, engine = api.app.state.service, api.app.state.engine
    jobs = [(q, float(q % 2), f"key-{q}") for q in range(16)] * 2
    as_user = Caller(False, hash_key(key))

    def submit(job):
        question, label, idem = job
        if question % 2:
            return onboarding._answer(engine, service, as_user, user_id, question, label, idem, 100)
        return store.record_answer(engine, service, user_id, question, label, idem, max_answers=100)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(submit, jobs))
    assert sum(not r.replayed for r in results) == 16 and store.count_answers(engine, user_id) == 16
    profile, answered = store.load_profile(engine, service, user_id, with_answers=True)
    assert sorted(answered) == list(range(16)) and profile.n_answers == 16
    expected, _ = service.model.fit_users(service.z[np.arange(16)], np.arange(16) % 2.0)
    np.testing.assert_allclose(profile.weights, expected, rtol=1e-6)


def test_a_pooled_connection_the_server_dropped_is_replaced_before_use(tmp_path, monkeypatch):
    """Server connections idle for a while are tested before use, so a dropped one costs no failed request."""
    if not os.environ.get(POSTGRES_ENV):
        pytest.skip(f"{POSTGRES_ENV} not set")
    with database_url("postgres", tmp_path) as url:
        engine, admin = serve_db.make_engine(url), serve_db.make_engine(url)
        try:
            with engine.connect() as conn:
                pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            with admin.connect() as conn:
                assert conn.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})").scalar()
            monkeypatch.setattr(serve_db, "PING_AFTER_IDLE_S", 0.0)
            with engine.connect() as conn:
                assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() != pid
        finally:
            engine.dispose()
            admin.dispose()


def test_score_uses_the_callers_profile(api):
    user_id, key = api.user()
    for q in range(3):
        api.answer(user_id, key, q, "b")
    service = api.app.state.service
    responses = ["Sure! Here you go!!", "I think the answer is 42.", "Well, you'd ask me, wouldn't you?"]
    reply = api.client.post("/v1/score", json={"prompt": "Tell me", "responses": responses}, headers=bearer(key))
    assert reply.status_code == 200
    profile, _ = store.load_profile(api.app.state.engine, service, user_id)
    expected = RewardFactorization.load(api.app.state.settings.model_dir).rewards(
        ["Tell me"] * 3, responses, profile.weights)
    np.testing.assert_allclose(reply.json()["rewards"], expected, rtol=1e-5)
    assert reply.json()["best"] == int(np.argmax(expected))
    as_admin = api.client.post("/v1/score", json={"prompt": "Tell me", "responses": responses, "user_id": user_id},
                               headers=bearer(ADMIN_KEY))
    assert as_admin.json() == reply.json()


def test_score_errors(api):
    user_id, key = api.user()
    post = lambda body, who=key: api.client.post("/v1/score", json=body, headers=bearer(who))
    assert post({"prompt": "p", "responses": ["a"]}, ADMIN_KEY).status_code == 400
    assert "name the user" in post({"prompt": "p", "responses": ["a"]}, ADMIN_KEY).json()["detail"]
    assert post({"prompt": "p", "responses": ["a"], "user_id": "nobody"}, ADMIN_KEY).status_code == 404
    assert post({"prompt": "p", "responses": []}).status_code == 422
    assert post({"prompt": "p", "responses": ["a"] * 65}).status_code == 422
    assert post({"prompt": "p", "responses": "a"}).status_code == 422
    assert post({"prompt": "p", "responses": ["a"], "user_id": "bad id!"}).status_code == 422
    too_big = post({"prompt": "p" * 10_000, "responses": ["a"]})
    assert too_big.status_code == 413 and "8192 bytes" in too_big.json()["detail"]


def test_text_limits_answer_422(serve_model, db_url):
    with TestClient(create_app(settings_for(serve_model, db_url, max_body_bytes=1 << 20))) as client:
        api = Api(client)
        user_id, key = api.user()
        reply = client.post("/v1/score", json={"prompt": "p", "responses": ["x" * 32_001]}, headers=bearer(key))
        assert reply.status_code == 422 and "32000" in reply.text


def test_delete_removes_user_answers_and_key(api):
    user_id, key = api.user("carol")
    other_id, other_key = api.user()
    api.answer(user_id, key, 0)
    api.answer(other_id, other_key, 0)
    assert api.client.delete(f"/v1/users/{user_id}", headers=bearer(key)).status_code == 204
    assert store.count_answers(api.app.state.engine, user_id) == 0
    assert store.count_answers(api.app.state.engine, other_id) == 1
    assert api.client.get(f"/v1/users/{user_id}/profile", headers=bearer(key)).status_code == 401
    assert api.client.delete(f"/v1/users/{user_id}", headers=bearer(ADMIN_KEY)).status_code == 404
    assert api.client.post("/v1/users", json={"user_id": other_id}, headers=bearer(ADMIN_KEY)).status_code == 409
    assert api.user("carol")[0] == "carol"


def test_chat_completions_returns_the_users_best_candidate(api, fake_llm):
    user_id, key = api.user()
    api.answer(user_id, key, 0, "a")
    body = {"model": "m", "user": user_id, "n": 5, "seed": 3,
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello?"}]}
    reply = api.client.post("/v1/chat/completions", json=body, headers=bearer(ADMIN_KEY))
    assert reply.status_code == 200, reply.text
    out = reply.json()
    extra = out["preflm"]
    assert len(extra["candidates"]) == 5 and extra["user"] == user_id
    assert extra["best"] == int(np.argmax(extra["rewards"]))
    assert out["choices"][0]["message"] == {"role": "assistant", "content": extra["candidates"][extra["best"]]}
    sent = fake_llm.requests[-1]
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."} and sent["n"] == 5 and sent["seed"] == 3
    own = api.client.post("/v1/chat/completions", json={**body, "user": None}, headers=bearer(key))
    assert own.status_code == 200 and own.json()["preflm"]["rewards"] == extra["rewards"]
    last_not_user = {**body, "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
    assert api.client.post("/v1/chat/completions", json=last_not_user, headers=bearer(key)).status_code == 400
    assert api.client.post("/v1/chat/completions", json={**body, "user": None}, headers=bearer(ADMIN_KEY)).status_code == 400


def test_chat_generator_down_or_missing(serve_model, db_url):
    spec = f"openai:http://127.0.0.1:{closed_port()}/v1#gone"
    with TestClient(create_app(settings_for(serve_model, db_url, generator=spec, generator_timeout_s=2))) as client:
        api = Api(client)
        user_id, key = api.user()
        reply = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]}, headers=bearer(key))
        assert reply.status_code == 502 and spec.split("#")[0][len("openai:"):] in reply.json()["detail"]
    with TestClient(create_app(settings_for(serve_model, db_url))) as client:
        key = Api(client).user()[1]
        reply = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]}, headers=bearer(key))
        assert reply.status_code == 503 and "--model-name-or-path" in reply.json()["detail"]


def test_get_reward_openrlhf_format(api):
    alice, alice_key = api.user("alice")
    bob, _ = api.user("bob")
    api.answer(alice, alice_key, 0, "a")
    service = api.app.state.service
    body = {"query": ["Q: hi A: Hello!", "Q: hi A: Fine.", "other text"], "prompts": ["Q: hi ", "Q: hi ", "Q: x"],
            "labels": ["alice", "ignored", "bob"], "user_ids": [None, "bob", None]}
    reply = api.client.post("/get_reward", json=body, headers=bearer(ADMIN_KEY))
    assert reply.status_code == 200, reply.text
    weights = store.profiles_for(api.app.state.engine, service, ["alice", "bob"])
    phi = service.model.base_rewards(service.featurizer.transform(["Q: hi ", "Q: hi ", "Q: x"], ["A: Hello!", "A: Fine.", "other text"]))
    expected = [phi[0] @ weights["alice"], phi[1] @ weights["bob"], phi[2] @ weights["bob"]]
    np.testing.assert_allclose(reply.json()["rewards"], expected, rtol=1e-5)
    assert reply.json()["scores"] == reply.json()["rewards"]

    own = api.client.post("/get_reward", json={"query": ["Q: hi A: Hello!"], "prompts": ["Q: hi "]}, headers=bearer(alice_key))
    assert own.json()["rewards"] == pytest.approx(reply.json()["rewards"][:1])
    assert api.client.post("/get_reward", json={"query": ["a"], "labels": ["bob"]}, headers=bearer(alice_key)).status_code == 403
    assert api.client.post("/get_reward", json={"query": ["a", "b"], "prompts": ["a"]}, headers=bearer(alice_key)).status_code == 400
    assert api.client.post("/get_reward", json={"query": ["a"]}, headers=bearer(ADMIN_KEY)).status_code == 400
    assert api.client.post("/get_reward", json={"query": ["a"], "labels": ["The answer is 4\x00"]}, headers=bearer(ADMIN_KEY)).status_code == 404
    assert api.client.post("/get_reward", json={"query": []}, headers=bearer(alice_key)).status_code == 422


def test_health_and_metrics(api):
    health = api.client.get("/healthz").json()
    assert health == {"status": "ok", "model_id": api.app.state.service.model_id, "questions": 40, "database": "ok"}
    user_id, key = api.user()
    api.answer(user_id, key, 1)
    api.client.post("/v1/score", json={"prompt": "p", "responses": ["a", "b"]}, headers=bearer(key))
    text = api.client.get("/metrics").text
    assert 'preflm_requests_total{method="POST",route="/v1/users/{user_id}/answers",status="201"}' in text
    assert "preflm_request_seconds_bucket" in text and "preflm_answers_total" in text
    assert "preflm_featurizer_seconds_count" in text and "preflm_featurizer_texts_total" in text


MATRIX = {  # endpoint -> expected status for (owner, other user, admin, no key, wrong key)
    "create_user": (403, 403, 201, 401, 401),
    "delete_user": (204, 403, 204, 401, 401),
    "next_question": (200, 403, 200, 401, 401),
    "answer": (201, 403, 201, 401, 401),
    "profile": (200, 403, 200, 401, 401),
    "score": (200, 403, 200, 401, 401),
    "chat": (200, 403, 200, 401, 401),
    "get_reward": (200, 403, 200, 401, 401),
    "healthz": (200, 200, 200, 200, 200),
    "metrics": (200, 200, 200, 200, 200),
}


def test_authorization_matrix(api):
    """Each endpoint acting on user A's data, called by A, by B, by the admin, with no key and a wrong key."""
    owner_id, owner_key = api.user("user-a")
    _, other_key = api.user("user-b")
    callers = [owner_key, other_key, ADMIN_KEY, None, "pk_" + "x" * 43]
    questions = iter(range(40))
    client = api.client

    def call(endpoint: str, key: str | None):
        target, target_key = owner_id, owner_key
        if endpoint == "delete_user":  # a fresh victim each time, so deleting works more than once
            target, target_key = api.user()
            key = {owner_key: target_key}.get(key, key)
        headers = bearer(key)
        chat = {"user": target, "messages": [{"role": "user", "content": "hi"}]}
        requests = {
            "create_user": lambda: client.post("/v1/users", headers=headers),
            "delete_user": lambda: client.delete(f"/v1/users/{target}", headers=headers),
            "next_question": lambda: client.post(f"/v1/users/{target}/questions/next", headers=headers),
            "answer": lambda: client.post(f"/v1/users/{target}/answers", json={"question_id": next(questions), "preference": "a"}, headers=headers),
            "profile": lambda: client.get(f"/v1/users/{target}/profile", headers=headers),
            "score": lambda: client.post("/v1/score", json={"prompt": "p", "responses": ["a"], "user_id": target}, headers=headers),
            "chat": lambda: client.post("/v1/chat/completions", json=chat, headers=headers),
            "get_reward": lambda: client.post("/get_reward", json={"query": ["a"], "user_ids": [target]}, headers=headers),
            "healthz": lambda: client.get("/healthz", headers=headers),
            "metrics": lambda: client.get("/metrics", headers=headers),
        }
        return requests[endpoint]().status_code

    got = {endpoint: tuple(call(endpoint, key) for key in callers) for endpoint in MATRIX}
    assert got == MATRIX
    # A user key learns nothing about other users: unknown ids answer 403 exactly like existing ones.
    assert client.get("/v1/users/no-such-user/profile", headers=bearer(other_key)).status_code == 403
    assert client.post("/v1/users", headers={"Authorization": "Basic abc"}).status_code == 401


def test_users_cli_shares_the_database(serve_model, db_url):
    from preflm.cli import app as cli

    runner = CliRunner()
    created = runner.invoke(cli, ["users", "create", "--db", db_url, "--user-id", "dave"])
    assert created.exit_code == 0, created.output
    key = next(line.split()[-1] for line in created.output.splitlines() if line.startswith("api_key:"))
    with TestClient(create_app(settings_for(serve_model, db_url))) as client:
        Api(client).answer("dave", key, 2)
        assert client.get("/v1/users/dave/profile", headers=bearer(key)).json()["answers"] == 1
    listed = runner.invoke(cli, ["users", "list", "--db", db_url])
    assert "dave" in listed.output
    assert runner.invoke(cli, ["users", "create", "--db", db_url, "--user-id", "dave"]).exit_code == 2
    assert runner.invoke(cli, ["users", "delete", "dave", "--db", db_url]).exit_code == 0
    gone = runner.invoke(cli, ["users", "delete", "dave", "--db", db_url])
    assert gone.exit_code == 2 and "no user 'dave'" in gone.output


def test_another_question_set_is_refused_once_answers_exist(serve_model, db_url, tmp_path):
    import pandas as pd

    with TestClient(create_app(settings_for(serve_model, db_url))) as client:
        api = Api(client)
        user_id, key = api.user()
        api.answer(user_id, key, 0)
    shuffled = tmp_path / "other.csv"
    pd.read_csv(serve_model[1]).iloc[::-1].to_csv(shuffled, index=False)
    with pytest.raises(ValueError, match="another question set"):
        create_app(settings_for(serve_model, db_url, questions=str(shuffled)))


def test_the_service_uses_the_libraries_model_id(serve_model, db_url, tmp_path):
    import shutil

    copy = shutil.copytree(serve_model[0], tmp_path / "copy")
    assert model_id_of(copy) == model_id_of(serve_model[0]) and len(model_id_of(copy)) == 16
    with TestClient(create_app(settings_for(serve_model, db_url))) as api:
        assert api.app.state.service.model_id == model_id_of(serve_model[0])
    with pytest.raises(FileNotFoundError):
        model_id_of(tmp_path)


def test_feature_batcher_merges_waiting_requests_into_one_call():
    calls, gate, first_call = [], threading.Event(), threading.Event()

    def embed(prompts, responses):
        calls.append(list(responses))
        first_call.set()
        gate.wait(10)
        return np.array([[float(r)] for r in responses])

    batcher = FeatureBatcher(embed, window_s=0.0, max_texts=1000)
    with ThreadPoolExecutor(8) as pool:
        first = pool.submit(batcher.base_rewards, ["p"], ["0"])
        first_call.wait(10)
        rest = [pool.submit(batcher.base_rewards, ["p"] * 2, [str(10 * i), str(10 * i + 1)]) for i in range(1, 8)]
        for _ in range(1000):  # until the other seven requests wait in the queue (at most 10 s)
            if batcher._queue.qsize() == 7:
                break
            threading.Event().wait(0.01)
        gate.set()
        assert first.result(10).tolist() == [[0.0]]
        for i, future in enumerate(rest, 1):
            assert future.result(10).ravel().tolist() == [10 * i, 10 * i + 1]
    batcher.close()
    assert len(calls) == 2 and len(calls[1]) == 14


def test_feature_batcher_passes_errors_to_every_caller():
    def embed(prompts, responses):
        raise RuntimeError("featurizer broke")

    batcher = FeatureBatcher(embed)
    with pytest.raises(Unavailable, match="featurizer failed: RuntimeError: featurizer broke"):
        batcher.base_rewards(["p"], ["r"])
    batcher.close()


def test_feature_batcher_skips_callers_that_gave_up():
    """An async caller's timeout cancels its future; the worker must skip it and keep serving the others."""
    entered, gate, calls = threading.Event(), threading.Event(), []

    def embed(prompts, responses):
        entered.set()
        gate.wait(10)
        calls.append(list(responses))
        return np.asarray([[float(r)] for r in responses])

    batcher = FeatureBatcher(embed, window_s=0.0)
    first = batcher.submit(["p"], ["1"])
    assert entered.wait(10)  # the worker embeds the first request; the next one waits in the queue
    abandoned = batcher.submit(["p"], ["2"])
    assert abandoned.cancel()
    gate.set()
    assert first.result(10).tolist() == [[1.0]]
    assert batcher.base_rewards(["p"], ["3"]).tolist() == [[3.0]]
    batcher.close()
    assert calls == [["1"], ["3"]]


def test_serve_command_explains_what_is_missing(serve_model, tmp_path):
    from preflm.cli import app as cli

    runner = CliRunner()
    no_questions = runner.invoke(cli, ["serve", "--reward-model", str(serve_model[0])])
    assert no_questions.exit_code == 2 and "--questions" in no_questions.output
    no_model = runner.invoke(cli, ["serve", "--reward-model", str(tmp_path / "nothing"), "--questions", str(serve_model[1]),
                                   "--db", f"sqlite:///{tmp_path / 'x.db'}"])
    assert no_model.exit_code == 2 and "model.safetensors" in no_model.output
    memory = runner.invoke(cli, ["serve", "--reward-model", str(serve_model[0]), "--questions", str(serve_model[1]), "--db", "sqlite://"])
    assert memory.exit_code == 2 and "SQLite file" in memory.output
    negative = runner.invoke(cli, ["serve", "--reward-model", str(serve_model[0]), "--questions", str(serve_model[1]),
                                   "--db", f"sqlite:///{tmp_path / 'y.db'}", "--lock-timeout-ms", "-1"])
    assert negative.exit_code == 2 and "db_lock_timeout_ms" in negative.output and "Traceback" not in negative.output
