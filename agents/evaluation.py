"""Evaluation of labeler policies on the batched game, with common random numbers.

A deviation is evaluated against truthful play on the same exogenous draws. Two games built
alike and reset with the same seed see the same truths, preferences, participation and
revelations whatever the labelers report. The per-episode difference of the deviator's
discounted utility is therefore a paired estimate of its deviation gain.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

import numpy as np

from strategic_env.game import StrategicFeedbackGame
from strategic_env.one_learner import LabelerPolicy


def play_episodes(
    game: StrategicFeedbackGame, policies: Mapping[int, LabelerPolicy], seed: int | np.random.SeedSequence | None
) -> StrategicFeedbackGame:
    """Play the game's B episodes to the end; labelers not in ``policies`` report truthfully."""
    game.reset(seed)
    groups = list(policies.items())
    while not game.done:
        reports = game.preferences.copy()
        for labeler, policy in groups:
            reports[:, [labeler]] = policy(game, np.array([labeler]))
        game.step(reports)
    return game


@dataclasses.dataclass(frozen=True)
class DeviationResult:
    """Per-episode outcome of one labeler's deviation against truthful play (arrays (B,))."""

    labeler: int
    gain: np.ndarray  # discounted utility with the deviation minus without it
    utility_truthful: np.ndarray
    utility_deviation: np.ndarray
    misreport: np.ndarray  # mean ||r - p|| of the deviator
    exaggeration: np.ndarray  # mean signed shift of the deviator along (p - a)
    regret_truthful: np.ndarray
    regret_deviation: np.ndarray
    final_weight_truthful: np.ndarray
    final_weight_deviation: np.ndarray


def evaluate_deviation(
    make_game: Callable[[], StrategicFeedbackGame],
    labeler: int,
    deviator: LabelerPolicy,
    seed: int,
    others: LabelerPolicy | None = None,
) -> DeviationResult:
    """Measure ``labeler``'s gain from playing ``deviator`` instead of reporting truthfully.

    ``make_game`` builds a fresh game (B episodes); it is called twice and both games are
    reset with ``seed``. The other labelers follow ``others`` (truthful by default) in both.
    """
    truthful = make_game()
    deviating = make_game()
    other_policies: dict[int, LabelerPolicy] = {}
    if others is not None:
        other_policies = {j: others for j in range(truthful.n_labelers) if j != labeler}
    play_episodes(truthful, other_policies, seed)
    play_episodes(deviating, {**other_policies, labeler: deviator}, seed)
    utility_truthful = truthful.discounted_utility[:, labeler]
    utility_deviation = deviating.discounted_utility[:, labeler]
    return DeviationResult(
        labeler=labeler,
        gain=utility_deviation - utility_truthful,
        utility_truthful=utility_truthful,
        utility_deviation=utility_deviation,
        misreport=deviating.misreport()[:, labeler],
        exaggeration=deviating.exaggeration()[:, labeler],
        regret_truthful=truthful.regret(),
        regret_deviation=deviating.regret(),
        final_weight_truthful=truthful.weights[:, labeler].copy(),
        final_weight_deviation=deviating.weights[:, labeler].copy(),
    )
