"""Tests of the batched game core: projections, actions, draws, participation, utilities and regret."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from strategic_env import parallel_env
from strategic_env.config import ConfigError, preset
from strategic_env.datasets import load_snow_rte
from strategic_env.game import StrategicFeedbackGame
from strategic_env.mechanisms import Mean
from strategic_env.pettingzoo_env import build_game
from strategic_env.preferences import LabelTable, ReplaySource
from strategic_env.spaces import accuracy_loss, project, project_cube, project_simplex

TOLERANCE = 1e-9


def play_truthful(game: StrategicFeedbackGame, seed: int) -> None:
    game.reset(seed)
    while not game.done:
        game.step(game.preferences.copy())


def assert_in_space(values: np.ndarray, space: str) -> None:
    assert np.all(values >= -TOLERANCE)
    assert np.all(values <= 1 + TOLERANCE)
    if space == "simplex":
        np.testing.assert_allclose(values.sum(axis=-1), 1.0, atol=1e-9)


# ---------------------------------------------------------------------------
# Projections
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("k", [2, 3, 5, 10])
def test_simplex_projection_sums_to_one(k: int) -> None:
    points = np.random.default_rng(k).normal(0.0, 3.0, size=(500, k))
    projected = project_simplex(points)
    np.testing.assert_allclose(projected.sum(axis=1), 1.0, atol=1e-12)


@pytest.mark.parametrize("k", [2, 3, 5, 10])
def test_simplex_projection_nonnegative(k: int) -> None:
    points = np.random.default_rng(k).normal(0.0, 3.0, size=(500, k))
    assert np.all(project_simplex(points) >= 0.0)


@pytest.mark.parametrize("k", [2, 3, 5, 10])
def test_simplex_projection_idempotent_on_simplex(k: int) -> None:
    points = np.random.default_rng(k).dirichlet(np.full(k, 0.7), size=500)
    np.testing.assert_allclose(project_simplex(points), points, atol=1e-12)


@pytest.mark.parametrize("k", [2, 3, 5, 10])
def test_simplex_projection_optimality_condition(k: int) -> None:
    # P is the Euclidean projection of x onto the simplex exactly when
    # (x - P) . (v - P) <= 0 for every vertex v, because the condition is linear in v.
    points = np.random.default_rng(k).normal(0.0, 3.0, size=(500, k))
    projected = project_simplex(points)
    residual = points - projected
    for vertex in np.eye(k):
        inner = np.sum(residual * (vertex - projected), axis=1)
        assert np.all(inner <= 1e-9)


def test_simplex_projection_matches_grid_search() -> None:
    steps = 200
    grid = np.array(
        [(a / steps, b / steps, (steps - a - b) / steps) for a in range(steps + 1) for b in range(steps + 1 - a)]
    )
    points = np.random.default_rng(0).normal(0.3, 1.0, size=(40, 3))
    projected = project_simplex(points)
    for point, result in zip(points, projected):
        nearest = grid[np.argmin(np.sum((grid - point) ** 2, axis=1))]
        # The grid spacing is 1 / 200, so the grid minimiser lies within about a spacing.
        assert np.max(np.abs(nearest - result)) <= 1.5 / steps
        assert np.sum((result - point) ** 2) <= np.sum((nearest - point) ** 2) + 1e-12


def test_simplex_projection_k2_closed_form() -> None:
    # On K = 2 the projection of (x, y) is (t, 1 - t) with t = clip((1 + x - y) / 2, 0, 1).
    points = np.random.default_rng(1).normal(0.0, 2.0, size=(300, 2))
    t = np.clip((1 + points[:, 0] - points[:, 1]) / 2, 0.0, 1.0)
    np.testing.assert_allclose(project_simplex(points), np.stack([t, 1 - t], axis=1), atol=1e-12)


def test_simplex_projection_batched_shape() -> None:
    points = np.random.default_rng(2).normal(size=(4, 3, 5))
    projected = project_simplex(points)
    assert projected.shape == (4, 3, 5)
    np.testing.assert_allclose(projected[2, 1], project_simplex(points[2, 1][None])[0])


def test_cube_projection_clips() -> None:
    np.testing.assert_array_equal(project_cube(np.array([-0.5, 0.3, 1.7])), [0.0, 0.3, 1.0])


def test_project_unknown_space_raises() -> None:
    with pytest.raises(ValueError, match="sphere"):
        project(np.zeros(3), "sphere")


# ---------------------------------------------------------------------------
# Actions and reports
# ---------------------------------------------------------------------------


def test_cube_reports_projected_in_step() -> None:
    game = build_game(preset="paper", horizon=3)
    game.reset(0)
    result = game.step(np.array([[[1.7], [-0.3], [0.4], [2.0], [-1.0]]]))
    np.testing.assert_array_equal(result.reports[0, :, 0], [1.0, 0.0, 0.4, 1.0, 0.0])


def test_simplex_reports_projected_in_step() -> None:
    game = build_game(preset="paper", feedback_dim=3, space="simplex", horizon=3)
    game.reset(0)
    reports = np.tile([2.0, 0.0, 0.0], (1, 5, 1))
    result = game.step(reports)
    np.testing.assert_allclose(result.reports, np.tile([1.0, 0.0, 0.0], (1, 5, 1)))


def test_report_mode_action_is_report() -> None:
    game = build_game(preset="paper", horizon=3)
    game.reset(0)
    actions = np.array([[[0.1], [0.2], [1.3], [0.4], [-0.5]]])
    np.testing.assert_allclose(game.actions_to_reports(actions)[0, :, 0], [0.1, 0.2, 1.0, 0.4, 0.0])


def test_shift_zero_action_is_truthful() -> None:
    game = build_game(preset="diverse", action_mode="shift", horizon=3, batch_size=4)
    game.reset(0)
    reports = game.actions_to_reports(np.zeros((4, 5, 1)))
    np.testing.assert_array_equal(reports, game.preferences)


def test_shift_zero_action_truthful_on_simplex() -> None:
    game = build_game(preset="paper", action_mode="shift", feedback_dim=3, space="simplex", horizon=3)
    game.reset(0)
    reports = game.actions_to_reports(np.zeros((1, 5, 3)))
    np.testing.assert_allclose(reports, game.preferences, atol=1e-12)


def test_shift_action_adds_to_preference() -> None:
    game = build_game(preset="paper", action_mode="shift", horizon=3)
    game.reset(0)
    preferences = game.preferences
    reports = game.actions_to_reports(np.full((1, 5, 1), 0.05))
    np.testing.assert_allclose(reports, np.clip(preferences + 0.05, 0.0, 1.0))


def test_shift_action_clipped_to_unit_box() -> None:
    game = build_game(preset="paper", action_mode="shift", horizon=3)
    game.reset(0)
    reports = game.actions_to_reports(np.full((1, 5, 1), -7.0))
    np.testing.assert_array_equal(reports, np.zeros((1, 5, 1)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_action_raises(bad: float) -> None:
    game = build_game(preset="paper", horizon=3)
    game.reset(0)
    actions = np.full((1, 5, 1), 0.5)
    actions[0, 2, 0] = bad
    with pytest.raises(ValueError) as error:
        game.actions_to_reports(actions)
    assert "finite" in str(error.value)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nonfinite_report_raises_in_step(bad: float) -> None:
    game = build_game(preset="paper", horizon=3)
    game.reset(0)
    reports = np.full((1, 5, 1), 0.5)
    reports[0, 0, 0] = bad
    with pytest.raises(ValueError, match="finite"):
        game.step(reports)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_action_raises_in_env(bad: float) -> None:
    env = parallel_env(preset="paper", horizon=3)
    env.reset(seed=0)
    actions = {agent: np.array([0.5], dtype=np.float32) for agent in env.agents}
    actions["labeler_3"] = np.array([bad], dtype=np.float32)
    with pytest.raises(ValueError) as error:
        env.step(actions)
    assert "finite" in str(error.value)
    assert "labeler_3" in str(error.value)


def test_action_wrong_shape_raises() -> None:
    game = build_game(preset="paper", horizon=3)
    game.reset(0)
    with pytest.raises(ValueError, match="shape"):
        game.actions_to_reports(np.zeros((1, 4, 1)))


def test_step_after_episode_end_raises() -> None:
    game = build_game(preset="paper", horizon=2)
    play_truthful(game, 0)
    with pytest.raises(RuntimeError, match="reset"):
        game.step(np.full((1, 5, 1), 0.5))


def test_step_before_reset_raises() -> None:
    game = build_game(preset="paper", horizon=2)
    with pytest.raises(RuntimeError, match="reset"):
        game.step(np.full((1, 5, 1), 0.5))


# ---------------------------------------------------------------------------
# Regret
# ---------------------------------------------------------------------------


def tiny_table() -> LabelTable:
    # Item a: truth 1, labels (1, 0.5, 0). Item b: truth 0, labels (0, 0), worker C absent.
    return LabelTable(
        name="tiny",
        items=("a", "b"),
        workers=("A", "B", "C"),
        labels=np.array([[1.0, 0.5, 0.0], [0.0, 0.0, np.nan]]),
        truth=np.array([1.0, 0.0]),
    )


def test_regret_hand_example() -> None:
    game = StrategicFeedbackGame(preset("paper", horizon=2), source=ReplaySource(tiny_table()), mechanism=Mean())
    play_truthful(game, 0)
    # Item a: aggregate 0.5, platform loss 0.25, labeler losses (0, 0.25, 1).
    # Item b: aggregate 0 from A and B, platform loss 0. C did not label it.
    # Excess losses summed: A 0.25, B 0, C -0.75, so the regret is 0.25.
    np.testing.assert_allclose(game.cumulative_platform_loss, [0.25])
    np.testing.assert_allclose(game.cumulative_excess_loss, [[0.25, 0.0, -0.75]])
    np.testing.assert_allclose(game.regret(), [0.25])


def test_regret_hand_example_any_order() -> None:
    for seed in range(4):
        game = StrategicFeedbackGame(preset("paper", horizon=2), source=ReplaySource(tiny_table()), mechanism=Mean())
        play_truthful(game, seed)
        np.testing.assert_allclose(game.regret(), [0.25])


def test_regret_matches_history_formula() -> None:
    game = build_game(preset="paper", mechanism="mean", horizon=60, batch_size=3, record_history=True)
    play_truthful(game, 5)
    history = game.history
    truth = history.stacked("truth")
    platform = accuracy_loss(history.stacked("aggregate"), truth, "quadratic")
    labelers = accuracy_loss(history.stacked("preferences"), truth[:, :, None, :], "quadratic")
    expected = np.max(np.sum(platform[:, :, None] - labelers, axis=0), axis=1)
    np.testing.assert_allclose(game.regret(), expected, atol=1e-12)
    np.testing.assert_allclose(history.cumulative_regret()[-1], expected, atol=1e-12)


def test_unrevealed_truth_keeps_weights() -> None:
    game = build_game(preset="paper", horizon=20, batch_size=2, reveal_prob=0.0)
    play_truthful(game, 0)
    np.testing.assert_array_equal(game.weights, np.full((2, 5), 0.2))


def test_platform_loss_is_aggregate_loss() -> None:
    game = build_game(preset="paper", mechanism="median", horizon=3)
    game.reset(0)
    result = game.step(game.preferences.copy())
    expected = np.mean((result.aggregate - result.truth) ** 2, axis=1)
    np.testing.assert_allclose(result.platform_loss, expected)


# ---------------------------------------------------------------------------
# Common random numbers
# ---------------------------------------------------------------------------


def play_recorded(exaggerate: bool, seed: int) -> StrategicFeedbackGame:
    game = build_game(
        preset="diverse",
        mechanism="online_weighted",
        horizon=80,
        batch_size=4,
        reveal_prob=0.5,
        feedback_per_slot=3,
        record_history=True,
    )
    game.reset(seed)
    while not game.done:
        reports = game.preferences.copy()
        if exaggerate:
            reports = np.clip(0.5 + 3.0 * (reports - 0.5), 0.0, 1.0)
        game.step(reports)
    return game


def test_same_seed_same_draws_whatever_reports() -> None:
    truthful = play_recorded(exaggerate=False, seed=11)
    exaggerating = play_recorded(exaggerate=True, seed=11)
    for record in ("truth", "preferences", "asked"):
        np.testing.assert_array_equal(truthful.history.stacked(record), exaggerating.history.stacked(record))


def test_exaggeration_changes_reports() -> None:
    truthful = play_recorded(exaggerate=False, seed=11)
    exaggerating = play_recorded(exaggerate=True, seed=11)
    assert not np.array_equal(truthful.history.stacked("reports"), exaggerating.history.stacked("reports"))


def test_different_seed_different_draws() -> None:
    first = play_recorded(exaggerate=False, seed=11)
    second = play_recorded(exaggerate=False, seed=12)
    assert not np.array_equal(first.history.stacked("truth"), second.history.stacked("truth"))


def test_revelation_sequence_ignores_reports() -> None:
    outcomes = []
    for factor in (1.0, 3.0):
        game = build_game(preset="paper", horizon=60, batch_size=8, reveal_prob=0.5)
        game.reset(21)
        revealed = []
        while not game.done:
            reports = np.clip(0.5 + factor * (game.preferences - 0.5), 0.0, 1.0)
            revealed.append(game.step(reports).revealed)
        outcomes.append(np.stack(revealed))
    np.testing.assert_array_equal(outcomes[0], outcomes[1])
    assert 0 < outcomes[0].mean() < 1


# ---------------------------------------------------------------------------
# Participation
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("m", [1, 2, 4])
def test_feedback_per_slot_asks_exactly_m(m: int) -> None:
    game = build_game(preset="paper", horizon=50, batch_size=16, feedback_per_slot=m)
    game.reset(0)
    while not game.done:
        assert np.all(game.asked.sum(axis=1) == m)
        game.step(game.preferences.copy())


def test_feedback_per_slot_uniform_over_labelers() -> None:
    game = build_game(preset="paper", horizon=200, batch_size=32, feedback_per_slot=2, record_history=True)
    play_truthful(game, 0)
    frequency = game.history.stacked("asked").mean(axis=(0, 1))
    # Each labeler has 6400 draws, so the standard error of each frequency is about 0.006.
    np.testing.assert_allclose(frequency, 0.4, atol=0.03)


def test_feedback_per_slot_ask_prob() -> None:
    game = build_game(preset="paper", horizon=5, feedback_per_slot=3)
    game.reset(0)
    np.testing.assert_allclose(game.draw.ask_prob, np.full((1, 5), 0.6))


def test_all_asked_by_default() -> None:
    game = build_game(preset="paper", horizon=5, batch_size=3)
    game.reset(0)
    assert game.asked.all()
    assert game.draw.ask_prob is None


def test_unasked_reports_do_not_move_aggregate() -> None:
    aggregates = []
    for outlier in (0.0, 1.0):
        game = build_game(preset="paper", mechanism="mean", horizon=5, feedback_per_slot=2)
        game.reset(4)
        reports = game.preferences.copy()
        reports[~game.asked] = outlier
        aggregates.append(game.step(reports).aggregate)
    np.testing.assert_array_equal(aggregates[0], aggregates[1])


# ---------------------------------------------------------------------------
# Data set replay
# ---------------------------------------------------------------------------


def test_replay_episode_ends_at_data_length(snow_dir: Path) -> None:
    source = ReplaySource(load_snow_rte(snow_dir))
    game = build_game(preset="paper", source=source, horizon=1000)
    assert game.horizon == 280

    play_truthful(game, 0)
    assert game.t == 280
    assert game.done


def test_replay_env_ends_at_data_length(snow_dir: Path) -> None:
    env = parallel_env(source=ReplaySource(load_snow_rte(snow_dir)), horizon=1000)
    env.reset(seed=0)
    slots = 0
    while env.agents:
        actions = {agent: np.array([0.5], dtype=np.float32) for agent in env.agents}
        _, _, terminations, truncations, _ = env.step(actions)
        slots += 1
    assert slots == 280
    assert all(terminations.values())
    assert not any(truncations.values())


def test_replay_shorter_horizon_wins(snow_dir: Path) -> None:
    game = build_game(preset="paper", source=ReplaySource(load_snow_rte(snow_dir)), horizon=100)
    assert game.horizon == 100


def test_replay_visits_each_item_once(snow_dir: Path) -> None:
    table = load_snow_rte(snow_dir)
    game = build_game(preset="paper", source=ReplaySource(table), record_history=True)
    play_truthful(game, 3)
    truths = game.history.stacked("truth")[:, 0, 0]
    assert sorted(truths.tolist()) == sorted(table.truth.tolist())


def test_replay_sets_labelers_from_data(snow_dir: Path) -> None:
    game = build_game(preset="paper", source=ReplaySource(load_snow_rte(snow_dir)))
    assert game.n_labelers == 5
    assert game.config.noise_sigma is None


def test_replay_type_feature_raises() -> None:
    features = ("preference", "type")
    with pytest.raises(ConfigError, match="type"):
        build_game(preset="paper", source=ReplaySource(tiny_table()), observation_features=features)


# ---------------------------------------------------------------------------
# Feedback spaces with K > 1
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("space", "mechanism"),
    list(itertools.product(["cube", "simplex"], ["mean", "median", "online_weighted"])),
)
def test_k3_game_stays_in_space(space: str, mechanism: str) -> None:
    config = preset("diverse", feedback_dim=3, space=space, mechanism=mechanism, horizon=40)
    game = build_game(config=config, batch_size=4, record_history=True)
    game.reset(9)
    rng = np.random.default_rng(9)
    while not game.done:
        # Raw reports fall well outside Y, so the projection is exercised.
        game.step(rng.normal(0.4, 0.8, size=(4, 5, 3)))
    for record in ("reports", "aggregate", "truth", "preferences"):
        assert_in_space(game.history.stacked(record), space)


def test_k3_simplex_observation_in_bounds() -> None:
    game = build_game(preset="paper", feedback_dim=3, space="simplex", horizon=10, batch_size=2)
    game.reset(1)
    while not game.done:
        observation = game.observe()
        assert observation.dtype == np.float32
        assert np.all(observation >= game.observation_low)
        assert np.all(observation <= game.observation_high)
        game.step(game.preferences.copy())


# ---------------------------------------------------------------------------
# Utilities
# ---------------------------------------------------------------------------


def test_influence_utility_formula() -> None:
    game = build_game(preset="paper", feedback_dim=2, horizon=3, batch_size=2)
    game.reset(0)
    preferences = game.preferences.copy()
    result = game.step(np.full((2, 5, 2), 0.5))
    expected = -np.mean((result.aggregate[:, None, :] - preferences) ** 2, axis=2)
    np.testing.assert_allclose(result.utilities, expected)


def test_reputation_utility_is_weight_change() -> None:
    game = build_game(preset="paper", utility="reputation", horizon=30, batch_size=3)
    game.reset(2)
    while not game.done:
        before = game.weights.copy()
        result = game.step(game.preferences.copy())
        np.testing.assert_allclose(result.utilities, game.weights - before, atol=1e-15)


def test_reputation_utility_nonzero() -> None:
    game = build_game(preset="paper", utility="reputation", horizon=3)
    game.reset(2)
    result = game.step(game.preferences.copy())
    assert np.any(result.utilities != 0)


def run_utilities(utility: str, seed: int = 8, **overrides) -> np.ndarray:
    game = build_game(preset="paper", utility=utility, horizon=25, batch_size=3, **overrides)
    game.reset(seed)
    rows = []
    while not game.done:
        reports = np.clip(game.preferences * 1.5 - 0.25, 0.0, 1.0)
        rows.append(game.step(reports).utilities)
    return np.stack(rows)


@pytest.mark.parametrize("mix", [0.0, 0.3, 1.0])
def test_mixed_utility_convex_combination(mix: float) -> None:
    influence = run_utilities("influence")
    reputation = run_utilities("reputation")
    mixed = run_utilities("mixed", utility_mix=mix)
    np.testing.assert_allclose(mixed, mix * influence + (1 - mix) * reputation, atol=1e-15)


def test_discounted_utility_sum() -> None:
    game = build_game(preset="paper", horizon=20, discount=0.9)
    game.reset(3)
    rows = []
    while not game.done:
        rows.append(game.step(game.preferences.copy()).utilities)
    discounts = 0.9 ** np.arange(20)
    expected = np.einsum("t,tbn->bn", discounts, np.stack(rows))
    np.testing.assert_allclose(game.discounted_utility, expected)


def test_utilities_within_bounds() -> None:
    for utility in ("influence", "reputation", "mixed"):
        utilities = run_utilities(utility, mechanism_params={"eta": 1.0})
        assert np.all(utilities >= -1.0)
        assert np.all(utilities <= 1.0)


# ---------------------------------------------------------------------------
# Observations
# ---------------------------------------------------------------------------


def test_observation_time_left_counts_down() -> None:
    game = build_game(preset="paper", horizon=4, observation_features=("time_left",))
    game.reset(0)
    seen = []
    while not game.done:
        seen.append(float(game.observe()[0, 0, 0]))
        game.step(game.preferences.copy())
    assert seen == [1.0, 0.75, 0.5, 0.25]


def test_observation_previous_aggregate_and_truth() -> None:
    features = ("previous_aggregate", "previous_truth", "revealed")
    game = build_game(preset="paper", horizon=4, observation_features=features)
    game.reset(0)
    np.testing.assert_allclose(game.observe()[0, 0], [0.5, 0.5, 0.0])

    result = game.step(game.preferences.copy())
    expected = [result.aggregate[0, 0], result.truth[0, 0], 1.0]
    np.testing.assert_allclose(game.observe()[0, 2], expected, atol=1e-6)


def test_observation_hides_truth_when_unrevealed() -> None:
    game = build_game(preset="paper", horizon=4, reveal_prob=0.0, observation_features=("previous_truth", "revealed"))
    game.reset(0)
    game.step(game.preferences.copy())
    np.testing.assert_allclose(game.observe()[0, 0], [0.5, 0.0])


def test_observation_preference_is_own() -> None:
    game = build_game(preset="paper", horizon=4, batch_size=2, observation_features=("preference",))
    game.reset(0)
    np.testing.assert_allclose(game.observe(), game.preferences.astype(np.float32))


def test_observation_type_feature() -> None:
    features = ("preference", "type")
    game = build_game(preset="diverse", horizon=4, observation_features=features)
    game.reset(0)
    observation = game.observe()[0]
    np.testing.assert_allclose(observation[:, 1], [0.0, 0.1, -0.1, 0.2, -0.2], atol=1e-6)
    np.testing.assert_allclose(observation[:, 2], [0.05, 0.10, 0.15, 0.20, 0.25], atol=1e-6)


# ---------------------------------------------------------------------------
# Misreport measures
# ---------------------------------------------------------------------------


def test_truthful_play_has_zero_misreport() -> None:
    game = build_game(preset="paper", horizon=30, batch_size=2)
    play_truthful(game, 0)
    np.testing.assert_array_equal(game.misreport(), np.zeros((2, 5)))
    np.testing.assert_array_equal(game.exaggeration(), np.zeros((2, 5)))


def test_exaggeration_index_hand_example() -> None:
    table = LabelTable(
        name="one item", items=("a",), workers=("A", "B", "C"), labels=np.array([[0.2, 0.5, 0.8]]), truth=np.array([0.5])
    )
    game = StrategicFeedbackGame(preset("paper", horizon=1), source=ReplaySource(table), mechanism=Mean())
    game.reset(0)
    game.step(np.array([[[0.2], [0.5], [1.0]]]))
    # C moves 0.2 up, and p_C - a = 0.8 - 1.7 / 3 > 0, so the whole shift points away from a.
    assert game.misreport()[0, 2] == pytest.approx(0.2)
    assert game.exaggeration()[0, 2] == pytest.approx(0.2)
    assert game.exaggeration()[0, 0] == 0.0


def test_moderation_index_negative() -> None:
    table = LabelTable(
        name="one item", items=("a",), workers=("A", "B", "C"), labels=np.array([[0.2, 0.5, 0.8]]), truth=np.array([0.5])
    )
    game = StrategicFeedbackGame(preset("paper", horizon=1), source=ReplaySource(table), mechanism=Mean())
    game.reset(0)
    game.step(np.array([[[0.2], [0.5], [0.6]]]))
    assert game.exaggeration()[0, 2] == pytest.approx(-0.2)
