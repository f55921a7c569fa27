"""The web pages' server side without a browser: sessions and CSRF, the study's blinding and judgments,
the Wilson interval and the report (SQLite, and PostgreSQL when PREFLM_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

import math
import re

import pytest
from fastapi.testclient import TestClient
from serve_helpers import ADMIN_KEY, backends, database_url
from sqlalchemy import select

from preflm.serve import ServeSettings, create_app, invites, models, store, study



@pytest.fixture(params=backends())
def client(request, serve_model, fake_llm, tmp_path):
    model_dir, questions = serve_model
    with database_url(request.param, tmp_path) as url:
        settings = ServeSettings(model_dir=str(model_dir), questions=str(questions), db_url=url, admin_key=ADMIN_KEY,
                                 generator=fake_llm.spec, budget=3, target_confidence=0.99)
        with TestClient(create_app(settings), follow_redirects=True) as client:
            yield client


def onboard(client: TestClient, token: str) -> int:
    """Redeem the invite and answer A until the stopping rule; returns how many answers it took."""
    assert client.post(f"/invite/{token}").status_code == 200
    for count in range(50):
        page = client.get("/onboard").text
        found = re.search(r'name="question_id" value="(\d+)"', page)
        if found is None:
            return count
        client.post("/onboard", data={"question_id": found.group(1), "preference": "a"})
    raise AssertionError("onboarding never stopped")


def test_wilson_interval_ends_solve_the_score_equation():
    z = study.Z_95
    for wins, n in [(1, 2), (8, 10), (37, 50), (3, 200)]:
        low, high = study.wilson_interval(wins, n)
        p_hat = wins / n
        assert low < p_hat < high
        for p in (low, high):
            assert math.isclose((p_hat - p) ** 2, z * z * p * (1 - p) / n, abs_tol=1e-12)
    assert study.wilson_interval(0, 0) == (0.0, 1.0)
    low, high = study.wilson_interval(0, 5)
    assert low == 0.0 and 0 < high < 1


def test_invite_cookie_is_httponly_and_only_hashes_are_stored(client):
    engine = client.app.state.engine
    user_id, token = invites.create_invite(engine, "web-user")
    reply = client.post(f"/invite/{token}", follow_redirects=False)
    assert reply.status_code == 303 and reply.headers["location"] == "/onboard"
    cookie = reply.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    session_token = reply.cookies["preflm_session"]
    with engine.connect() as conn:
        stored = [*conn.execute(select(models.invites.c.token_hash)).scalars(), *conn.execute(select(models.sessions.c.token_hash)).scalars()]
    assert token not in stored and session_token not in stored and len(stored) == 2
    assert client.post(f"/invite/{token}").status_code == 410  # single use


def test_a_post_from_another_site_is_refused(client):
    _, token = invites.create_invite(client.app.state.engine)
    client.post(f"/invite/{token}")
    reply = client.post("/onboard", data={"question_id": "0", "preference": "a"}, headers={"Origin": "https://evil.example"})
    assert reply.status_code == 403
    assert store.count_answers(client.app.state.engine) == 0


def test_study_pairs_are_blind_fixed_per_participant_and_judged_once(client):
    engine = client.app.state.engine
    prompts = ["first prompt", "second prompt", "third prompt", "fourth prompt"]
    study_id, links = study.create_study(engine, prompts, 4, 2, 2)
    assert client.get("/study").status_code == 401
    assert onboard(client, links[0][1]) == 2  # the study's budget, not the server's 3
    page = client.get("/study").text
    first = re.search(r'name="judgment_id" value="(\d+)"', page).group(1)
    assert re.search(r'name="judgment_id" value="(\d+)"', client.get("/study").text).group(1) == first  # a reload: same pair
    assert "personalized" not in page.lower().split("<main")[1]  # blind: the page never says which is which
    client.post("/study", data={"judgment_id": first, "choice": "left"})
    client.post("/study", data={"judgment_id": first, "choice": "right"})  # a double submit keeps the first
    the_study = study.get_study(engine, study_id)
    with engine.connect() as conn:
        row = conn.execute(select(models.judgments).where(models.judgments.c.id == int(first))).one()
    assert row.choice == ("personalized" if row.personalized_left else "default")
    with pytest.raises(store.NotFound):
        study.record_judgment(engine, study_id, links[1][0], int(first), "tie", None)  # another participant's pair
    order = [study._plan(study_id, user, len(prompts))[0].tolist() for user, _ in links]
    assert all(sorted(o) == [0, 1, 2, 3] for o in order)
    assert the_study.budget == 2
    report = study.study_report(engine, study_id)
    assert report["overall"]["judgments"] == 1 and report["per_participant"][1]["judgments"] == 0
    assert report["per_participant"][1]["win_rate"] is None


def test_admin_pages_need_the_admin_key(client):
    study_id, _ = study.create_study(client.app.state.engine, ["a prompt"], 2, 1, 1)
    assert client.get(f"/admin/studies/{study_id}").status_code == 401
    assert client.get(f"/admin/studies/{study_id}/report.csv").status_code == 401
    assert client.post("/admin", data={"admin_key": "wrong"}).status_code == 401
    assert client.post("/admin", data={"admin_key": ADMIN_KEY}).status_code == 200
    csv_reply = client.get(f"/admin/studies/{study_id}/report.csv")
    assert csv_reply.status_code == 200 and csv_reply.text.splitlines() == [",".join(study.CSV_COLUMNS)]
    assert client.get("/admin/studies/nope", headers={"Accept": "text/html"}).status_code == 404


def test_the_admin_page_creates_a_study_with_working_links(client):
    assert client.post("/admin/studies", data={"prompts": "a\nb", "participants": "2"}).status_code == 401
    client.post("/admin", data={"admin_key": ADMIN_KEY})
    reply = client.post("/admin/studies", data={"prompts": "first\n\nsecond\n", "num_candidates": "3", "budget": "2",
                                                 "participants": "2"})
    assert reply.status_code == 201
    study_id = re.search(r"Study (\w+) created", reply.text).group(1)
    links = re.findall(r"http://testserver/invite/[\w-]+", reply.text)
    the_study = study.get_study(client.app.state.engine, study_id)
    assert len(links) == 2 and the_study.num_candidates == 3 and the_study.budget == 2
    client.post("/logout")
    assert onboard(client, links[0].rsplit("/", 1)[1]) == 2
    assert "Answer A" in client.get("/study").text
    client.post("/logout")
    assert client.get("/study").status_code == 401  # signed out: the session is gone
    client.post("/admin", data={"admin_key": ADMIN_KEY})
    assert client.post("/admin/studies", data={"prompts": " \n", "participants": "1"}).status_code == 400


def test_onboarding_form_takes_only_the_shown_question_and_nothing_after_the_stop(client):
    engine = client.app.state.engine
    user_id, token = invites.create_invite(engine, "steerer")
    assert client.post(f"/invite/{token}").status_code == 200
    shown = int(re.search(r'name="question_id" value="(\d+)"', client.get("/onboard").text).group(1))
    other = (shown + 1) % 5
    client.post("/onboard", data={"question_id": str(other), "preference": "a"})  # not the question on the page
    assert store.count_answers(engine) == 0
    for _ in range(3):
        page = client.get("/onboard").text
        found = re.search(r'name="question_id" value="(\d+)"', page)
        client.post("/onboard", data={"question_id": found.group(1), "preference": "a"})
    assert store.count_answers(engine) == 3  # the server's budget
    client.post("/onboard", data={"question_id": str(other), "preference": "b"})
    assert store.count_answers(engine) == 3


def test_studies_refuse_unbounded_settings_and_bad_ids(client):
    engine = client.app.state.engine
    with pytest.raises(store.StoreError, match="num_candidates"):
        study.create_study(engine, ["a prompt"], 100_000, 2, 1)
    with pytest.raises(store.StoreError, match="characters"):
        study.create_study(engine, ["x" * 9000], 4, 2, 1)
    _, links = study.create_study(engine, ["a prompt"], 4, 1, 1)
    client.post(f"/invite/{links[0][1]}")
    assert client.post("/study", data={"judgment_id": str(10**20), "choice": "tie"}).status_code == 422
