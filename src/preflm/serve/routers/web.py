"""Web pages: invite → onboarding, the Ask page, blind A/B study judging and the admin's study report.

Server-rendered Jinja2; the pages go through the same store and service calls as the JSON API
(``store.load_profile``, ``PreferenceService.next_question``, ``store.record_answer``). A person is known
by an HttpOnly, SameSite=Strict session cookie set when their invite is redeemed (only its hash is
stored); every POST also checks that an ``Origin`` header, when sent, names this host (CSRF).
"""

from __future__ import annotations

import hmac
from importlib import resources
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from preflm.serve import invites, store, study
from preflm.serve.core import PREFERENCE_LABELS
from preflm.serve.routers.common import engine, service, settings

COOKIE = "preflm_session"
router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(resources.files("preflm.serve") / "templates"))


class PageError(Exception):
    """Rendered as the error page with this status and message."""

    def __init__(self, status: int, title: str, message: str):
        super().__init__(message)
        self.status, self.title, self.message = status, title, message


def render(request: Request, name: str, status: int = 200, **context) -> HTMLResponse:
    return templates.TemplateResponse(request, name, {"session": getattr(request.state, "web_session", None), **context},
                                      status_code=status)


def error_page(request: Request, err: PageError) -> HTMLResponse:
    return render(request, "error.html", err.status, title=err.title, message=err.message)


def current(request: Request, admin: bool = False) -> invites.Session:
    """The session behind the cookie; PageError 401 (with what to do) when there is none."""
    session = invites.lookup_session(engine(request), request.cookies.get(COOKIE))
    request.state.web_session = session
    if admin:
        if session is None or not session.is_admin:
            raise PageError(401, "Admin sign-in needed", "Sign in with the admin key on the admin page first.")
        return session
    if session is None or session.user_id is None:
        raise PageError(401, "Open your invite link", "This page needs the invite link you were sent. "
                                                       "Open it in this browser to start.")
    return session


def same_origin(request: Request) -> None:
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
        raise PageError(403, "Request refused", "This form was sent from another site.")


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def set_cookie(response: Response, request: Request, token: str, max_age: int) -> None:
    response.set_cookie(COOKIE, token, max_age=max_age, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/")


def budget_of(request: Request, session: invites.Session) -> int:
    return study.get_study(engine(request), session.study_id).budget if session.study_id else settings(request).budget


@router.get("/", response_class=HTMLResponse)
def home(request: Request):
    session = invites.lookup_session(engine(request), request.cookies.get(COOKIE))
    if session is not None and session.user_id is not None:
        return see_other("/onboard")
    request.state.web_session = session
    return render(request, "home.html", title="preflm")


@router.get("/invite/{token}", response_class=HTMLResponse)
def invite_page(request: Request, token: str):
    try:
        invites.invite_status(engine(request), token)
    except invites.InviteError as err:
        return render(request, "error.html", 404 if err.reason == "unknown" else 410, title="Link not usable",
                      message=err.message, reason=err.reason)
    return render(request, "invite.html", title="Welcome", token=token, budget=settings(request).budget)


@router.post("/invite/{token}")
def redeem(request: Request, token: str):
    same_origin(request)
    try:
        session_token, _ = invites.redeem_invite(engine(request), token)
    except invites.InviteError as err:
        return render(request, "error.html", 404 if err.reason == "unknown" else 410, title="Link not usable",
                      message=err.message, reason=err.reason)
    response = see_other("/onboard")
    set_cookie(response, request, session_token, invites.SESSION_HOURS * 3600)
    return response


@router.get("/onboard", response_class=HTMLResponse)
def onboard_page(request: Request):
    session = current(request)
    svc, budget = service(request), budget_of(request, session)
    profile, answered = store.load_profile(engine(request), svc, session.user_id, with_answers=True)
    index = svc.next_question(profile, answered, budget)
    question = None if index is None else svc.questions.iloc[index]
    return render(request, "onboard.html", title="Tell us what you prefer", question=question, question_id=index,
                  answers=len(answered), budget=budget, confidence=profile.confidence,
                  target=svc.target_confidence)


@router.post("/onboard")
def onboard_answer(
    request: Request, question_id: int = Form(..., ge=0, le=2**31 - 1), preference: str = Form(..., max_length=8)
):
    same_origin(request)
    session = current(request)
    if preference not in PREFERENCE_LABELS:
        raise PageError(400, "Unknown answer", f"preference must be a, b or tie, not {preference!r}")
    svc, budget = service(request), budget_of(request, session)
    profile, answered = store.load_profile(engine(request), svc, session.user_id, with_answers=True)
    if question_id != svc.next_question(profile, answered, budget):
        return see_other("/onboard")  # only the question the page shows is answered, and none after the stop
    try:
        store.record_answer(engine(request), service(request), session.user_id, question_id, PREFERENCE_LABELS[preference],
                            f"web-{question_id}", settings(request).max_answers, budget_of(request, session))
    except store.Conflict:
        pass  # a double submit or an answer from another tab: the stored one stands, show the next question
    return see_other("/onboard")


def _pair(request: Request, user_id: str, prompt: str, n: int) -> study.AnswerPair:
    from preflm.generate import GenerationError

    generator = request.app.state.generator
    if generator is None:
        raise PageError(503, "No generator", "The server has no language model configured, so it cannot answer. "
                                             "Ask the operator to start it with --model-name-or-path.")
    profile, _ = store.load_profile(engine(request), service(request), user_id)
    try:
        return study.answer_pair(generator, service(request), profile.weights, prompt, n, request.app.state.generator_lock)
    except (GenerationError, ValueError) as err:
        raise PageError(502, "The language model failed", f"The answer could not be generated ({generator.name}: {err}). "
                                                          "Your answers are saved; try again in a moment.") from None


@router.get("/ask", response_class=HTMLResponse)
def ask_page(request: Request):
    current(request)
    return render(request, "ask.html", title="Ask", prompt="", pair=None)


@router.post("/ask", response_class=HTMLResponse)
def ask(request: Request, prompt: str = Form(..., max_length=8000)):
    same_origin(request)
    session = current(request)
    if not prompt.strip():
        return render(request, "ask.html", 400, title="Ask", prompt=prompt, pair=None, problem="Type a question first.")
    pair = _pair(request, session.user_id, prompt.strip(), settings(request).chat_candidates)
    return render(request, "ask.html", title="Ask", prompt=prompt, pair=pair)


@router.get("/study", response_class=HTMLResponse)
def study_page(request: Request):
    session = current(request)
    if session.study_id is None:
        raise PageError(404, "No study", "Your invite is not part of a study.")
    the_study = study.get_study(engine(request), session.study_id)
    profile, answered = store.load_profile(engine(request), service(request), session.user_id, with_answers=True)
    if not service(request).done(profile, len(answered), the_study.budget):
        return see_other("/onboard")
    pending = study.next_pair(engine(request), the_study, session.user_id,
                              lambda prompt: _pair(request, session.user_id, prompt, the_study.num_candidates))
    return render(request, "study.html", title="Which answer is better?", pending=pending)


@router.post("/study")
def judge(
    request: Request,
    judgment_id: int = Form(..., ge=1, le=2**31 - 1),
    choice: str = Form(..., max_length=16),
    comment: str = Form("", max_length=2000),
):
    same_origin(request)
    session = current(request)
    if session.study_id is None:
        raise PageError(404, "No study", "Your invite is not part of a study.")
    try:
        study.record_judgment(engine(request), session.study_id, session.user_id, judgment_id, choice, comment)
    except store.Conflict:
        pass  # judged already (double submit): keep the first judgment
    return see_other("/study")


@router.get("/admin", response_class=HTMLResponse)
def admin_page(request: Request):
    session = invites.lookup_session(engine(request), request.cookies.get(COOKIE))
    request.state.web_session = session
    if session is None or not session.is_admin:
        return render(request, "admin_login.html", title="Admin sign-in")
    return render(request, "admin.html", title="Studies", studies=study.list_studies(engine(request)))


@router.post("/admin")
def admin_login(request: Request, admin_key: str = Form(..., max_length=500)):
    same_origin(request)
    expected = settings(request).admin_key
    if not expected or not hmac.compare_digest(admin_key.encode(), expected.encode()):
        return render(request, "admin_login.html", 401, title="Admin sign-in", problem="That is not the admin key.")
    response = see_other("/admin")
    set_cookie(response, request, invites.admin_session(engine(request)), 12 * 3600)
    return response


@router.post("/admin/studies", response_class=HTMLResponse)
def create_study(request: Request, prompts: str = Form(..., max_length=200_000),
                 num_candidates: int = Form(4, ge=2, le=study.MAX_CANDIDATES), budget: int = Form(10, ge=1, le=200),
                 participants: int = Form(..., ge=1, le=1000)):
    """Create a study from the admin page; the participant links are shown once, here."""
    same_origin(request)
    current(request, admin=True)
    lines = [line.strip() for line in prompts.splitlines() if line.strip()]
    try:
        study_id, links = study.create_study(engine(request), lines, num_candidates, budget, participants)
    except store.StoreError as err:
        return render(request, "admin.html", 400, title="Studies", studies=study.list_studies(engine(request)),
                      problem=err.message)
    base = str(request.base_url).rstrip("/")
    return render(request, "admin.html", 201, title="Studies", studies=study.list_studies(engine(request)),
                  created=study_id, links=[(user, f"{base}/invite/{token}") for user, token in links])


@router.get("/admin/studies/{study_id}", response_class=HTMLResponse)
def report_page(request: Request, study_id: str):
    current(request, admin=True)
    report = study.study_report(engine(request), study_id)
    return render(request, "report.html", title=f"Study {study_id}", report=report)


@router.get("/admin/studies/{study_id}/report.csv")
def report_csv(request: Request, study_id: str):
    current(request, admin=True)
    text = study.report_csv(study.study_report(engine(request), study_id))
    return Response(text, media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="study-{study_id}.csv"'})


@router.post("/logout")
def logout(request: Request):
    same_origin(request)
    token = request.cookies.get(COOKIE)
    if token:
        invites.end_session(engine(request), token)
    response = see_other("/")
    response.delete_cookie(COOKIE, path="/")
    return response
