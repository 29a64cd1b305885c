"""Tests of the learning rules hedge, mw_linear, weighted_majority_abs, follow_the_leader and em_weights.

Reports have shape (B, N, K), masks (B, N) and truths (B, K). The expected numbers were
worked out by hand from each rule's update. Most examples use three labelers with
K = 1 and eta = 1/2 over the same two slots:

* slot 1: reports (0.2, 0.6, 0.9), truth 0.5, so quadratic losses (0.09, 0.01, 0.16) and
  absolute losses (0.3, 0.1, 0.4);
* slot 2: reports (1, 0, 0.5), truth 0, so quadratic losses (1, 0, 0.25) and absolute
  losses (1, 0, 0.5).
"""

from __future__ import annotations

import math
import warnings
from fractions import Fraction

import numpy as np
import pytest

from strategic_env.mechanisms import (
    EMWeights,
    FollowTheLeader,
    Hedge,
    Mechanism,
    MultiplicativeWeights,
    OnlineWeighted,
    WeightedMajorityAbsolute,
    make,
)
from strategic_env.pettingzoo_env import build_game

SLOT_1 = ((0.2, 0.6, 0.9), 0.5)
SLOT_2 = ((1.0, 0.0, 0.5), 0.0)
PARTIAL_MASK = np.array([[True, False, True]])


def reset_mechanism(mechanism: Mechanism, n_labelers: int, horizon: int = 100, **kwargs) -> Mechanism:
    mechanism.reset(n_labelers, horizon, np.random.default_rng(0), **kwargs)
    return mechanism


def column(*values: float) -> np.ndarray:
    """Return reports (1, N, 1) of one game with K = 1."""
    return np.array(values, dtype=np.float64)[None, :, None]


def full_mask(n_labelers: int, batch_size: int = 1) -> np.ndarray:
    return np.ones((batch_size, n_labelers), dtype=bool)


def play_slot(mechanism: Mechanism, slot, mask: np.ndarray | None = None, **kwargs) -> None:
    reports, truth = slot
    mask = full_mask(len(reports)) if mask is None else mask
    mechanism.update(column(*reports), mask, np.array([[truth]]), **kwargs)


def normalised(values) -> np.ndarray:
    values = np.array([float(v) for v in values])
    return values / values.sum()


def assert_weights(mechanism: Mechanism, expected) -> None:
    np.testing.assert_allclose(mechanism.weights[0], np.array([float(v) for v in expected]), rtol=0, atol=1e-12)
    assert mechanism.weights[0].sum() == pytest.approx(1.0, abs=1e-12)


# ---------------------------------------------------------------------------
# hedge
# ---------------------------------------------------------------------------


def test_hedge_first_step() -> None:
    mechanism = reset_mechanism(Hedge(eta=0.5), 3)
    play_slot(mechanism, SLOT_1)
    np.testing.assert_allclose(mechanism.cumulative_loss[0], [0.09, 0.01, 0.16], atol=1e-12)
    assert_weights(mechanism, normalised([math.exp(-0.045), math.exp(-0.005), math.exp(-0.08)]))


def test_hedge_second_step() -> None:
    mechanism = reset_mechanism(Hedge(eta=0.5), 3)
    play_slot(mechanism, SLOT_1)
    play_slot(mechanism, SLOT_2)
    # Cumulative losses (1.09, 0.01, 0.41).
    np.testing.assert_allclose(mechanism.cumulative_loss[0], [1.09, 0.01, 0.41], atol=1e-12)
    assert_weights(mechanism, normalised([math.exp(-0.545), math.exp(-0.005), math.exp(-0.205)]))


def test_hedge_aggregate_uses_weights() -> None:
    mechanism = reset_mechanism(Hedge(eta=0.5), 3)
    play_slot(mechanism, SLOT_1)
    aggregate = mechanism.aggregate(column(1.0, 0.0, 0.5), full_mask(3))
    w0, _, w2 = normalised([math.exp(-0.045), math.exp(-0.005), math.exp(-0.08)])
    assert aggregate[0, 0] == pytest.approx(w0 + 0.5 * w2, abs=1e-12)


def test_hedge_absolute_loss() -> None:
    mechanism = reset_mechanism(Hedge(eta=0.5, loss="absolute"), 3)
    play_slot(mechanism, SLOT_1)
    np.testing.assert_allclose(mechanism.cumulative_loss[0], [0.3, 0.1, 0.4], atol=1e-12)
    assert_weights(mechanism, normalised([math.exp(-0.15), math.exp(-0.05), math.exp(-0.2)]))


def test_hedge_importance_weighted() -> None:
    mechanism = reset_mechanism(Hedge(eta=0.5), 3)
    mask = np.array([[True, True, False]])
    play_slot(mechanism, SLOT_1, mask, ask_prob=np.full((1, 3), 2 / 3))
    # l_hat = l m / (2/3) = (0.135, 0.015, 0). Exponential weights need no cap on eta.
    np.testing.assert_allclose(mechanism.cumulative_loss[0], [0.135, 0.015, 0.0], atol=1e-12)
    assert_weights(mechanism, normalised([math.exp(-0.0675), math.exp(-0.0075), 1.0]))


def test_hedge_sleeping_experts() -> None:
    mechanism = reset_mechanism(Hedge(eta=0.5), 3)
    play_slot(mechanism, SLOT_1)
    before = normalised([math.exp(-0.045), math.exp(-0.005), math.exp(-0.08)])

    play_slot(mechanism, SLOT_2, PARTIAL_MASK)

    # Labelers 0 and 2 keep their total weight and split it as exp(-eta L) with L over the
    # slots they were asked in: (1.09, 0.41).
    share_0, share_2 = normalised([math.exp(-0.545), math.exp(-0.205)])
    participants_total = before[0] + before[2]
    assert_weights(mechanism, [participants_total * share_0, before[1], participants_total * share_2])


def test_hedge_sleeping_cumulative_loss() -> None:
    mechanism = reset_mechanism(Hedge(eta=0.5), 3)
    play_slot(mechanism, SLOT_1)
    play_slot(mechanism, SLOT_2, PARTIAL_MASK)
    # Each participant adds l_i - l_mix, where l_mix is the participants' mixture loss
    # -(1/eta) ln(sum_j w_j exp(-eta l_j) / sum_j w_j) over j in {0, 2}.
    w0, w2 = math.exp(-0.045), math.exp(-0.08)
    mixture_loss = -2.0 * math.log((w0 * math.exp(-0.5) + w2 * math.exp(-0.125)) / (w0 + w2))
    expected = [0.09 + 1.0 - mixture_loss, 0.01, 0.16 + 0.25 - mixture_loss]
    np.testing.assert_allclose(mechanism.cumulative_loss[0], expected, atol=1e-12)


def test_hedge_aggregate_over_participants_log_space() -> None:
    mechanism = reset_mechanism(Hedge(eta=1.0), 3)
    mechanism.cumulative_loss = np.array([[0.0, 2000.0, 2001.0]])
    # Labeler 0 has all the weight to double precision, yet the participants 1 and 2 still
    # split theirs as exp(-2000) : exp(-2001).
    np.testing.assert_array_equal(mechanism.weights, [[1.0, 0.0, 0.0]])
    weights = mechanism.aggregation_weights(np.array([[False, True, True]]))
    np.testing.assert_allclose(weights[0], [0.0, 1 / (1 + math.exp(-1)), math.exp(-1) / (1 + math.exp(-1))])


def test_hedge_unrevealed_rows_unchanged() -> None:
    mechanism = reset_mechanism(Hedge(eta=0.5), 3, batch_size=2)
    reports = np.concatenate([column(*SLOT_1[0]), column(*SLOT_1[0])])
    mechanism.update(reports, full_mask(3, 2), np.array([[0.5], [0.5]]), revealed=np.array([True, False]))
    np.testing.assert_allclose(mechanism.weights[0], normalised([math.exp(-0.045), math.exp(-0.005), math.exp(-0.08)]))
    np.testing.assert_array_equal(mechanism.weights[1], np.full(3, 1 / 3))
    np.testing.assert_array_equal(mechanism.cumulative_loss[1], np.zeros(3))


def test_hedge_default_eta() -> None:
    mechanism = reset_mechanism(Hedge(), 5, horizon=1000)
    assert mechanism.eta == pytest.approx(math.sqrt(8 * math.log(5) / 1000))


def test_hedge_single_labeler_default_eta() -> None:
    mechanism = reset_mechanism(Hedge(), 1, horizon=1000)
    assert mechanism.eta == 0.0
    play_slot(mechanism, ((0.3,), 0.5))
    np.testing.assert_array_equal(mechanism.weights, [[1.0]])


def test_hedge_explicit_eta_kept() -> None:
    mechanism = reset_mechanism(Hedge(eta=3.0), 5, horizon=1000)
    assert mechanism.eta == 3.0


# ---------------------------------------------------------------------------
# mw_linear
# ---------------------------------------------------------------------------


def test_mw_linear_first_step() -> None:
    mechanism = reset_mechanism(MultiplicativeWeights(eta=0.5), 3)
    play_slot(mechanism, SLOT_1)
    # Factors 1 - l / 2 = (0.955, 0.995, 0.92), total 2.87.
    assert_weights(mechanism, [Fraction(191, 574), Fraction(199, 574), Fraction(184, 574)])


def test_mw_linear_second_step() -> None:
    mechanism = reset_mechanism(MultiplicativeWeights(eta=0.5), 3)
    play_slot(mechanism, SLOT_1)
    play_slot(mechanism, SLOT_2)
    # Factors (0.5, 1, 0.875) give (0.4775, 0.995, 0.805) / 2.2775.
    assert_weights(mechanism, [Fraction(191, 911), Fraction(398, 911), Fraction(322, 911)])


def test_mw_linear_log_weights_normalised() -> None:
    mechanism = reset_mechanism(MultiplicativeWeights(eta=0.5), 3)
    play_slot(mechanism, SLOT_1)
    np.testing.assert_allclose(mechanism.log_weights[0], np.log([191 / 574, 199 / 574, 184 / 574]), atol=1e-12)


def test_mw_linear_absolute_loss() -> None:
    mechanism = reset_mechanism(MultiplicativeWeights(eta=0.5, loss="absolute"), 3)
    play_slot(mechanism, SLOT_1)
    # Factors (0.85, 0.95, 0.8), total 2.6.
    assert_weights(mechanism, [Fraction(17, 52), Fraction(19, 52), Fraction(16, 52)])


def test_mw_linear_importance_weighted() -> None:
    mechanism = reset_mechanism(MultiplicativeWeights(eta=0.5), 3)
    mask = np.array([[True, True, False]])
    play_slot(mechanism, SLOT_1, mask, ask_prob=np.full((1, 3), 2 / 3))
    # eta is capped at (2/3) / 2 = 1/3, and l_hat = (0.135, 0.015, 0) gives factors (0.955, 0.995, 1).
    assert_weights(mechanism, [Fraction(191, 590), Fraction(199, 590), Fraction(200, 590)])


def test_mw_linear_eta_below_cap_kept() -> None:
    mechanism = reset_mechanism(MultiplicativeWeights(eta=0.1), 3)
    mask = np.array([[True, True, False]])
    play_slot(mechanism, SLOT_1, mask, ask_prob=np.full((1, 3), 2 / 3))
    # eta = 0.1 is below the cap 1/3 and stays, so the factors are (1 - 0.0135, 1 - 0.0015, 1).
    assert_weights(mechanism, normalised([0.9865, 0.9985, 1.0]))


def test_mw_linear_sleeping_experts() -> None:
    mechanism = reset_mechanism(MultiplicativeWeights(eta=0.5), 3)
    play_slot(mechanism, SLOT_1)
    play_slot(mechanism, SLOT_2, PARTIAL_MASK)
    # Labelers 0 and 2 had (191 + 184) / 574 = 375 / 574. Their factors 0.5 and 0.875 give
    # 95.5 : 161, that is 191 : 322 out of 513. Labeler 1 keeps 199 / 574.
    assert_weights(
        mechanism,
        [Fraction(375 * 191, 513 * 574), Fraction(199, 574), Fraction(375 * 322, 513 * 574)],
    )


def test_mw_linear_unrevealed_rows_unchanged() -> None:
    mechanism = reset_mechanism(MultiplicativeWeights(eta=0.5), 3, batch_size=2)
    reports = np.concatenate([column(*SLOT_1[0]), column(*SLOT_1[0])])
    mechanism.update(reports, full_mask(3, 2), np.array([[0.5], [0.5]]), revealed=np.array([False, True]))
    np.testing.assert_array_equal(mechanism.weights[0], np.full(3, 1 / 3))
    np.testing.assert_allclose(mechanism.weights[1], [191 / 574, 199 / 574, 184 / 574], atol=1e-12)


def test_mw_linear_default_eta() -> None:
    mechanism = reset_mechanism(MultiplicativeWeights(), 5, horizon=1000)
    assert mechanism.eta == pytest.approx(math.sqrt(math.log(5) / 1000))


def test_mw_linear_default_eta_capped_at_half() -> None:
    mechanism = reset_mechanism(MultiplicativeWeights(), 5, horizon=1)
    assert mechanism.eta == 0.5


# ---------------------------------------------------------------------------
# weighted_majority_abs
# ---------------------------------------------------------------------------


def test_weighted_majority_first_step() -> None:
    mechanism = reset_mechanism(WeightedMajorityAbsolute(eta=0.5), 3)
    play_slot(mechanism, SLOT_1)
    # Absolute losses (0.3, 0.1, 0.4), factors (0.85, 0.95, 0.8).
    assert_weights(mechanism, [Fraction(17, 52), Fraction(19, 52), Fraction(16, 52)])


def test_weighted_majority_second_step() -> None:
    mechanism = reset_mechanism(WeightedMajorityAbsolute(eta=0.5), 3)
    play_slot(mechanism, SLOT_1)
    play_slot(mechanism, SLOT_2)
    # Absolute losses (1, 0, 0.5), factors (0.5, 1, 0.75): unnormalised (0.425, 0.95, 0.6).
    assert_weights(mechanism, [Fraction(17, 79), Fraction(38, 79), Fraction(24, 79)])


def test_weighted_majority_log_weights_unnormalised() -> None:
    mechanism = reset_mechanism(WeightedMajorityAbsolute(eta=0.5), 3)
    play_slot(mechanism, SLOT_1)
    play_slot(mechanism, SLOT_2)
    np.testing.assert_allclose(mechanism.log_weights[0], np.log([0.425, 0.95, 0.6]), atol=1e-12)


def test_weighted_majority_always_absolute() -> None:
    mechanism = WeightedMajorityAbsolute()
    assert mechanism.loss == "absolute"
    with pytest.raises(ValueError, match="loss='quadratic'"):
        make("weighted_majority_abs", loss="quadratic")


def test_weighted_majority_importance_weighted() -> None:
    mechanism = reset_mechanism(WeightedMajorityAbsolute(eta=0.5), 3)
    mask = np.array([[True, True, False]])
    play_slot(mechanism, SLOT_1, mask, ask_prob=np.full((1, 3), 2 / 3))
    # eta is capped at 1/3, and l_hat = (0.45, 0.15, 0) gives factors (0.85, 0.95, 1).
    assert_weights(mechanism, [Fraction(17, 56), Fraction(19, 56), Fraction(20, 56)])


def test_weighted_majority_sleeping_experts() -> None:
    mechanism = reset_mechanism(WeightedMajorityAbsolute(eta=0.5), 3)
    play_slot(mechanism, SLOT_1)
    play_slot(mechanism, SLOT_2, PARTIAL_MASK)
    # Labelers 0 and 2 had (0.85 + 0.8) / 2.6 = 33 / 52. Their factors 0.5 and 0.75 give
    # 0.425 : 0.6, that is 17 : 24 out of 41. Labeler 1 keeps 19 / 52.
    assert_weights(mechanism, [Fraction(33 * 17, 52 * 41), Fraction(19, 52), Fraction(33 * 24, 52 * 41)])


def test_weighted_majority_eta_up_to_one() -> None:
    mechanism = reset_mechanism(WeightedMajorityAbsolute(eta=0.9), 3)
    play_slot(mechanism, SLOT_1)
    # Factors (0.73, 0.91, 0.64), total 2.28.
    assert_weights(mechanism, [Fraction(73, 228), Fraction(91, 228), Fraction(64, 228)])


def test_weighted_majority_default_eta() -> None:
    mechanism = reset_mechanism(WeightedMajorityAbsolute(), 5, horizon=1000)
    assert mechanism.eta == pytest.approx(math.sqrt(math.log(5) / 1000))
    reset_mechanism(mechanism, 5, horizon=1)
    assert mechanism.eta == 0.5


# ---------------------------------------------------------------------------
# follow_the_leader
# ---------------------------------------------------------------------------


def test_follow_the_leader_two_steps() -> None:
    mechanism = reset_mechanism(FollowTheLeader(), 3)
    play_slot(mechanism, SLOT_1)
    assert_weights(mechanism, [0, 1, 0])

    # Slot (0.1, 0.9, 0.3) with truth 0: losses (0.01, 0.81, 0.09), totals (0.1, 0.82, 0.25).
    play_slot(mechanism, ((0.1, 0.9, 0.3), 0.0))
    np.testing.assert_allclose(mechanism.cumulative_loss[0], [0.1, 0.82, 0.25], atol=1e-12)
    assert_weights(mechanism, [1, 0, 0])


def test_follow_the_leader_ties_split() -> None:
    mechanism = reset_mechanism(FollowTheLeader(), 3)
    # Losses (0.2 - 0.5)^2 and (0.8 - 0.5)^2 differ by rounding only, which the tolerance absorbs.
    play_slot(mechanism, ((0.2, 0.8, 0.9), 0.5))
    assert_weights(mechanism, [Fraction(1, 2), Fraction(1, 2), 0])


def test_follow_the_leader_zero_tolerance_breaks_rounded_tie() -> None:
    mechanism = reset_mechanism(FollowTheLeader(tie_rtol=0.0), 3)
    play_slot(mechanism, ((0.2, 0.8, 0.9), 0.5))
    # In binary floating point (0.2 - 0.5)^2 = 0.09 and (0.8 - 0.5)^2 = 0.09000000000000002.
    assert (0.2 - 0.5) ** 2 < (0.8 - 0.5) ** 2
    assert_weights(mechanism, [1, 0, 0])


def test_follow_the_leader_absolute_loss() -> None:
    mechanism = reset_mechanism(FollowTheLeader(loss="absolute"), 3)
    # After the first slot both losses make labeler 0 the leader: quadratic (0.04, 0.0625, 0.25)
    # and absolute (0.2, 0.25, 0.5). After the second, the quadratic totals (0.05, 0.0625, 1.25)
    # keep labeler 0 and the absolute totals (0.3, 0.25, 1.5) switch to labeler 1.
    play_slot(mechanism, ((0.3, 0.75, 1.0), 0.5))
    assert_weights(mechanism, [1, 0, 0])
    play_slot(mechanism, ((0.1, 0.0, 1.0), 0.0))
    np.testing.assert_allclose(mechanism.cumulative_loss[0], [0.3, 0.25, 1.5], atol=1e-12)
    assert_weights(mechanism, [0, 1, 0])


def test_follow_the_leader_quadratic_same_slots() -> None:
    mechanism = reset_mechanism(FollowTheLeader(), 3)
    play_slot(mechanism, ((0.3, 0.75, 1.0), 0.5))
    play_slot(mechanism, ((0.1, 0.0, 1.0), 0.0))
    np.testing.assert_allclose(mechanism.cumulative_loss[0], [0.05, 0.0625, 1.25], atol=1e-12)
    assert_weights(mechanism, [1, 0, 0])


def test_follow_the_leader_importance_weighted() -> None:
    mechanism = reset_mechanism(FollowTheLeader(), 3)
    mask = np.array([[True, True, False]])
    play_slot(mechanism, SLOT_1, mask, ask_prob=np.full((1, 3), 2 / 3))
    # l_hat = (0.135, 0.015, 0): labeler 2, not asked, leads with 0.
    np.testing.assert_allclose(mechanism.cumulative_loss[0], [0.135, 0.015, 0.0], atol=1e-12)
    assert_weights(mechanism, [0, 0, 1])


def test_follow_the_leader_sleeping_experts() -> None:
    mechanism = reset_mechanism(FollowTheLeader(), 3)
    play_slot(mechanism, SLOT_1)
    play_slot(mechanism, SLOT_2, PARTIAL_MASK)
    # Participants 0 and 2 had (0.09, 0.16); adding (1, 0.25) gives (1.09, 0.41), shifted
    # by 0.41 - 0.09 = 0.32 so their lowest total stays 0.09. Labeler 1 keeps 0.01 and leads.
    np.testing.assert_allclose(mechanism.cumulative_loss[0], [0.77, 0.01, 0.09], atol=1e-12)
    assert_weights(mechanism, [0, 1, 0])


def test_follow_the_leader_aggregate_follows_asked_leader() -> None:
    mechanism = reset_mechanism(FollowTheLeader(), 3)
    play_slot(mechanism, SLOT_1)
    # Totals (0.09, 0.01, 0.16): without labeler 1 the leader among the asked is labeler 0.
    aggregate = mechanism.aggregate(column(0.3, 0.6, 0.8), np.array([[True, False, True]]))
    assert aggregate[0, 0] == pytest.approx(0.3)


def test_follow_the_leader_unrevealed_rows_unchanged() -> None:
    mechanism = reset_mechanism(FollowTheLeader(), 3, batch_size=2)
    reports = np.concatenate([column(*SLOT_1[0]), column(*SLOT_1[0])])
    mechanism.update(reports, full_mask(3, 2), np.array([[0.5], [0.5]]), revealed=np.array([True, False]))
    np.testing.assert_array_equal(mechanism.weights, [[0.0, 1.0, 0.0], [1 / 3, 1 / 3, 1 / 3]])


# ---------------------------------------------------------------------------
# em_weights
# ---------------------------------------------------------------------------


def test_em_weights_one_iteration_slot() -> None:
    mechanism = reset_mechanism(EMWeights(iterations=1, prior_count=1.0, prior_residual=0.2), 3)
    aggregate = mechanism.aggregate(column(0.2, 0.6, 0.9), full_mask(3))

    # Uniform prior weights give a = 17/30. The squared residuals (121, 1, 100) / 900 join the
    # prior 0.04 = 36/900 with count 2, so sigma_hat^2 = (157, 37, 136) / 1800.
    assert aggregate[0, 0] == pytest.approx(17 / 30, abs=1e-12)
    np.testing.assert_allclose(mechanism.residual_sum[0], [157 / 900, 37 / 900, 136 / 900], atol=1e-12)
    np.testing.assert_array_equal(mechanism.residual_count[0], [2.0, 2.0, 2.0])
    assert_weights(mechanism, normalised([Fraction(1, 157), Fraction(1, 37), Fraction(1, 136)]))


def test_em_weights_two_iterations_slot() -> None:
    mechanism = reset_mechanism(EMWeights(iterations=2, prior_count=1.0, prior_residual=0.2), 3)
    aggregate = mechanism.aggregate(column(0.2, 0.6, 0.9), full_mask(3))
    # The second iteration weights the reports by 1 / sigma_hat^2 from the first: (1/157, 1/37, 1/136).
    precision = [Fraction(1, 157), Fraction(1, 37), Fraction(1, 136)]
    reports = [Fraction(1, 5), Fraction(3, 5), Fraction(9, 10)]
    expected = sum(p * r for p, r in zip(precision, reports)) / sum(precision)
    assert aggregate[0, 0] == pytest.approx(float(expected), abs=1e-12)

    residuals = [(r - expected) ** 2 for r in reports]
    expected_variance = [(Fraction(1, 25) + res) / 2 for res in residuals]
    assert_weights(mechanism, normalised([1 / v for v in expected_variance]))


def test_em_weights_second_slot() -> None:
    mechanism = reset_mechanism(EMWeights(iterations=1, prior_count=1.0, prior_residual=0.2), 3)
    mechanism.aggregate(column(0.2, 0.6, 0.9), full_mask(3))
    aggregate = mechanism.aggregate(column(1.0, 0.0, 0.5), full_mask(3))

    precision = [Fraction(1, 157), Fraction(1, 37), Fraction(1, 136)]
    reports = [Fraction(1), Fraction(0), Fraction(1, 2)]
    expected = sum(p * r for p, r in zip(precision, reports)) / sum(precision)
    assert aggregate[0, 0] == pytest.approx(float(expected), abs=1e-12)

    sums = [Fraction(157, 900), Fraction(37, 900), Fraction(136, 900)]
    variance = [(s + (r - expected) ** 2) / 3 for s, r in zip(sums, reports)]
    assert_weights(mechanism, normalised([1 / v for v in variance]))


def test_em_weights_absolute_residual() -> None:
    mechanism = reset_mechanism(EMWeights(iterations=1, prior_count=1.0, prior_residual=0.2, loss="absolute"), 3)
    mechanism.aggregate(column(0.2, 0.6, 0.9), full_mask(3))
    # Absolute residuals (11, 1, 10) / 30 join the prior scale 0.2 = 6/30 with count 2:
    # mean residuals (17, 7, 16) / 60, and sigma_hat^2 is their square.
    np.testing.assert_allclose(mechanism.residual_sum[0], [17 / 30, 7 / 30, 16 / 30], atol=1e-12)
    assert_weights(mechanism, normalised([Fraction(1, 17**2), Fraction(1, 7**2), Fraction(1, 16**2)]))


def test_em_weights_masked_keep_statistics() -> None:
    mechanism = reset_mechanism(EMWeights(iterations=1, prior_count=1.0, prior_residual=0.2), 3)
    aggregate = mechanism.aggregate(column(0.2, 0.6, 0.9), PARTIAL_MASK)
    # Labelers 0 and 2 give a = 0.55 and squared residuals 0.1225 each. Labeler 1 keeps the prior.
    assert aggregate[0, 0] == pytest.approx(0.55, abs=1e-12)
    np.testing.assert_allclose(mechanism.residual_sum[0], [0.1625, 0.04, 0.1625], atol=1e-12)
    np.testing.assert_array_equal(mechanism.residual_count[0], [2.0, 1.0, 2.0])
    assert_weights(mechanism, normalised([1 / 0.08125, 1 / 0.04, 1 / 0.08125]))


def test_em_weights_update_ignores_truth() -> None:
    mechanism = reset_mechanism(EMWeights(), 3)
    mechanism.aggregate(column(0.2, 0.6, 0.9), full_mask(3))
    before = mechanism.weights.copy()
    sums_before = mechanism.residual_sum.copy()

    play_slot(mechanism, SLOT_2)

    np.testing.assert_array_equal(mechanism.weights, before)
    np.testing.assert_array_equal(mechanism.residual_sum, sums_before)


def test_em_weights_empty_slot() -> None:
    mechanism = reset_mechanism(EMWeights(), 3)
    aggregate = mechanism.aggregate(column(0.2, 0.6, 0.9), np.zeros((1, 3), dtype=bool))
    assert aggregate[0, 0] == pytest.approx(0.5)
    np.testing.assert_array_equal(mechanism.residual_count, np.full((1, 3), 10.0))
    np.testing.assert_allclose(mechanism.weights, np.full((1, 3), 1 / 3), rtol=0, atol=1e-15)


def test_em_weights_identical_reports_floor() -> None:
    mechanism = reset_mechanism(EMWeights(prior_count=1.0, min_variance=1e-4), 2)
    for _ in range(1000):
        mechanism.aggregate(column(0.4, 0.4), full_mask(2))
    variance = mechanism.variance(mechanism.residual_sum, mechanism.residual_count)
    # The mean squared residual is 0.04 / 1001 < 1e-4, so the floor applies.
    np.testing.assert_array_equal(variance, np.full((1, 2), 1e-4))
    np.testing.assert_array_equal(mechanism.weights, [[0.5, 0.5]])


def test_em_weights_early_weights_near_uniform() -> None:
    mechanism = reset_mechanism(EMWeights(), 3)
    mechanism.aggregate(column(0.0, 0.5, 1.0), full_mask(3))
    # The prior count 10 with sigma_hat^2 = 0.04 absorbs the squared residuals (0.25, 0, 0.25)
    # of these spread-out reports: sigma_hat^2 = (0.65, 0.4, 0.65) / 11.
    assert_weights(mechanism, normalised([1 / 0.65, 1 / 0.4, 1 / 0.65]))
    assert mechanism.weights.max() / mechanism.weights.min() == pytest.approx(1.625)


def test_em_weights_favour_least_noisy_without_truth() -> None:
    rng = np.random.default_rng(11)
    batch_size, slots = 8, 300
    sigma = np.array([0.02, 0.08, 0.15, 0.25, 0.3])
    mechanism = reset_mechanism(EMWeights(), len(sigma), horizon=slots, batch_size=batch_size)
    # The mechanism receives reports only, because update() is never called.
    for _ in range(slots):
        truth = rng.uniform(0.2, 0.8, size=(batch_size, 1, 1))
        noise = sigma[None, :, None] * rng.standard_normal((batch_size, len(sigma), 1))
        mechanism.aggregate(np.clip(truth + noise, 0.0, 1.0), full_mask(len(sigma), batch_size))
    np.testing.assert_array_equal(np.argmax(mechanism.weights, axis=1), np.zeros(batch_size))
    assert np.all(mechanism.weights[:, 0] > 0.5)


def test_em_weights_not_linear() -> None:
    assert not EMWeights.linear
    for cls in (Hedge, MultiplicativeWeights, WeightedMajorityAbsolute, FollowTheLeader):
        assert cls.linear


# ---------------------------------------------------------------------------
# online_weighted with the absolute loss
# ---------------------------------------------------------------------------


def test_online_weighted_absolute_loss() -> None:
    mechanism = reset_mechanism(OnlineWeighted(eta=0.5, loss="absolute"), 3)
    play_slot(mechanism, SLOT_1)
    # Absolute losses (0.3, 0.1, 0.4) have mean 4/15, so l - mean = (1/30, -1/6, 2/15).
    assert_weights(mechanism, [Fraction(59, 180), Fraction(65, 180), Fraction(56, 180)])


# ---------------------------------------------------------------------------
# make, defaults and parameter checks
# ---------------------------------------------------------------------------

NEW_RULES = {
    "hedge": Hedge,
    "mw_linear": MultiplicativeWeights,
    "weighted_majority_abs": WeightedMajorityAbsolute,
    "follow_the_leader": FollowTheLeader,
    "em_weights": EMWeights,
}
ALL_RULES = ("mean", "median", "online_weighted", *NEW_RULES)


@pytest.mark.parametrize(("name", "cls"), NEW_RULES.items())
def test_make_builds_rule(name: str, cls: type) -> None:
    mechanism = make(name)
    assert type(mechanism) is cls
    assert mechanism.name == name


@pytest.mark.parametrize("name", ["hedge", "mw_linear", "follow_the_leader", "em_weights"])
def test_make_passes_absolute_loss(name: str) -> None:
    assert make(name, loss="absolute").loss == "absolute"


def test_make_passes_rule_params() -> None:
    assert make("hedge", eta=2.5).eta == 2.5
    assert make("mw_linear", eta=0.25).eta == 0.25
    assert make("weighted_majority_abs", eta=0.75).eta == 0.75
    assert make("follow_the_leader", tie_rtol=1e-6).tie_rtol == 1e-6
    em = make("em_weights", iterations=3, prior_count=2.0, prior_residual=0.1, min_variance=1e-5)
    assert (em.iterations, em.prior_count, em.prior_residual, em.min_variance) == (3, 2.0, 0.1, 1e-5)


def test_default_parameters() -> None:
    assert make("hedge").eta_param is None
    assert make("mw_linear").eta_param is None
    assert make("weighted_majority_abs").eta_param is None
    assert make("follow_the_leader").tie_rtol == 1e-9
    em = make("em_weights")
    assert (em.iterations, em.prior_count, em.prior_residual, em.min_variance) == (5, 10.0, 0.2, 1e-6)
    for name in ("hedge", "mw_linear", "follow_the_leader", "em_weights"):
        assert make(name).loss == "quadratic"


@pytest.mark.parametrize(
    ("name", "params", "text"),
    [
        ("hedge", {"eta": 0.0}, "eta=0.0"),
        ("hedge", {"eta": -1.0}, "eta=-1.0"),
        ("hedge", {"eta": math.inf}, "eta=inf"),
        ("hedge", {"eta": math.nan}, "eta=nan"),
        ("hedge", {"eta": True}, "eta=True"),
        ("hedge", {"eta": "0.5"}, "eta='0.5'"),
        ("hedge", {"loss": "hinge"}, "loss='hinge'"),
        ("mw_linear", {"eta": 0.0}, "eta=0.0"),
        ("mw_linear", {"eta": 0.6}, "eta=0.6"),
        ("mw_linear", {"loss": "squared"}, "loss='squared'"),
        ("weighted_majority_abs", {"eta": 1.0}, "eta=1.0"),
        ("weighted_majority_abs", {"eta": -0.2}, "eta=-0.2"),
        ("follow_the_leader", {"tie_rtol": -1e-9}, "tie_rtol=-1e-09"),
        ("follow_the_leader", {"tie_rtol": 1.0}, "tie_rtol=1.0"),
        ("follow_the_leader", {"tie_rtol": None}, "tie_rtol=None"),
        ("em_weights", {"iterations": 0}, "iterations=0"),
        ("em_weights", {"iterations": 2.5}, "iterations=2.5"),
        ("em_weights", {"prior_count": 0.0}, "prior_count=0.0"),
        ("em_weights", {"prior_residual": -0.1}, "prior_residual=-0.1"),
        ("em_weights", {"min_variance": 0.0}, "min_variance=0.0"),
        ("em_weights", {"loss": "hinge"}, "loss='hinge'"),
    ],
)
def test_invalid_parameter_raises(name: str, params: dict, text: str) -> None:
    with pytest.raises(ValueError) as error:
        make(name, **params)
    assert text in str(error.value)


@pytest.mark.parametrize("name", ["hedge", "mw_linear", "weighted_majority_abs"])
def test_invalid_horizon_raises(name: str) -> None:
    with pytest.raises(ValueError, match="horizon=0"):
        make(name).reset(3, 0, np.random.default_rng(0))


def test_unknown_parameter_raises() -> None:
    with pytest.raises(ValueError, match="hedge"):
        make("hedge", beta=0.5)


@pytest.mark.parametrize("name", ["hedge", "mw_linear", "weighted_majority_abs", "follow_the_leader"])
def test_asked_with_zero_probability_raises(name: str) -> None:
    mechanism = reset_mechanism(make(name), 3)
    ask_prob = np.array([[0.5, 0.0, 0.5]])
    with pytest.raises(ValueError, match="ask_prob"):
        play_slot(mechanism, SLOT_1, full_mask(3), ask_prob=ask_prob)


@pytest.mark.parametrize("name", ALL_RULES)
def test_slot_without_participants_unchanged(name: str) -> None:
    mechanism = reset_mechanism(make(name), 3, batch_size=2)
    play_slot(mechanism, SLOT_1)
    before = mechanism.weights.copy()
    reports = np.concatenate([column(*SLOT_2[0]), column(*SLOT_2[0])])
    mask = np.array([[False, False, False], [True, True, True]])

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        aggregate = mechanism.aggregate(reports, mask)
        mechanism.update(reports, mask, np.array([[0.0], [0.0]]))

    assert aggregate[0, 0] == pytest.approx(0.5)
    np.testing.assert_array_equal(mechanism.weights[0], before[0])


# ---------------------------------------------------------------------------
# full games
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_RULES)
@pytest.mark.parametrize("feedback_per_slot", [None, 2])
def test_full_game_truthful(name: str, feedback_per_slot: int | None) -> None:
    overrides = {} if feedback_per_slot is None else {"feedback_per_slot": feedback_per_slot}
    game = build_game(preset="paper", mechanism=name, horizon=100, batch_size=4, **overrides)
    game.reset(seed=5)

    slots = 0
    while not game.done:
        result = game.step(game.preferences)
        slots += 1
        assert np.all(np.isfinite(result.aggregate))
        assert np.all((result.aggregate >= 0.0) & (result.aggregate <= 1.0))

    assert slots == 100
    assert result.done
    weights = game.weights
    assert np.all(np.isfinite(weights))
    assert np.all(weights >= 0.0)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-9)
    assert np.all(np.isfinite(game.regret()))
