import numpy as np
import pytest
from scipy.optimize import minimize

from preflm.eval.onboarding import pad_answers, score_weights, simulate_onboarding
from preflm.factorize import RewardFactorization
from preflm.factorize import fit_user_weights
from preflm.onboard import (
    BanditSelector,
    OnboardingSession,
    RandomSelector,
    UserProfile,
    get_selector,
    register_selector,
)
from preflm.simulate.planted import make_planted_problem


def map_by_scipy(z, y, mean, precision):
    def objective(lam):
        logits = z @ lam
        return np.sum(np.logaddexp(0, logits) - y * logits) + 0.5 * (lam - mean) @ precision @ (lam - mean)

    return minimize(objective, mean, method="BFGS", options={"gtol": 1e-10}).x


def test_newton_matches_generic_optimizer_with_ties():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(15, 4))
    y = rng.choice([0.0, 0.5, 1.0], size=15)
    mean, precision = rng.normal(size=4), np.diag(rng.uniform(0.5, 2, 4))
    lam, cov = fit_user_weights(z, y, mean, precision)
    assert np.allclose(lam, map_by_scipy(z, y, mean, precision), atol=1e-5)
    p = 1 / (1 + np.exp(-z @ lam))
    assert np.allclose(np.linalg.inv(cov), z.T @ np.diag(p * (1 - p)) @ z + precision)


def test_batched_fit_equals_one_by_one_and_respects_mask():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(5, 8, 3))
    y = (rng.random((5, 8)) < 0.5).astype(float)
    mask = rng.random((5, 8)) < 0.7
    lam, _ = fit_user_weights(z, y, np.zeros(3), np.eye(3), mask=mask)
    for b in range(5):
        single, _ = fit_user_weights(z[b][mask[b]], y[b][mask[b]], np.zeros(3), np.eye(3))
        assert np.allclose(lam[b], single, atol=1e-7)


def test_separable_answers_stay_finite():
    z = np.array([[1.0, 0.0], [2.0, 0.0]])
    lam, cov = fit_user_weights(z, np.array([1.0, 1.0]), np.zeros(2), 1e-3 * np.eye(2))
    assert np.all(np.isfinite(lam)) and lam[0] > 0


def test_bandit_rule_matches_formula_and_skips_asked():
    rng = np.random.default_rng(2)
    z = rng.normal(size=(500, 4))
    lam = rng.normal(size=4)
    cov = np.linalg.inv(np.eye(4) + z[:20].T @ z[:20])
    p = 1 / (1 + np.exp(-z @ lam))
    expected = (p * (1 - p)) ** 2 * np.array([row @ cov @ row for row in z])
    assert np.allclose(BanditSelector().scores(z, lam, cov), expected)
    available = np.ones(500, dtype=bool)
    available[np.argmax(expected)] = False
    choice = BanditSelector().select(z, lam, cov, available, rng)
    assert choice == np.argsort(-expected)[1]


def test_random_selector_only_picks_available():
    available = np.zeros((3, 10), dtype=bool)
    available[:, 7] = True
    picks = RandomSelector().select(np.zeros((3, 10, 2)), np.zeros((3, 2)), np.eye(2), available,
                                    np.random.default_rng(0))
    assert list(picks) == [7, 7, 7]


def test_pluggable_selector(monkeypatch):
    from preflm.onboard import SELECTORS

    class FirstAvailable:
        def select(self, z, lam, covariance, available, rng):
            return np.argmax(available, axis=-1)

    monkeypatch.setitem(SELECTORS, "first", FirstAvailable)
    register_selector("first", FirstAvailable)
    session = OnboardingSession(np.eye(3), np.zeros(3), np.eye(3), selector="first")
    assert session.next_question() == 0
    with pytest.raises(ValueError, match="unknown selector"):
        get_selector("nope")


def test_session_learns_and_saves_profile(tmp_path):
    rng = np.random.default_rng(3)
    z = rng.normal(size=(300, 3))
    truth = np.array([3.0, -2.0, 0.0])
    session = OnboardingSession(z, np.zeros(3), np.eye(3), user_id="alice")
    start = session.confidence()
    for _ in range(15):
        q = session.next_question()
        session.record(q, float(z[q] @ truth > 0))
    assert session.confidence() > start
    assert np.corrcoef(session.weights, truth)[0, 1] > 0.9
    with pytest.raises(ValueError, match="already answered"):
        session.record(session.asked[0], 1.0)
    path = session.profile().save(tmp_path / "alice.json")
    loaded = UserProfile.load(path)
    assert loaded.user_id == "alice" and len(loaded.answers) == 15
    assert np.allclose(loaded.weight_vector, session.weights)


def test_active_beats_random_at_ten_answers():
    gains = []
    for seed in range(3):
        problem = make_planted_problem(seed=seed)
        model = RewardFactorization(n_factors=4, head="linear", seed=seed).fit(problem.features, problem.split.train, progress=False)
        z = model.pair_differences(problem.features, problem.matrix.pairs)
        users = problem.split.new_users
        pool = pad_answers(problem.split.pool, users)
        test = pad_answers(problem.split.test, users)
        accuracy = {}
        for strategy in ("active", "random"):
            runs = [simulate_onboarding(pool, z, model.prior_mean_, model.prior_precision(), [10], strategy, seed=s)[10]
                    for s in range(3)]
            accuracy[strategy] = np.mean([np.nanmean(score_weights(w, test, z)[0]) for w in runs])
        gains.append(accuracy["active"] - accuracy["random"])
    assert np.mean(gains) > 0.01


def test_an_answer_whose_refit_fails_is_neither_kept_nor_journaled(tmp_path, monkeypatch):
    import preflm.onboard.session as session_module

    session = OnboardingSession(np.eye(3), np.zeros(3), np.eye(3), user_id="ann")
    session.attach_journal(tmp_path / "ann.answers.jsonl")
    session.record(0, "a")
    monkeypatch.setattr(session_module, "fit_user_weights", lambda *a, **k: (np.full(3, np.nan), np.eye(3)))
    with pytest.raises(ValueError, match="NaN"):
        session.record(1, "b")
    monkeypatch.undo()
    assert session.asked == [0]
    resumed = OnboardingSession(np.eye(3), np.zeros(3), np.eye(3), user_id="ann")
    assert resumed.attach_journal(tmp_path / "ann.answers.jsonl") == 1 and resumed.asked == [0]
