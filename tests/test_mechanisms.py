"""Tests of the aggregation mechanisms on hand-computed batches, and of the mechanism registry.

Reports have shape (B, N, K), masks (B, N) and truths (B, K). The expected numbers in the
online_weighted tests were worked out by hand from the update rule
w_i <- w_i (1 - eta (l_i - sum_j w_j l_j)) with the quadratic loss l = (r - y)^2.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from strategic_env import parallel_env
from strategic_env.mechanisms import (
    Mean,
    Mechanism,
    Median,
    OnlineWeighted,
    available,
    make,
    register,
)


def reset_mechanism(mechanism: Mechanism, n_labelers: int, horizon: int = 100, **kwargs) -> Mechanism:
    mechanism.reset(n_labelers, horizon, np.random.default_rng(0), **kwargs)
    return mechanism


def column(*values: float) -> np.ndarray:
    """Return one game's K = 1 reports, shape (1, N, 1)."""
    return np.array(values, dtype=np.float64)[None, :, None]


def full_mask(n_labelers: int, batch_size: int = 1) -> np.ndarray:
    return np.ones((batch_size, n_labelers), dtype=bool)


# ---------------------------------------------------------------------------
# mean
# ---------------------------------------------------------------------------


def test_mean_three_labelers() -> None:
    mechanism = reset_mechanism(Mean(), 3)
    aggregate = mechanism.aggregate(column(0.2, 0.6, 0.9), full_mask(3))
    assert aggregate.shape == (1, 1)
    assert aggregate[0, 0] == pytest.approx(1.7 / 3)


def test_mean_ignores_masked_reports() -> None:
    mechanism = reset_mechanism(Mean(), 3)
    mask = np.array([[True, True, False]])
    aggregate = mechanism.aggregate(column(0.2, 0.6, 1.0), mask)
    assert aggregate[0, 0] == pytest.approx(0.4)


def test_mean_batch_rows_independent() -> None:
    mechanism = reset_mechanism(Mean(), 3, batch_size=2)
    reports = np.concatenate([column(0.0, 0.3, 0.9), column(0.0, 0.3, 0.9)])
    mask = np.array([[True, True, True], [False, True, True]])
    aggregate = mechanism.aggregate(reports, mask)
    assert aggregate[0, 0] == pytest.approx(0.4)
    assert aggregate[1, 0] == pytest.approx(0.6)


def test_mean_two_coordinates() -> None:
    mechanism = reset_mechanism(Mean(), 2, feedback_dim=2)
    reports = np.array([[[0.0, 1.0], [0.5, 0.0]]])
    aggregate = mechanism.aggregate(reports, full_mask(2))
    np.testing.assert_allclose(aggregate, [[0.25, 0.5]])


def test_mean_empty_slot_gives_center() -> None:
    mechanism = reset_mechanism(Mean(), 3)
    aggregate = mechanism.aggregate(column(0.1, 0.2, 0.3), np.zeros((1, 3), dtype=bool))
    assert aggregate[0, 0] == pytest.approx(0.5)


def test_mean_weights_stay_uniform() -> None:
    mechanism = reset_mechanism(Mean(), 4)
    reports = column(0.0, 0.2, 0.7, 1.0)
    mechanism.update(reports, full_mask(4), np.array([[1.0]]))
    np.testing.assert_allclose(mechanism.weights, np.full((1, 4), 0.25))


def test_mean_aggregation_weights_over_mask() -> None:
    mechanism = reset_mechanism(Mean(), 4)
    weights = mechanism.aggregation_weights(np.array([[True, False, True, False]]))
    np.testing.assert_allclose(weights, [[0.5, 0.0, 0.5, 0.0]])


# ---------------------------------------------------------------------------
# median
# ---------------------------------------------------------------------------


def test_median_five_labelers() -> None:
    mechanism = reset_mechanism(Median(), 5)
    aggregate = mechanism.aggregate(column(0.9, 0.1, 0.4, 1.0, 0.3), full_mask(5))
    assert aggregate[0, 0] == pytest.approx(0.4)


def test_median_even_participants_averages_middle() -> None:
    mechanism = reset_mechanism(Median(), 5)
    mask = np.array([[True, True, True, True, False]])
    aggregate = mechanism.aggregate(column(0.9, 0.1, 0.4, 0.2, 1.0), mask)
    # The participants' middle values are 0.2 and 0.4.
    assert aggregate[0, 0] == pytest.approx(0.3)


def test_median_ignores_masked_reports() -> None:
    mechanism = reset_mechanism(Median(), 3)
    mask = np.array([[True, False, True]])
    aggregate = mechanism.aggregate(column(0.2, 0.0, 0.6), mask)
    assert aggregate[0, 0] == pytest.approx(0.4)


def test_median_single_participant() -> None:
    mechanism = reset_mechanism(Median(), 3)
    mask = np.array([[False, True, False]])
    aggregate = mechanism.aggregate(column(0.0, 0.7, 1.0), mask)
    assert aggregate[0, 0] == pytest.approx(0.7)


def test_median_coordinatewise() -> None:
    mechanism = reset_mechanism(Median(), 3, feedback_dim=2)
    reports = np.array([[[0.1, 0.9], [0.5, 0.2], [0.8, 0.3]]])
    aggregate = mechanism.aggregate(reports, full_mask(3))
    np.testing.assert_allclose(aggregate, [[0.5, 0.3]])


def test_median_empty_slot_gives_center() -> None:
    mechanism = reset_mechanism(Median(), 3)
    aggregate = mechanism.aggregate(column(0.1, 0.2, 0.3), np.zeros((1, 3), dtype=bool))
    assert aggregate[0, 0] == pytest.approx(0.5)


def test_median_simplex_aggregate_projected() -> None:
    mechanism = reset_mechanism(Median(), 3, feedback_dim=3, space="simplex")
    reports = np.array([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])
    aggregate = mechanism.aggregate(reports, full_mask(3))
    # The coordinate-wise median is (0, 0, 0), whose projection is the centre.
    np.testing.assert_allclose(aggregate, [[1 / 3, 1 / 3, 1 / 3]])


def test_median_is_not_linear() -> None:
    assert not Median.linear
    assert Mean.linear
    assert OnlineWeighted.linear


# ---------------------------------------------------------------------------
# online_weighted
# ---------------------------------------------------------------------------

# Step 1: reports (0.2, 0.6, 0.9), truth 0.5, losses (0.09, 0.01, 0.16), weighted mean loss 0.26 / 3.
WEIGHTS_AFTER_STEP_1 = np.array([599 / 1800, 623 / 1800, 578 / 1800])
# Step 2: reports (1, 0, 0.5), truth 0, losses (1, 0, 0.25), weighted mean loss 1487 / 3600.
WEIGHTS_AFTER_STEP_2 = np.array([3047113 / 12960000, 5412001 / 12960000, 4500886 / 12960000])


def test_online_weighted_starts_uniform() -> None:
    mechanism = reset_mechanism(OnlineWeighted(eta=0.5), 3, batch_size=2)
    np.testing.assert_allclose(mechanism.weights, np.full((2, 3), 1 / 3))


def test_online_weighted_first_step() -> None:
    mechanism = reset_mechanism(OnlineWeighted(eta=0.5), 3)
    mechanism.update(column(0.2, 0.6, 0.9), full_mask(3), np.array([[0.5]]))
    np.testing.assert_allclose(mechanism.weights[0], WEIGHTS_AFTER_STEP_1, rtol=0, atol=1e-12)
    assert mechanism.weights.sum() == pytest.approx(1.0, abs=1e-12)


def test_online_weighted_second_step() -> None:
    mechanism = reset_mechanism(OnlineWeighted(eta=0.5), 3)
    mechanism.update(column(0.2, 0.6, 0.9), full_mask(3), np.array([[0.5]]))
    mechanism.update(column(1.0, 0.0, 0.5), full_mask(3), np.array([[0.0]]))
    np.testing.assert_allclose(mechanism.weights[0], WEIGHTS_AFTER_STEP_2, rtol=0, atol=1e-12)
    assert mechanism.weights.sum() == pytest.approx(1.0, abs=1e-12)


def test_online_weighted_aggregate_uses_weights() -> None:
    mechanism = reset_mechanism(OnlineWeighted(eta=0.5), 3)
    mechanism.update(column(0.2, 0.6, 0.9), full_mask(3), np.array([[0.5]]))
    aggregate = mechanism.aggregate(column(1.0, 0.0, 0.5), full_mask(3))
    # 599 / 1800 * 1 + 578 / 1800 * 0.5 = 37 / 75.
    assert aggregate[0, 0] == pytest.approx(37 / 75, abs=1e-12)


def test_online_weighted_aggregate_renormalises_over_mask() -> None:
    mechanism = reset_mechanism(OnlineWeighted(eta=0.5), 3)
    mechanism.update(column(0.2, 0.6, 0.9), full_mask(3), np.array([[0.5]]))
    aggregate = mechanism.aggregate(column(1.0, 0.0, 0.5), np.array([[True, False, True]]))
    # (599 * 1 + 578 * 0.5) / (599 + 578).
    assert aggregate[0, 0] == pytest.approx(888 / 1177, abs=1e-12)


def test_online_weighted_sleeping_experts() -> None:
    mechanism = reset_mechanism(OnlineWeighted(eta=0.5), 3)
    mechanism.update(column(0.2, 0.6, 0.9), full_mask(3), np.array([[0.5]]))
    before = mechanism.weights.copy()

    mask = np.array([[True, False, True]])
    mechanism.update(column(1.0, 0.0, 0.5), mask, np.array([[0.0]]))
    after = mechanism.weights[0]

    # Participants 0 and 2 hold 1177 / 1800 and their weighted mean loss is 1487 / 2354.
    assert after[1] == pytest.approx(before[0, 1], abs=1e-12)
    assert after[0] + after[2] == pytest.approx(before[0, 0] + before[0, 2], abs=1e-12)
    assert after[0] == pytest.approx(2300759 / 8474400, abs=1e-12)
    assert after[2] == pytest.approx(3240557 / 8474400, abs=1e-12)
    assert after.sum() == pytest.approx(1.0, abs=1e-12)


def test_online_weighted_importance_weighted() -> None:
    mechanism = reset_mechanism(OnlineWeighted(eta=0.5), 3)
    mask = np.array([[True, True, False]])
    ask_prob = np.full((1, 3), 2 / 3)
    mechanism.update(column(0.2, 0.6, 0.9), mask, np.array([[0.5]]), ask_prob=ask_prob)
    # Importance-weighted losses (0.135, 0.015, 0), mean loss 0.05.
    np.testing.assert_allclose(mechanism.weights[0], [383 / 1200, 407 / 1200, 410 / 1200], rtol=0, atol=1e-12)
    assert mechanism.weights.sum() == pytest.approx(1.0, abs=1e-12)


def test_online_weighted_eta_capped_by_ask_prob() -> None:
    mechanism = reset_mechanism(OnlineWeighted(eta=0.9), 3)
    mask = np.array([[True, True, False]])
    ask_prob = np.full((1, 3), 0.4)
    mechanism.update(column(0.2, 0.6, 0.9), mask, np.array([[0.5]]), ask_prob=ask_prob)
    # With eta = 0.4: losses (0.225, 0.025, 0), mean loss 1 / 12.
    expected = np.array([1 - 0.4 * (0.225 - 1 / 12), 1 - 0.4 * (0.025 - 1 / 12), 1 + 0.4 / 12]) / 3
    np.testing.assert_allclose(mechanism.weights[0], expected, rtol=0, atol=1e-12)


def test_online_weighted_unrevealed_rows_unchanged() -> None:
    mechanism = reset_mechanism(OnlineWeighted(eta=0.5), 3, batch_size=2)
    reports = np.concatenate([column(0.2, 0.6, 0.9), column(0.2, 0.6, 0.9)])
    truth = np.array([[0.5], [0.5]])
    mechanism.update(reports, full_mask(3, 2), truth, revealed=np.array([True, False]))
    np.testing.assert_allclose(mechanism.weights[0], WEIGHTS_AFTER_STEP_1, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(mechanism.weights[1], np.full(3, 1 / 3))


def test_online_weighted_nothing_revealed_unchanged() -> None:
    mechanism = reset_mechanism(OnlineWeighted(eta=0.5), 3)
    mechanism.update(column(0.2, 0.6, 0.9), full_mask(3), np.array([[0.5]]), revealed=np.array([False]))
    np.testing.assert_array_equal(mechanism.weights, np.full((1, 3), 1 / 3))


def test_online_weighted_default_eta() -> None:
    mechanism = reset_mechanism(OnlineWeighted(), 5, horizon=1000)
    assert mechanism.eta == pytest.approx(math.sqrt(math.log(5) / 1000))


def test_online_weighted_default_eta_capped_at_one() -> None:
    mechanism = reset_mechanism(OnlineWeighted(), 5, horizon=1)
    assert mechanism.eta == 1.0


def test_online_weighted_explicit_eta_kept() -> None:
    mechanism = reset_mechanism(OnlineWeighted(eta=0.3), 5, horizon=1000)
    assert mechanism.eta == 0.3


def test_online_weighted_reset_restores_uniform() -> None:
    mechanism = reset_mechanism(OnlineWeighted(eta=0.5), 3)
    mechanism.update(column(0.2, 0.6, 0.9), full_mask(3), np.array([[0.5]]))
    reset_mechanism(mechanism, 3)
    np.testing.assert_array_equal(mechanism.weights, np.full((1, 3), 1 / 3))


@pytest.mark.parametrize("use_ask_prob", [False, True])
def test_online_weighted_adversarial_losses_stay_valid(use_ask_prob: bool) -> None:
    rng = np.random.default_rng(7)
    batch_size, n_labelers = 32, 5
    mechanism = reset_mechanism(OnlineWeighted(eta=1.0), n_labelers, horizon=3000, batch_size=batch_size)
    ask_prob = np.full((batch_size, n_labelers), 0.4) if use_ask_prob else None
    for _ in range(3000):
        # Extreme reports against extreme truths give losses of exactly 0 or 1.
        reports = rng.integers(0, 2, size=(batch_size, n_labelers, 1)).astype(np.float64)
        truth = rng.integers(0, 2, size=(batch_size, 1)).astype(np.float64)
        mask = rng.random((batch_size, n_labelers)) < 0.4
        mechanism.update(reports, mask, truth, ask_prob=ask_prob)
    weights = mechanism.weights
    assert np.all(np.isfinite(weights))
    assert np.all(weights >= 0)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-9)


# ---------------------------------------------------------------------------
# make and register
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "cls"),
    [("mean", Mean), ("median", Median), ("online_weighted", OnlineWeighted)],
)
def test_make_by_name(name: str, cls: type) -> None:
    mechanism = make(name)
    assert type(mechanism) is cls
    assert mechanism.name == name


def test_make_by_import_path() -> None:
    assert type(make("strategic_env.mechanisms:Mean")) is Mean


def test_make_passes_params() -> None:
    mechanism = make("online_weighted", eta=0.25, loss="absolute")
    assert mechanism.eta == 0.25
    assert mechanism.loss == "absolute"


def test_make_unknown_name_lists_available() -> None:
    with pytest.raises(ValueError) as error:
        make("averge")
    message = str(error.value)
    assert "averge" in message
    for name in ("mean", "median", "online_weighted"):
        assert name in message


def test_make_bad_import_path_raises() -> None:
    with pytest.raises(ValueError, match="no_such_module"):
        make("no_such_module:Rule")


def test_make_non_mechanism_path_raises() -> None:
    with pytest.raises(ValueError, match="Mechanism"):
        make("strategic_env.config:GameConfig")


@pytest.mark.parametrize("eta", [0.0, -0.1, 1.5, math.nan, True, "0.5"])
def test_make_bad_eta_raises(eta) -> None:
    with pytest.raises(ValueError, match="eta"):
        make("online_weighted", eta=eta)


def test_make_unexpected_param_raises() -> None:
    with pytest.raises(ValueError, match="mean"):
        make("mean", eta=0.5)


def test_make_bad_loss_raises() -> None:
    with pytest.raises(ValueError, match="hinge"):
        make("mean", loss="hinge")


@register("test_max_report")
class MaxReport(Mechanism):
    """Aggregate by the largest participating report, coordinate-wise."""

    def aggregate(self, reports: np.ndarray, mask: np.ndarray) -> np.ndarray:
        masked = np.where(mask[:, :, None], reports, -np.inf)
        return np.max(masked, axis=1)


def test_register_adds_available_name() -> None:
    assert "test_max_report" in available()
    assert type(make("test_max_report")) is MaxReport


def test_register_name_taken_raises() -> None:
    class OtherRule(MaxReport):
        pass

    with pytest.raises(ValueError, match="test_max_report"):
        register("test_max_report")(OtherRule)


def test_register_non_mechanism_raises() -> None:
    with pytest.raises(TypeError):
        register("test_not_a_rule")(dict)  # type: ignore[arg-type]


def test_registered_mechanism_full_episode() -> None:
    env = parallel_env(preset="paper", mechanism="test_max_report", horizon=30)
    assert type(env.game.mechanism) is MaxReport

    env.reset(seed=3)
    rng = np.random.default_rng(3)
    slots = 0
    while env.agents:
        actions = {agent: rng.random(1).astype(np.float32) for agent in env.agents}
        _, _, terminations, _, infos = env.step(actions)
        slots += 1
        largest = max(float(actions[agent][0]) for agent in actions)
        assert infos["labeler_0"]["aggregate"][0] == pytest.approx(largest, abs=1e-6)
    assert slots == 30
    assert all(terminations.values())


def test_mechanism_instance_in_env() -> None:
    env = parallel_env(preset="paper", mechanism=Median(), horizon=5)
    env.reset(seed=0)
    actions = {agent: np.array([value], dtype=np.float32) for agent, value in zip(env.agents, (0.1, 0.2, 0.3, 0.9, 1.0))}
    _, _, _, _, infos = env.step(actions)
    assert infos["labeler_0"]["aggregate"][0] == pytest.approx(0.3, abs=1e-6)
