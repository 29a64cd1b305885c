"""Property-based tests of every registered mechanism of :mod:`strategic_env.mechanisms`.

Hypothesis draws batch sizes, numbers of labelers N, dimensions K, horizons, reports,
truths, participation masks with at least one participant per game, asking probabilities
and revelation flags. Every rule must keep its weights a distribution and its aggregate in
the feedback space, and must leave unrevealed games unchanged. The rules that learn from
losses must not raise a labeler's next weight when its own loss rises. Long runs, and
states as large as those after 10^6 slots, must give no NaN, infinite or all-zero weights.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from strategic_env.mechanisms import Mechanism, available, make, resolve
from strategic_env.spaces import project_simplex

EXPECTED_RULES = {
    "mean",
    "median",
    "online_weighted",
    "hedge",
    "mw_linear",
    "weighted_majority_abs",
    "follow_the_leader",
    "em_weights",
}
# Rules registered by this package. Tests elsewhere may register their own toy rules.
REGISTERED = tuple(sorted(name for name in available() if resolve(name).__module__ == "strategic_env.mechanisms"))

# A labeler's next weight must not rise with its own loss under these rules. em_weights is
# excluded because it never receives the truth: its weights follow agreement with the aggregate,
# not the loss. follow_the_leader is included: its weight is 1 / (number of leaders) on the
# leaders and 0 elsewhere, and a higher loss can only drop a labeler from the leaders or add
# rivals to them.
MONOTONE_RULES = ("online_weighted", "hedge", "mw_linear", "weighted_majority_abs", "follow_the_leader")

UNIT_FLOATS = st.floats(0.0, 1.0, allow_nan=False, allow_infinity=False)
HORIZONS = st.one_of(st.integers(1, 50), st.sampled_from([1000, 10**6]))


@dataclass
class Slot:
    reports: np.ndarray  # (B, N, K)
    truth: np.ndarray  # (B, K)
    mask: np.ndarray  # (B, N) bool, at least one participant per game
    ask_prob: np.ndarray | None  # (B, N)
    revealed: np.ndarray  # (B,) bool


@dataclass
class Episode:
    batch_size: int
    n_labelers: int
    feedback_dim: int
    horizon: int
    space: str
    slots: list[Slot]


@st.composite
def episodes(draw, space: str = "cube") -> Episode:
    batch_size = draw(st.integers(1, 4))
    n_labelers = draw(st.integers(1, 6))
    feedback_dim = draw(st.integers(2 if space == "simplex" else 1, 4))
    horizon = draw(HORIZONS)
    sampled = draw(st.booleans())
    participation = draw(st.sampled_from(["all", "random"]))
    b, n, k = batch_size, n_labelers, feedback_dim

    slots = []
    for _ in range(draw(st.integers(1, 5))):
        reports = draw(arrays(np.float64, (b, n, k), elements=UNIT_FLOATS))
        truth = draw(arrays(np.float64, (b, k), elements=UNIT_FLOATS))
        if space == "simplex":
            reports = project_simplex(reports)
            truth = project_simplex(truth)
        if participation == "all":
            mask = np.ones((b, n), dtype=bool)
        else:
            mask = draw(arrays(np.bool_, (b, n)))
            forced = draw(arrays(np.int64, (b,), elements=st.integers(0, n - 1)))
            mask[np.arange(b), forced] = True
        ask_prob = draw(arrays(np.float64, (b, n), elements=st.floats(0.05, 1.0))) if sampled else None
        revealed = draw(arrays(np.bool_, (b,)))
        slots.append(Slot(reports, truth, mask, ask_prob, revealed))
    return Episode(b, n, k, horizon, space, slots)


def build(name: str, episode: Episode, loss: str) -> Mechanism:
    mechanism = make(name) if name == "weighted_majority_abs" else make(name, loss=loss)
    mechanism.reset(
        episode.n_labelers,
        episode.horizon,
        np.random.default_rng(0),
        batch_size=episode.batch_size,
        feedback_dim=episode.feedback_dim,
        space=episode.space,
    )
    return mechanism


def assert_valid_weights(weights: np.ndarray, shape: tuple[int, int]) -> None:
    assert weights.shape == shape
    assert np.all(np.isfinite(weights))
    assert np.all(weights >= 0.0)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=0, atol=1e-9)


def assert_in_space(aggregate: np.ndarray, space: str) -> None:
    assert np.all(np.isfinite(aggregate))
    if space == "cube":
        assert np.all(aggregate >= 0.0)
        assert np.all(aggregate <= 1.0)
    else:
        assert np.all(aggregate >= -1e-12)
        np.testing.assert_allclose(aggregate.sum(axis=1), 1.0, rtol=0, atol=1e-9)


def play(mechanism: Mechanism, slot: Slot, revealed: np.ndarray | None = None) -> np.ndarray:
    aggregate = mechanism.aggregate(slot.reports, slot.mask)
    mechanism.update(slot.reports, slot.mask, slot.truth, revealed=revealed, ask_prob=slot.ask_prob)
    return aggregate


def test_registered_rules_complete() -> None:
    assert set(REGISTERED) == EXPECTED_RULES


# ---------------------------------------------------------------------------
# weights and aggregates
# ---------------------------------------------------------------------------


def check_episode(name: str, episode: Episode, loss: str) -> None:
    mechanism = build(name, episode, loss)
    shape = (episode.batch_size, episode.n_labelers)
    assert_valid_weights(mechanism.weights, shape)

    for slot in episode.slots:
        aggregate = mechanism.aggregate(slot.reports, slot.mask)
        assert aggregate.shape == (episode.batch_size, episode.feedback_dim)
        assert_in_space(aggregate, episode.space)
        assert_valid_weights(mechanism.weights, shape)

        before = mechanism.weights.copy()
        mechanism.update(slot.reports, slot.mask, slot.truth, revealed=slot.revealed, ask_prob=slot.ask_prob)
        assert_valid_weights(mechanism.weights, shape)
        np.testing.assert_array_equal(mechanism.weights[~slot.revealed], before[~slot.revealed])


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(REGISTERED), episode=episodes(), loss=st.sampled_from(["quadratic", "absolute"]))
def test_valid_weights_cube(name: str, episode: Episode, loss: str) -> None:
    check_episode(name, episode, loss)


@settings(max_examples=100, deadline=None)
@given(name=st.sampled_from(REGISTERED), episode=episodes("simplex"), loss=st.sampled_from(["quadratic", "absolute"]))
def test_valid_weights_simplex(name: str, episode: Episode, loss: str) -> None:
    check_episode(name, episode, loss)


# ---------------------------------------------------------------------------
# monotonicity in the own loss
# ---------------------------------------------------------------------------


@st.composite
def loss_increases(draw) -> tuple[Episode, int, float]:
    episode = draw(episodes())
    labeler = draw(st.integers(0, episode.n_labelers - 1))
    push = draw(st.floats(0.0, 1.0))
    return episode, labeler, push


@settings(max_examples=200, deadline=None)
@given(
    name=st.sampled_from(MONOTONE_RULES),
    case=loss_increases(),
    loss=st.sampled_from(["quadratic", "absolute"]),
)
def test_weight_not_increasing_in_own_loss(name: str, case: tuple[Episode, int, float], loss: str) -> None:
    episode, labeler, push = case
    mechanism = build(name, episode, loss)
    for slot in episode.slots[:-1]:
        play(mechanism, slot, slot.revealed)
    last = episode.slots[-1]

    # Move the labeler's report away from the truth in every coordinate, towards the far
    # boundary of [0, 1], so both its quadratic and its absolute loss rise or stay.
    report = last.reports[:, labeler]
    truth = last.truth
    pushed_report = np.where(report >= truth, report + push * (1.0 - report), report - push * report)
    pushed = Slot(last.reports.copy(), truth, last.mask, last.ask_prob, last.revealed)
    pushed.reports[:, labeler] = pushed_report

    baseline = copy.deepcopy(mechanism)
    play(baseline, last)
    play(mechanism, pushed)

    assert np.all(mechanism.weights[:, labeler] <= baseline.weights[:, labeler] + 1e-12)


# ---------------------------------------------------------------------------
# long runs and extreme states
# ---------------------------------------------------------------------------

# Each rule with its fastest learning: eta at its upper bound (50 for hedge, which has none,
# and a prior count of 1e-3 for em_weights), and with the defaults for a horizon of 10^6 slots.
LONG_RUN_RULES = [
    ("mean", {}, 1000),
    ("median", {}, 1000),
    ("online_weighted", {"eta": 1.0}, 1000),
    ("online_weighted", {}, 10**6),
    ("hedge", {"eta": 50.0}, 1000),
    ("hedge", {}, 10**6),
    ("mw_linear", {"eta": 0.5}, 1000),
    ("mw_linear", {}, 10**6),
    ("weighted_majority_abs", {"eta": 0.999}, 1000),
    ("weighted_majority_abs", {}, 10**6),
    ("follow_the_leader", {}, 1000),
    ("em_weights", {"prior_count": 1e-3}, 1000),
    ("em_weights", {}, 10**6),
]
LONG_RUN_SLOTS = 1500
N_LABELERS = 4


def adversarial_slot(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Return reports (3, N, 1) and truths (3, 1) for three games run side by side.

    Game 0: every report equals the truth, so all losses stay at 0. Game 1: every report is
    the opposite corner of a truth in {0, 1}, so all losses stay at 1. Game 2: labeler 0
    always reports 1 - y while the others report y plus small noise.
    """
    truth = np.stack(
        [
            rng.random(1),
            rng.integers(0, 2, size=1).astype(np.float64),
            rng.random(1),
        ]
    )
    reports = np.repeat(truth[:, None, :], N_LABELERS, axis=1)
    reports[1] = 1.0 - truth[1]
    reports[2, 1:] = np.clip(truth[2] + 0.05 * rng.standard_normal((N_LABELERS - 1, 1)), 0.0, 1.0)
    reports[2, 0] = 1.0 - truth[2]
    return reports, truth


@pytest.mark.parametrize("participation", ["all", "sleeping", "sampled"])
@pytest.mark.parametrize(("name", "params", "horizon"), LONG_RUN_RULES)
def test_long_run_stays_valid(name: str, params: dict, horizon: int, participation: str) -> None:
    rng = np.random.default_rng(3)
    batch_size = 3
    mechanism = make(name, **params)
    mechanism.reset(N_LABELERS, horizon, np.random.default_rng(0), batch_size=batch_size)
    ask_prob = np.full((batch_size, N_LABELERS), 0.4) if participation == "sampled" else None

    for _ in range(LONG_RUN_SLOTS):
        reports, truth = adversarial_slot(rng)
        if participation == "all":
            mask = np.ones((batch_size, N_LABELERS), dtype=bool)
        else:
            mask = rng.random((batch_size, N_LABELERS)) < 0.4
            mask[:, 0] |= ~mask.any(axis=1)
        aggregate = mechanism.aggregate(reports, mask)
        mechanism.update(reports, mask, truth, ask_prob=ask_prob)
        assert np.all(np.isfinite(aggregate))

    assert_in_space(aggregate, "cube")
    assert_valid_weights(mechanism.weights, (batch_size, N_LABELERS))


def test_long_run_adversary_loses_weight() -> None:
    rng = np.random.default_rng(4)
    for name in ("online_weighted", "hedge", "mw_linear", "weighted_majority_abs", "follow_the_leader", "em_weights"):
        mechanism = make(name)
        mechanism.reset(N_LABELERS, LONG_RUN_SLOTS, np.random.default_rng(0), batch_size=3)
        for _ in range(LONG_RUN_SLOTS):
            reports, truth = adversarial_slot(rng)
            mask = np.ones((3, N_LABELERS), dtype=bool)
            mechanism.aggregate(reports, mask)
            mechanism.update(reports, mask, truth)
        assert mechanism.weights[2, 0] < 0.05, name


def test_hedge_cumulative_loss_million() -> None:
    for eta in (math.sqrt(8 * math.log(4) / 10**6), 50.0):
        mechanism = make("hedge", eta=eta)
        mechanism.reset(4, 10**6, np.random.default_rng(0), batch_size=2)
        mechanism.cumulative_loss = np.array([[0.0, 1.0, 1e6 - 1.0, 1e6], [1e6, 1e6 + 0.5, 1e6 + 1.0, 1e6 + 2.0]])
        weights = mechanism.weights
        assert_valid_weights(weights, (2, 4))

        # Ratios are exp(-eta (L_i - L_j)) even where every L is near 10^6.
        expected_first = np.exp(-eta * np.array([0.0, 1.0]))
        np.testing.assert_allclose(weights[0, :2] / weights[0, 0], expected_first, rtol=1e-9)
        expected_second = np.exp(-eta * np.array([0.0, 0.5, 1.0, 2.0]))
        np.testing.assert_allclose(weights[1] / weights[1, 0], expected_second, rtol=1e-9)

        reports = np.array([[[0.0], [1.0], [0.5], [0.2]]] * 2)
        mask = np.array([[False, False, True, True], [True, True, True, True]])
        assert_in_space(mechanism.aggregate(reports, mask), "cube")
        mechanism.update(reports, mask, np.array([[1.0], [0.0]]))
        assert_valid_weights(mechanism.weights, (2, 4))


def test_multiplicative_log_weights_million() -> None:
    for name, eta in (("mw_linear", 0.5), ("weighted_majority_abs", 0.999)):
        mechanism = make(name, eta=eta)
        mechanism.reset(4, 10**6, np.random.default_rng(0), batch_size=2)
        # Log weights after 10^6 slots with losses (0, 0.5, 1, 1) and with loss 1 for all.
        log_factors = np.log1p(-eta * np.array([[0.0, 0.5, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]]))
        mechanism.log_weights = 1e6 * log_factors
        assert_valid_weights(mechanism.weights, (2, 4))
        np.testing.assert_allclose(mechanism.weights, [[1.0, 0.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]], atol=1e-12)

        reports = np.array([[[0.0], [1.0], [0.5], [0.2]]] * 2)
        mask = np.array([[False, True, True, False], [True, True, True, True]])
        assert_in_space(mechanism.aggregate(reports, mask), "cube")
        mechanism.update(reports, mask, np.array([[1.0], [0.0]]), ask_prob=np.full((2, 4), 0.5))
        assert_valid_weights(mechanism.weights, (2, 4))


def test_follow_the_leader_cumulative_loss_million() -> None:
    mechanism = make("follow_the_leader")
    mechanism.reset(4, 10**6, np.random.default_rng(0))
    # The relative tolerance 1e-9 at 10^6 is 1e-3, so the first two tie.
    mechanism.cumulative_loss = 1e6 + np.array([[0.0, 1e-4, 0.5, 2.0]])
    np.testing.assert_array_equal(mechanism.weights, [[0.5, 0.5, 0.0, 0.0]])
    mechanism.update(np.array([[[0.0], [1.0], [0.5], [0.2]]]), np.ones((1, 4), dtype=bool), np.array([[1.0]]))
    assert_valid_weights(mechanism.weights, (1, 4))


def test_em_weights_million_slot_statistics() -> None:
    mechanism = make("em_weights")
    mechanism.reset(4, 10**6, np.random.default_rng(0))
    mechanism.residual_count = np.full((1, 4), 1e6)
    mechanism.residual_sum = 1e6 * np.array([[0.0, 1e-3, 0.25, 1.0]])
    aggregate = mechanism.aggregate(np.array([[[0.3], [0.31], [0.8], [1.0]]]), np.ones((1, 4), dtype=bool))
    assert_in_space(aggregate, "cube")
    assert_valid_weights(mechanism.weights, (1, 4))
    # The floor 1e-6 bounds the first labeler's precision: weights about 1e6 : 1e3 : 4 : 1.
    assert mechanism.weights[0, 0] > 0.99
