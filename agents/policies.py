"""Fixed labeler policies, as vectorised callables ``policy(game, labelers) -> reports``.

Each returns the reports (B, len(labelers), K) of the given labelers in the current slot of
a batched :class:`~strategic_env.game.StrategicFeedbackGame`. The closed-form myopic best
response lives in :mod:`agents.best_response`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from strategic_env.game import StrategicFeedbackGame
from strategic_env.one_learner import truthful_reports
from strategic_env.spaces import center, project

__all__ = ["Exaggerate", "LearnedPolicy", "truthful_reports"]


class Exaggerate:
    """Push the preference away from a reference point: r = P_Y(ref + factor (p - ref)).

    Args:
        factor: 1 is truthful; above 1 exaggerates, below 1 moderates.
        reference: ``"center"`` (the centre of the feedback space) or
            ``"previous_aggregate"`` (the last slot's aggregate).
    """

    def __init__(self, factor: float, reference: str = "center") -> None:
        if not np.isfinite(factor) or factor < 0:
            raise ValueError(f"invalid factor={factor!r}: expected a finite number >= 0")
        if reference not in ("center", "previous_aggregate"):
            raise ValueError(f"invalid reference={reference!r}: expected 'center' or 'previous_aggregate'")
        self.factor = float(factor)
        self.reference = reference

    def __call__(self, game: StrategicFeedbackGame, labelers: np.ndarray) -> np.ndarray:
        preferences = game.preferences[:, labelers]
        if self.reference == "center":
            ref = center(game.feedback_dim, game.config.space)[None, None, :]
        else:
            ref = game.previous_aggregate[:, None, :]
        return project(ref + self.factor * (preferences - ref), game.config.space)


class LearnedPolicy:
    """A trained Stable-Baselines3 model used as a fixed policy (deterministic by default).

    The model maps a labeler's observation to its action, which the game turns into a
    report by the configured action mode.
    """

    def __init__(self, model: Any, deterministic: bool = True) -> None:
        self.model = model
        self.deterministic = deterministic

    def __call__(self, game: StrategicFeedbackGame, labelers: np.ndarray) -> np.ndarray:
        labelers = np.asarray(labelers)
        observations = game.observe()[:, labelers]
        b, n, f = observations.shape
        actions, _ = self.model.predict(observations.reshape(b * n, f), deterministic=self.deterministic)
        return game.actions_to_reports(np.asarray(actions).reshape(b, n, game.feedback_dim), labelers)
