"""Tests of the closed-form myopic best response and its models of the others' preferences."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agents.best_response import (
    EmpiricalConditionalMeans,
    MyopicBestResponse,
    SyntheticConditionalMeans,
    expected_clipped_normal,
    myopic_best_response_for,
)
from agents.evaluation import DeviationResult, evaluate_deviation
from agents.policies import Exaggerate, truthful_reports
from strategic_env.config import preset
from strategic_env.datasets import load_pandalm
from strategic_env.pettingzoo_env import build_game
from strategic_env.preferences import ReplaySource, SyntheticSource

DEVIATION_SEED = 0


@pytest.fixture(scope="module")
def paper_means() -> SyntheticConditionalMeans:
    return SyntheticConditionalMeans(preset("paper"))


@pytest.fixture(scope="module")
def paper_preferences() -> np.ndarray:
    """Draw the preferences (S, N) of one million synthetic slots of the ``paper`` preset."""
    source = SyntheticSource(preset("paper"))
    source.reset(1_000_000, np.random.default_rng(123))
    return source.draw(0).preferences[:, :, 0]


def make_mean_game():
    return build_game(preset="paper", mechanism="mean", batch_size=16, horizon=200)


@pytest.fixture(scope="module")
def best_response_deviations(paper_means: SyntheticConditionalMeans) -> dict[int, DeviationResult]:
    policy = MyopicBestResponse(paper_means)
    return {labeler: evaluate_deviation(make_mean_game, labeler, policy, seed=DEVIATION_SEED) for labeler in (0, 4)}


def standard_error(values: np.ndarray) -> float:
    return float(np.std(values, ddof=1) / np.sqrt(len(values)))


# ---------------------------------------------------------------------------
# expected_clipped_normal
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("sigma", [0.05, 0.25, 0.8])
def test_expected_clipped_normal_monte_carlo(sigma: float) -> None:
    means = np.array([-0.6, -0.05, 0.0, 0.3, 0.5, 0.97, 1.0, 1.4])
    samples = np.random.default_rng(5).normal(means, sigma, size=(400_000, len(means)))
    clipped = np.clip(samples, 0.0, 1.0)
    estimate = clipped.mean(axis=0)
    error = clipped.std(axis=0) / np.sqrt(len(clipped))
    exact = expected_clipped_normal(means, sigma)
    assert np.all(np.abs(exact - estimate) <= 4 * error + 1e-12)


def test_expected_clipped_normal_zero_sigma() -> None:
    means = np.array([-0.2, 0.4, 1.3])
    np.testing.assert_array_equal(expected_clipped_normal(means, 0.0), [0.0, 0.4, 1.0])


def test_expected_clipped_normal_inside_unit_interval() -> None:
    values = expected_clipped_normal(np.linspace(-3.0, 4.0, 71), 0.5)
    assert np.all(values >= 0.0)
    assert np.all(values <= 1.0)
    assert np.all(np.diff(values) > 0)


def test_expected_clipped_normal_symmetry() -> None:
    means = np.linspace(-1.0, 2.0, 31)
    np.testing.assert_allclose(expected_clipped_normal(means, 0.3), 1 - expected_clipped_normal(1 - means, 0.3), atol=1e-12)


# ---------------------------------------------------------------------------
# SyntheticConditionalMeans
# ---------------------------------------------------------------------------


def test_conditional_means_shape(paper_means: SyntheticConditionalMeans) -> None:
    values = paper_means(2, np.array([[0.1], [0.5], [0.9]]))
    assert values.shape == (3, 5, 1)


def test_conditional_means_increasing(paper_means: SyntheticConditionalMeans) -> None:
    grid = np.linspace(0.0, 1.0, 101)[:, None]
    for i in range(5):
        values = paper_means(i, grid)[:, :, 0]
        for j in range(5):
            if j != i:
                assert np.all(np.diff(values[:, j]) > 0), f"E[p_{j} | p_{i}] is not increasing"


def test_conditional_means_in_unit_interval(paper_means: SyntheticConditionalMeans) -> None:
    grid = np.linspace(0.0, 1.0, 101)[:, None]
    for i in range(5):
        values = paper_means(i, grid)
        assert np.all(values >= 0.0)
        assert np.all(values <= 1.0)


def test_conditional_means_symmetric_at_half(paper_means: SyntheticConditionalMeans) -> None:
    # The Beta(2, 2) prior and unbiased noise are symmetric about 0.5.
    for i in range(5):
        values = paper_means(i, np.array([[0.5]]))[0, :, 0]
        np.testing.assert_allclose(np.delete(values, i), 0.5, atol=0.002)


@pytest.mark.parametrize("labeler", [0, 2, 4])
@pytest.mark.parametrize("center", [0.2, 0.5, 0.8])
def test_conditional_means_match_monte_carlo(
    paper_means: SyntheticConditionalMeans, paper_preferences: np.ndarray, labeler: int, center: float
) -> None:
    in_bin = np.abs(paper_preferences[:, labeler] - center) < 0.005
    others = paper_preferences[in_bin]
    estimate = others.mean(axis=0)
    error = others.std(axis=0) / np.sqrt(len(others))
    exact = paper_means(labeler, np.array([[center]]))[0, :, 0]
    for j in range(5):
        if j != labeler:
            # The bin is 0.01 wide and E[p_j | p_i] is nearly linear across it, so binning shifts
    # the estimate by far less than 0.002.
            assert abs(exact[j] - estimate[j]) <= 4 * error[j] + 0.002, f"labeler {j}"


@pytest.mark.parametrize("edge", [0.0, 1.0])
def test_conditional_means_clipped_edges(
    paper_means: SyntheticConditionalMeans, paper_preferences: np.ndarray, edge: float
) -> None:
    # The noisiest labeler's preference is clipped to 0 in about 7 % of slots, and to 1 in as
    # many (measured on these draws).
    at_edge = paper_preferences[:, 4] == edge
    others = paper_preferences[at_edge]
    estimate = others.mean(axis=0)
    error = others.std(axis=0) / np.sqrt(len(others))
    exact = paper_means(4, np.array([[edge]]))[0, :, 0]
    assert at_edge.sum() > 10_000
    for j in range(4):
        assert abs(exact[j] - estimate[j]) <= 4 * error[j] + 1e-4, f"labeler {j}"


def test_conditional_means_with_bias() -> None:
    means = SyntheticConditionalMeans(preset("diverse"))
    values = means(0, np.array([[0.5]]))[0, :, 0]
    # Labeler 3 is biased by +0.2 and labeler 4 by -0.2, both before clipping to [0, 1].
    assert values[3] > values[1] > values[2] > values[4]


def test_conditional_means_reject_simplex() -> None:
    with pytest.raises(ValueError, match="cube"):
        SyntheticConditionalMeans(preset("paper", feedback_dim=3, space="simplex"))


def test_conditional_means_reject_drawn_types() -> None:
    with pytest.raises(ValueError, match="fixed"):
        SyntheticConditionalMeans(preset("paper", noise_sigma=None))


# ---------------------------------------------------------------------------
# Myopic best response
# ---------------------------------------------------------------------------


def test_truthful_deviation_gain_zero() -> None:
    result = evaluate_deviation(make_mean_game, 2, truthful_reports, seed=DEVIATION_SEED)
    np.testing.assert_array_equal(result.gain, np.zeros(16))


def test_best_response_gain_positive(best_response_deviations: dict[int, DeviationResult]) -> None:
    gain = best_response_deviations[4].gain
    assert gain.mean() - 3 * standard_error(gain) > 0


def test_best_response_gain_noisiest_largest(best_response_deviations: dict[int, DeviationResult]) -> None:
    assert best_response_deviations[4].gain.mean() > best_response_deviations[0].gain.mean()


def test_best_response_exaggerates(best_response_deviations: dict[int, DeviationResult]) -> None:
    result = best_response_deviations[4]
    assert result.misreport.mean() > 0.05
    assert result.exaggeration.mean() > 0


def test_best_response_beats_exaggerate_1_5(best_response_deviations: dict[int, DeviationResult]) -> None:
    exaggerate = evaluate_deviation(make_mean_game, 4, Exaggerate(1.5), seed=DEVIATION_SEED)
    difference = best_response_deviations[4].gain - exaggerate.gain
    assert difference.mean() - 3 * standard_error(difference) > 0


def test_best_response_not_beaten_by_exaggerate_3(best_response_deviations: dict[int, DeviationResult]) -> None:
    # For labeler 4 the closed form is r = 0.5 + c (p - 0.5) with c between 2.97 and 3.02 on
    # [0.3, 0.7], so factor 3 is almost the best response itself and only sampling noise
    # separates the two gains.
    exaggerate = evaluate_deviation(make_mean_game, 4, Exaggerate(3.0), seed=DEVIATION_SEED)
    difference = best_response_deviations[4].gain - exaggerate.gain
    assert difference.mean() >= -3 * standard_error(difference)


def test_best_response_beats_exaggerate_3_labeler_0(best_response_deviations: dict[int, DeviationResult]) -> None:
    exaggerate = evaluate_deviation(make_mean_game, 0, Exaggerate(3.0), seed=DEVIATION_SEED)
    difference = best_response_deviations[0].gain - exaggerate.gain
    assert difference.mean() - 3 * standard_error(difference) > 0


def test_best_response_truthful_without_influence(paper_means: SyntheticConditionalMeans) -> None:
    game = build_game(preset="paper", mechanism="mean", horizon=5, batch_size=4, feedback_per_slot=2)
    game.reset(0)
    reports = MyopicBestResponse(paper_means)(game, np.arange(5))
    unasked = ~game.asked
    np.testing.assert_array_equal(reports[unasked], game.preferences[unasked])


def test_best_response_reports_in_cube(paper_means: SyntheticConditionalMeans) -> None:
    game = build_game(preset="paper", mechanism="online_weighted", horizon=30, batch_size=8)
    policy = MyopicBestResponse(paper_means)
    game.reset(1)
    while not game.done:
        reports = game.preferences.copy()
        reports[:, [4]] = policy(game, np.array([4]))
        assert np.all((reports >= 0.0) & (reports <= 1.0))
        game.step(reports)


def test_best_response_median_raises(paper_means: SyntheticConditionalMeans) -> None:
    def make_median_game():
        return build_game(preset="paper", mechanism="median", batch_size=4, horizon=20)

    with pytest.raises(ValueError) as error:
        evaluate_deviation(make_median_game, 4, MyopicBestResponse(paper_means), seed=0)
    assert "linear" in str(error.value)
    assert "median" in str(error.value)


def test_best_response_for_synthetic_game() -> None:
    game = build_game(preset="paper", mechanism="mean", horizon=5)
    policy = myopic_best_response_for(game)
    assert isinstance(policy.conditional_means, SyntheticConditionalMeans)


# ---------------------------------------------------------------------------
# EmpiricalConditionalMeans on PandaLM
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pandalm_means(pandalm_dir: Path) -> EmpiricalConditionalMeans:
    return EmpiricalConditionalMeans(load_pandalm(pandalm_dir))


def test_empirical_means_in_unit_interval(pandalm_means: EmpiricalConditionalMeans) -> None:
    preferences = np.array([[0.0], [0.5], [1.0]])
    for labeler in range(5):
        values = pandalm_means(labeler, preferences)
        assert values.shape == (3, 5, 1)
        assert np.all(np.isfinite(values))
        assert np.all(values >= 0.0)
        assert np.all(values <= 1.0)


def test_empirical_means_follow_own_label(pandalm_means: EmpiricalConditionalMeans) -> None:
    # The human annotators agree on most items, so another human's mean label rises with one's own.
    values = pandalm_means(0, np.array([[0.0], [1.0]]))[:, 1, 0]
    assert values[1] > values[0]


def test_empirical_means_discrete_bins(pandalm_means: EmpiricalConditionalMeans) -> None:
    assert pandalm_means.discrete
    np.testing.assert_array_equal(pandalm_means.edges, [0.0, 0.5, 1.0])


def test_best_response_on_pandalm_replay(pandalm_dir: Path) -> None:
    def make_replay_game():
        return build_game(source=ReplaySource(load_pandalm(pandalm_dir)), mechanism="mean", batch_size=4, horizon=100)

    policy = myopic_best_response_for(make_replay_game())
    assert isinstance(policy.conditional_means, EmpiricalConditionalMeans)
    result = evaluate_deviation(make_replay_game, 4, policy, seed=0)
    assert np.all(np.isfinite(result.gain))
    assert result.gain.mean() > 0
