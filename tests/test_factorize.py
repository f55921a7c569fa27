import json

import numpy as np
import pytest

from preflm.metrics import pairwise_accuracy
from preflm.eval.onboarding import pad_answers, score_weights, simulate_onboarding
from preflm.factorize import RewardFactorization, impute_answers, svd_factors
from preflm.simulate.planted import make_planted_problem


@pytest.fixture(scope="module")
def planted():
    return make_planted_problem(seed=0)


@pytest.fixture(scope="module")
def fitted(planted):
    return RewardFactorization(n_factors=4, head="linear", seed=0).fit(planted.features, planted.split.train, progress=False)


def test_impute_recovers_low_rank_matrix():
    rng = np.random.default_rng(0)
    truth = 1 / (1 + np.exp(-(rng.normal(size=(200, 2)) @ rng.normal(size=(2, 30)))))
    observed = np.where(rng.random(truth.shape) < 0.5, truth, np.nan)
    completed = impute_answers(observed, rank=2, iterations=50)
    missing = np.isnan(observed)
    assert np.allclose(completed[~missing], observed[~missing])
    assert np.abs(completed[missing] - truth[missing]).mean() < 0.5 * np.abs(0.5 - truth[missing]).mean()
    pairs, users = svd_factors(observed, n_factors=3, rank=2)
    assert pairs.shape == (200, 3) and users.shape == (30, 3)


def test_recovers_oracle_accuracy_on_planted_problem(planted, fitted):
    z = fitted.pair_differences(planted.features, planted.matrix.pairs)
    users = planted.split.new_users
    pool = pad_answers(planted.split.pool, users)
    test = pad_answers(planted.split.test, users)
    weights = simulate_onboarding(pool, z, fitted.prior_mean_, fitted.prior_precision(), [200], "random", seed=0)
    accuracy = np.nanmean(score_weights(weights[200], test, z)[0])
    oracle = np.nanmean(pairwise_accuracy(test.true_diff, test.labels, test.mask))
    assert accuracy >= oracle - 0.02
    assert fitted.validation_accuracy_ > 0.8


def test_score_on_seen_users(planted, fitted):
    assert fitted.score(planted.features, planted.split.train) > 0.8


def test_save_load_round_trip(tmp_path, planted, fitted):
    fitted.save(tmp_path / "m")
    loaded = RewardFactorization.load(tmp_path / "m")
    assert np.allclose(loaded.base_rewards(planted.features[:50]), fitted.base_rewards(planted.features[:50]), atol=1e-6)
    assert np.allclose(loaded.user_weights_, fitted.user_weights_)
    assert list(loaded.user_ids_) == list(fitted.user_ids_)
    assert loaded.config == fitted.config
    assert not list((tmp_path / "m").glob("*.pkl"))


@pytest.mark.parametrize("overrides", [{"svd_init": False}, {"l2": 0.0}, {"head": "mlp", "max_steps": 100}])
def test_ablations_and_mlp_head_train(planted, overrides):
    model = RewardFactorization(n_factors=4, **{"head": "linear", **overrides}).fit(planted.features, planted.split.train, progress=False)
    assert model.validation_accuracy_ > 0.7


def test_training_is_reproducible(planted):
    a = RewardFactorization(n_factors=2, max_steps=60).fit(planted.features, planted.split.train, progress=False)
    b = RewardFactorization(n_factors=2, max_steps=60).fit(planted.features, planted.split.train, progress=False)
    assert np.array_equal(a.user_weights_, b.user_weights_)


def test_clear_errors(planted):
    model = RewardFactorization()
    with pytest.raises(RuntimeError, match="not fitted"):
        model.base_rewards(planted.features)
    with pytest.raises(ValueError, match="rows"):
        model.fit(planted.features[:10], planted.split.train)
    with pytest.raises(ValueError, match="head"):
        RewardFactorization(head="transformer")
    with pytest.raises(FileNotFoundError, match="not a preflm model"):
        RewardFactorization.load("/nonexistent")


def test_auto_svd_init_keeps_the_run_with_better_held_out_accuracy(planted, tmp_path):
    settings = dict(n_factors=3, head="mlp", max_steps=150, seed=1)
    fit = lambda svd: RewardFactorization(svd_init=svd, **settings).fit(planted.features, planted.split.train, progress=False)  # noqa: E731
    on, off, auto = fit("on"), fit("off"), fit("auto")
    assert set(auto.svd_init_selection_) == {"on", "off"}
    assert auto.svd_init_selection_["on"]["validation_accuracy"] == pytest.approx(on.validation_accuracy_)
    assert auto.svd_init_selection_["off"]["validation_accuracy"] == pytest.approx(off.validation_accuracy_)
    kept = on if auto.svd_init_used_ else off
    other = off if auto.svd_init_used_ else on
    assert kept.validation_accuracy_ >= other.validation_accuracy_
    assert np.array_equal(auto.user_weights_, kept.user_weights_)
    auto.save(tmp_path / "m")
    loaded = RewardFactorization.load(tmp_path / "m")
    assert loaded.svd_init_selection_ == auto.svd_init_selection_
    assert loaded.svd_init_used_ == auto.svd_init_used_


@pytest.mark.parametrize("value, parsed", [("on", True), ("OFF", False), ("auto", "auto"), (True, True), (False, False)])
def test_svd_init_accepts_on_off_auto(value, parsed):
    assert RewardFactorization(svd_init=value).config.svd_init == parsed


def test_svd_init_refuses_other_values():
    with pytest.raises(ValueError, match="on, off or auto"):
        RewardFactorization(svd_init="sometimes")


def test_n_factors_choices_keeps_the_j_that_few_answer_users_fit_best(planted, tmp_path):
    settings = dict(head="linear", max_steps=150, svd_init="on", seed=2)
    chosen = RewardFactorization(n_factors_choices="1,4,6", selection_answers=5, **settings).fit(
        planted.features, planted.split.train, progress=False
    )
    selection = chosen.n_factors_selection_
    assert set(selection) == {"1", "4", "6"}
    assert all(0.0 <= entry["few_answer_accuracy"] <= 1.0 for entry in selection.values())
    best = max((1, 4, 6), key=lambda j: (selection[str(j)]["few_answer_accuracy"], -j))
    assert chosen.config.n_factors == best and chosen.user_weights_.shape[1] == best + chosen.config.residual_factors
    # The planted problem has 4 base rewards: one factor cannot explain the answers.
    assert selection["4"]["few_answer_accuracy"] > selection["1"]["few_answer_accuracy"] + 0.05
    fixed = RewardFactorization(n_factors=best, **settings).fit(planted.features, planted.split.train, progress=False)
    assert np.array_equal(chosen.user_weights_, fixed.user_weights_)
    chosen.save(tmp_path / "m")
    loaded = RewardFactorization.load(tmp_path / "m")
    assert loaded.config.n_factors == best and loaded.n_factors_selection_ == selection
    assert loaded.model_id == chosen.model_id


def test_n_factors_choices_refuses_bad_values(planted):
    with pytest.raises(ValueError, match="comma-separated whole numbers"):
        RewardFactorization(n_factors_choices="4,six")
    with pytest.raises(ValueError, match=">= 1"):
        RewardFactorization(n_factors_choices="0,4")
    with pytest.raises(ValueError, match="larger than the data supports"):
        RewardFactorization(n_factors_choices="2,5000", max_steps=5).fit(planted.features, planted.split.train, progress=False)


def test_models_saved_before_n_factors_choices_keep_their_id(planted, tmp_path):
    model = RewardFactorization(n_factors=2, head="linear", max_steps=30, svd_init="on", seed=0)
    model.fit(planted.features, planted.split.train, progress=False).save(tmp_path / "m")
    config_path = tmp_path / "m" / "config.json"
    meta = json.loads(config_path.read_text())
    for key in ("n_factors_choices", "selection_answers"):
        del meta["config"][key]
    config_path.write_text(json.dumps(meta))
    assert RewardFactorization.load(tmp_path / "m").model_id == meta["model_id"] == model.model_id


def test_n_factors_choices_needs_held_out_prompts(planted):
    with pytest.raises(ValueError, match="needs held-out prompts"):
        RewardFactorization(n_factors_choices="1,2", val_fraction=0.0, max_steps=20, svd_init="off").fit(
            planted.features, planted.split.train, progress=False
        )


def _individual_taste_problem(seed=0):
    """Seen users share 2 directions of 16 features; new users add a taste of their own along all 16."""
    from preflm.data import split_answers
    from preflm.simulate.planted import planted_answers

    rng = np.random.default_rng(seed)
    features = rng.normal(size=(600, 16))
    shared = features @ rng.normal(size=(16, 2))
    n_seen, n_new = 60, 30
    weights = 1.5 * rng.normal(size=(n_seen + n_new, 2))
    own = np.zeros((n_seen + n_new, 16))
    own[n_seen:] = 0.6 * rng.normal(size=(n_new, 16))
    matrix, order = planted_answers(weights @ shared.T + own @ features.T, n_seen, 250, 150, 100, 3000, rng)
    return features[order], split_answers(matrix, protocol="seen-prompts")


def test_residual_base_rewards_let_a_user_leave_the_shared_span():
    features, split = _individual_taste_problem()
    users = split.new_users
    pool, test = pad_answers(split.pool, users), pad_answers(split.test, users)
    accuracy = {}
    for residual in (0, 16):
        model = RewardFactorization(n_factors=2, head="linear", residual_factors=residual, seed=0)
        model.fit(features, split.train, progress=False)
        z = model.pair_differences(features, split.train.pairs)
        weights = simulate_onboarding(pool, z, model.prior_mean_, model.prior_precision(), [150], "random", seed=0)
        accuracy[residual] = np.nanmean(score_weights(weights[150], test, z)[0])
    assert model.n_weights == 2 + 16 and model.base_rewards(features[:5]).shape == (5, 18)
    assert np.all(model.user_weights_[:, 2:] == 0)
    assert np.allclose(model.prior_cov_[2:, 2:], np.eye(16) / model.config.residual_strength)
    assert np.all(model.prior_cov_[:2, 2:] == 0) and np.all(model.prior_mean_[2:] == 0)
    assert accuracy[16] > accuracy[0] + 0.03


def test_residual_strength_is_chosen_on_seen_users_and_saved(planted, tmp_path):
    model = RewardFactorization(
        n_factors=2, head="linear", max_steps=60, residual_factors=6, residual_strength_choices="10,1000", seed=0
    ).fit(planted.features, planted.split.train, progress=False)
    selection = model.residual_selection_
    assert set(selection) == {"10", "1000"}
    best = max((1000.0, 10.0), key=lambda s: selection[f"{s:g}"]["few_answer_accuracy"])
    assert model.config.residual_strength == best and model.config.residual_factors == 6
    model.save(tmp_path / "m")
    loaded = RewardFactorization.load(tmp_path / "m")
    assert loaded.model_id == model.model_id and loaded.n_weights == 8
    assert np.allclose(loaded.base_rewards(planted.features[:20]), model.base_rewards(planted.features[:20]), atol=1e-6)
    assert np.allclose(loaded.prior_cov_, model.prior_cov_)
    fixed = RewardFactorization(n_factors=2, head="linear", max_steps=60, residual_factors=6, residual_strength=50,
                                residual_strength_choices="", seed=0).fit(planted.features, planted.split.train, progress=False)
    assert fixed.config.residual_strength == 50 and not fixed.residual_selection_


def test_models_saved_before_the_residual_load_without_it(planted, tmp_path):
    model = RewardFactorization(n_factors=2, head="linear", max_steps=30, residual_factors=0, seed=0)
    model.fit(planted.features, planted.split.train, progress=False).save(tmp_path / "m")
    config_path = tmp_path / "m" / "config.json"
    meta = json.loads(config_path.read_text())
    for key in ("residual_factors", "residual_strength", "residual_strength_choices"):
        del meta["config"][key]
    config_path.write_text(json.dumps(meta))
    loaded = RewardFactorization.load(tmp_path / "m")
    assert loaded.model_id == meta["model_id"] == model.model_id
    assert loaded.n_weights == 2 and loaded.residual_directions_ is None


@pytest.mark.parametrize("overrides, message", [
    ({"residual_factors": -1}, "residual_factors"),
    ({"residual_strength": 0.0}, "residual strengths"),
    ({"residual_strength_choices": "10,x"}, "residual_strength_choices"),
    ({"residual_strength_choices": "10,inf"}, "residual strengths"),
])
def test_residual_settings_are_checked(overrides, message):
    with pytest.raises(ValueError, match=message):
        RewardFactorization(**overrides)


def test_residual_directions_of_large_feature_matrices_match_the_exact_ones(planted, monkeypatch):
    import preflm.factorize.model as model_module

    settings = dict(n_factors=2, head="linear", max_steps=30, residual_factors=4, residual_strength_choices="", seed=0)
    exact = RewardFactorization(**settings).fit(planted.features, planted.split.train, progress=False)
    monkeypatch.setattr(model_module, "EXACT_SVD_LIMIT", 1)
    randomized = RewardFactorization(**settings).fit(planted.features, planted.split.train, progress=False)
    overlap = np.linalg.svd(exact.residual_directions_.numpy() @ randomized.residual_directions_.numpy().T, compute_uv=False)
    assert overlap.min() > 0.99
