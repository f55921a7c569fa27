"""The web pages in a real browser (Debian's Chromium through Playwright) against a real ``preflm serve``.

Flows: an invite onboarded by keyboard to the stopping rule, surviving a reload and a server restart;
the Ask page; a complete blind A/B study with two participants whose report is checked against the
stored judgments; used, expired and unknown links; a failing generator. The tests skip only when
/usr/bin/chromium is missing, and fail instead when ``PREFLM_REQUIRE_BROWSER=1`` (``.ci/run`` sets it).
Set ``PREFLM_SCREENSHOTS=DIR`` to keep a screenshot of each page there (docs/images is made that way).
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from serve_helpers import ADMIN_KEY, SOURCE_ROOT, ServerProcess, bearer
from sqlalchemy import create_engine, text

CHROMIUM = Path("/usr/bin/chromium")
REQUIRE_ENV = "PREFLM_REQUIRE_BROWSER"
try:
    from playwright.sync_api import expect
except ImportError:
    if os.environ.get(REQUIRE_ENV) == "1":
        raise
    pytest.skip("playwright is not installed (pip install -e '.[dev]')", allow_module_level=True)

expect.set_options(timeout=20_000)


@pytest.fixture(scope="session")
def browser_type_launch_args():
    """pytest-playwright launches this Chromium (no browser download)."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: apt-get install chromium"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{message} ({REQUIRE_ENV}=1 forbids skipping the browser tests)")
        pytest.skip(message)
    return {"executable_path": str(CHROMIUM), "headless": True,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--no-first-run", "--disable-sync"]}



@pytest.fixture
def shots(tmp_path):
    """Where screenshots go: PREFLM_SCREENSHOTS when set, else the test's temporary folder."""
    folder = Path(os.environ.get("PREFLM_SCREENSHOTS") or tmp_path / "shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


BUDGET = 6


@pytest.fixture(scope="module")
def served(serve_model, fake_llm, tmp_path_factory):
    """One ``preflm serve`` process for the module (a test may kill and restart it): (server, database URL)."""
    model_dir, questions = serve_model
    folder = tmp_path_factory.mktemp("web-server")
    db_url = f"sqlite:///{folder / 'web.db'}"
    server = ServerProcess(model_dir, questions, db_url, folder / "server.log",
                           ("--model-name-or-path", fake_llm.spec, "--budget", str(BUDGET), "--target-confidence", "0.99",
                            "-n", "4"))
    server.start()
    yield server, db_url
    server.kill()


def cli(*args: str) -> str:
    result = subprocess.run([sys.executable, "-c", "from preflm.cli import app; app()", *args], capture_output=True,
                            text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(SOURCE_ROOT), "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def links(output: str) -> list[str]:
    return re.findall(r"(http://\S+/invite/\S+)", output)


def stored(db_url: str, query: str, **params) -> list:
    engine = create_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(text(query), params).all()
    engine.dispose()
    return rows


def start_onboarding(page, link: str) -> None:
    page.goto(link)
    expect(page.get_by_role("button", name="Start")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/onboard$"))


def answer_by_key(page, key: str, count_before: int) -> int:
    """Press A/B/T on the current question; returns its id once the next page shows one more answer."""
    question = int(page.locator("form[data-question]").get_attribute("data-question"))
    page.keyboard.press(key)
    expect(page.locator("#answer-count")).to_have_text(str(count_before + 1))
    return question


def onboard_to_done(page, keys: str, count: int = 0) -> dict[int, str]:
    given = {}
    for key in keys:
        if page.locator("#done").count():
            break
        given[answer_by_key(page, key, count)] = key
        count += 1
    expect(page.locator("#done")).to_be_visible()
    expect(page.locator("#done a.button")).to_be_focused()  # autofocus: Enter goes on from here
    return given


def test_onboarding_by_keyboard_resumes_after_reload_and_restart_then_ask(browser, served, shots):
    budget, (server, db_url) = BUDGET, served
    out = cli("users", "invite", "--db", db_url, "--user-id", "alice", "--base-url", server.url)
    (link,) = links(out)
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    page = context.new_page()
    start_onboarding(page, link)
    expect(page.locator("#confidence")).to_have_attribute("value", "0.0")
    page.screenshot(path=str(shots / "onboarding.png"))
    given = {answer_by_key(page, "a", 0): "a"}
    given[answer_by_key(page, "b", 1)] = "b"
    page.reload()
    expect(page.locator("#answer-count")).to_have_text("2")
    given[answer_by_key(page, "t", 2)] = "t"
    # The server goes down: the page says so and nothing is lost; after a restart a reload resumes.
    server.kill()
    page.keyboard.press("a")
    expect(page.locator("#status")).to_contain_text("cannot be reached")
    server.start()
    page.reload()
    expect(page.locator("#answer-count")).to_have_text("3")
    given |= onboard_to_done(page, "abab", 3)
    expect(page.locator("#done")).to_contain_text(f"{budget} answers")
    rows = stored(db_url, "SELECT question_id, preference FROM preflm_answers WHERE user_id = 'alice'")
    labels = {"a": 1.0, "b": 0.0, "t": 0.5}
    assert sorted(rows) == sorted((q, labels[k]) for q, k in given.items()) and len(rows) == budget
    confidence = float(page.locator("#confidence").get_attribute("value"))
    profile = httpx.get(f"{server.url}/v1/users/alice/profile", headers=bearer(ADMIN_KEY), timeout=10).json()
    assert profile["done"] and profile["answers"] == budget and abs(profile["confidence"] - confidence) < 1e-9

    # Ask: keyboard only; the personalized answer is the candidate with the highest reward for alice.
    expect(page.get_by_role("link", name="Ask a question")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_label("Your question")).to_be_focused()
    prompt = "How should I water a cactus?"
    page.keyboard.type(prompt)
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.locator("#personalized")).to_be_visible()
    candidates = [f"Answer {i} to {prompt}" + "!" * i for i in range(4)]
    scores = httpx.post(f"{server.url}/v1/score", json={"prompt": prompt, "responses": candidates, "user_id": "alice"},
                        headers=bearer(ADMIN_KEY), timeout=30).json()
    expect(page.locator("#personalized")).to_have_text(candidates[scores["best"]])
    expect(page.locator("#default")).to_be_hidden()
    page.locator("summary").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#default")).to_have_text(f"Answer 0 to {prompt}")
    page.screenshot(path=str(shots / "ask.png"), full_page=True)

    # The link was used: a second browser gets a clear message.
    other = browser.new_context()
    reused = other.new_page()
    reply = reused.goto(link)
    assert reply.status == 410
    expect(reused.locator(".problem")).to_contain_text("already used")
    other.close()

    # 375 px wide: nothing scrolls sideways, the buttons are there.
    narrow = browser.new_context(viewport={"width": 375, "height": 740})
    phone = narrow.new_page()
    out = cli("users", "invite", "--db", db_url, "--base-url", server.url)
    start_onboarding(phone, links(out)[0])
    assert phone.evaluate("document.documentElement.scrollWidth") <= 375
    box = phone.get_by_role("button", name="B is better").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375
    phone.screenshot(path=str(shots / "onboarding-375.png"), full_page=True)
    narrow.close()
    context.close()


def wilson_bounds_hold(wins: int, n: int, low: float, high: float) -> bool:
    """The Wilson interval's ends solve (p_hat - p)^2 = z^2 p (1 - p) / n."""
    z, p_hat = 1.959963984540054, wins / n
    return all(math.isclose((p_hat - p) ** 2, z * z * p * (1 - p) / n, abs_tol=1e-9) for p in (low, high)) and low < p_hat < high


def test_study_with_two_participants_report_matches_stored_judgments(browser, served, tmp_path, shots):
    server, db_url = served
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("Explain photosynthesis\nWrite a haiku about rain\nHow do I boil an egg?\nWhat is a prime number?\n")
    out = cli("study", "create", "--prompts", str(prompts), "--num-candidates", "4", "--budget", "3",
              "--participants", "2", "--base-url", server.url, "--db", db_url)
    study_id = re.search(r"study_id: (\w+)", out).group(1)
    participant_links = links(out)
    assert len(participant_links) == 2
    plans = {0: "abta", 1: "bbat"}
    seen = []
    for k, link in enumerate(participant_links):
        context = browser.new_context(viewport={"width": 1100, "height": 800})
        page = context.new_page()
        start_onboarding(page, link)
        onboard_to_done(page, "ab" * 5)
        expect(page.locator("#answer-count")).to_have_text("3")
        page.keyboard.press("Enter")  # "Continue to the study" has the focus
        for position, key in enumerate(plans[k]):
            expect(page.locator("label[for=progress]")).to_have_text(f"Pair {position + 1} of 4")
            left, right = page.locator("#left").inner_text(), page.locator("#right").inner_text()
            if position == 1:
                page.get_by_label("Comment (optional)").focus()
                page.keyboard.type(f"participant {k + 1} wrote this")
                page.keyboard.press("Tab")
            if k == 0 and position == 0:
                page.screenshot(path=str(shots / "study.png"), full_page=True)
            page.keyboard.press(key)
            seen.append((f"{study_id}-p{k + 1}", left, right, key))
            if position < 3:
                expect(page.locator("label[for=progress]")).to_have_text(f"Pair {position + 2} of 4")
        expect(page.locator("#study-done")).to_be_visible()
        context.close()

    rows = stored(db_url, "SELECT user_id, personalized_left, default_text, personalized_text, choice, comment "
                          "FROM preflm_judgments WHERE study_id = :s ORDER BY user_id, position", s=study_id)
    assert len(rows) == 8
    for (user, left, right, key), row in zip(seen, rows):
        assert row.user_id == user
        shown = (row.personalized_text, row.default_text) if row.personalized_left else (row.default_text, row.personalized_text)
        assert (left, right) == shown
        expected = {"t": "tie", "a": "personalized" if row.personalized_left else "default",
                    "b": "default" if row.personalized_left else "personalized"}[key]
        assert row.choice == expected
    assert [r.comment for r in rows if r.comment] == ["participant 1 wrote this", "participant 2 wrote this"]
    wins, losses, ties = (sum(r.choice == c for r in rows) for c in ("personalized", "default", "tie"))

    report = json.loads(cli("study", "report", study_id, "--json", "--db", db_url, "--output", str(tmp_path / "r.csv")))
    overall = report["overall"]
    assert (overall["wins"], overall["losses"], overall["ties"]) == (wins, losses, ties) and ties == 2
    assert math.isclose(overall["win_rate"], wins / (wins + losses))
    assert wilson_bounds_hold(wins, wins + losses, overall["ci_low"], overall["ci_high"]) or wins in (0, wins + losses)
    assert [p["participant"] for p in report["per_participant"]] == [f"{study_id}-p1", f"{study_id}-p2"]
    assert sum(p["wins"] for p in report["per_prompt"]) == wins and sum(p["ties"] for p in report["per_prompt"]) == ties
    with (tmp_path / "r.csv").open() as handle:
        assert [r["choice"] for r in csv.DictReader(handle)] == [r.choice for r in rows]

    # The admin page shows the same figures and offers the CSV.
    context = browser.new_context(viewport={"width": 1100, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.goto(f"{server.url}/admin")
    expect(page.get_by_label("Admin key")).to_be_focused()
    page.keyboard.type(ADMIN_KEY)
    page.keyboard.press("Enter")
    page.get_by_role("link", name=study_id).click()
    expect(page.locator("#counts")).to_have_text(f"{wins} / {losses} / {ties}")
    expect(page.locator("#win-rate")).to_have_text(f"{100 * overall['win_rate']:.1f}%")
    expect(page.locator("#interval")).to_have_text(f"{100 * overall['ci_low']:.1f}% – {100 * overall['ci_high']:.1f}%")
    expect(page.locator("#per-participant tbody tr")).to_have_count(2)
    expect(page.locator("#per-prompt tbody tr")).to_have_count(4)
    page.screenshot(path=str(shots / "report.png"), full_page=True)
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    with open(download.value.path()) as handle:
        assert [r["choice"] for r in csv.DictReader(handle)] == [r.choice for r in rows]
    context.close()


def test_expired_and_unknown_links_and_a_failing_generator_say_what_happened(browser, served, fake_llm):
    server, db_url = served
    try:
        (expired,) = links(cli("users", "invite", "--db", db_url, "--expires-hours", "0.0002", "--base-url", server.url))
        (fresh,) = links(cli("users", "invite", "--db", db_url, "--base-url", server.url))
        time.sleep(1.0)  # 0.0002 h = 0.72 s
        context = browser.new_context()
        page = context.new_page()
        assert page.goto(expired).status == 410
        expect(page.locator(".problem")).to_contain_text("expired")
        assert page.goto(f"{server.url}/invite/not-a-real-token").status == 404
        expect(page.locator(".problem")).to_contain_text("not valid")
        assert page.goto(f"{server.url}/onboard").status == 401
        expect(page.locator("h1")).to_have_text("Open your invite link")

        start_onboarding(page, fresh)
        onboard_to_done(page, "ab" * BUDGET)
        fake_llm.status = 500
        page.keyboard.press("Enter")
        expect(page.get_by_label("Your question")).to_be_focused()
        page.keyboard.type("Anything")
        page.keyboard.press("Tab")
        page.keyboard.press("Enter")
        expect(page.locator("h1")).to_have_text("The language model failed")
        expect(page.locator(".problem")).to_contain_text("Your answers are saved")
        context.close()
    finally:
        fake_llm.status = 200
