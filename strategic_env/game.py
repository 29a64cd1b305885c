"""The batched game core: B independent strategic feedback games stepped together in numpy.

One slot of one game: every labeler i holds a private preference p_{i,t} in the feedback
space Y; the asked labelers report r_{i,t}; the mechanism aggregates the reports into a_t;
the truth y_t is revealed with probability rho, and only then does the mechanism update its
state. Labeler i receives the utility of the slot (influence -||a_t - p_{i,t}||^2 / K by
default); its objective is the sum over the episode discounted by gamma. The episode ends
after the horizon T (or the data set's length, if shorter).

Arrays are laid out (games B, labelers N, coordinates K). The PettingZoo environment and the
Gymnasium one-learner environment are thin views on :class:`StrategicFeedbackGame`; the
regret and stress-test studies drive it directly.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np

from strategic_env.config import MAX_NOISE_SIGMA, ConfigError, GameConfig
from strategic_env.mechanisms import Mechanism, make
from strategic_env.preferences import PreferenceSource, ReplaySource, SlotDraw, SyntheticSource
from strategic_env.spaces import accuracy_loss, center, project

# Facts of the game, stated once for tests and documentation.
# Per-slot utility bounds: influence lies in [-1, 0], reputation (a change of weight) in [-1, 1].
UTILITY_BOUNDS = (-1.0, 1.0)
# Information: each labeler's type (bias, noise) and preference are private; weights,
# aggregates and revealed truths are public. Only the horizon bounds an episode.
PRIVATE_INFORMATION = ("type", "preference")


class StepResult(NamedTuple):
    """Outputs of one slot for a batch of B games."""

    utilities: np.ndarray | None  # (B, N) utility of each labeler; None without compute_utilities
    reports: np.ndarray  # (B, N, K) reports after projection
    aggregate: np.ndarray  # (B, K)
    truth: np.ndarray  # (B, K)
    revealed: np.ndarray  # (B,) bool
    platform_loss: np.ndarray  # (B,) loss of the aggregate against the truth
    done: bool  # the slot was the last of the episode


def config_for_source(config: GameConfig, source: PreferenceSource) -> GameConfig:
    """Return the configuration adapted to a data set's labelers (N, K = 1, no synthetic types)."""
    if isinstance(source, SyntheticSource):
        return config
    if config.n_labelers == source.n_labelers and config.feedback_dim == source.feedback_dim and config.noise_sigma is None:
        return config
    return config.replace(
        n_labelers=source.n_labelers,
        feedback_dim=source.feedback_dim,
        space="cube",
        noise_sigma=None,
        bias=None,
        feedback_per_slot=None,
    )


@dataclasses.dataclass
class History:
    """Per-slot records of an episode batch, kept when ``record_history=True``."""

    weights: list[np.ndarray] = dataclasses.field(default_factory=list)  # (B, N) before each slot
    reports: list[np.ndarray] = dataclasses.field(default_factory=list)
    preferences: list[np.ndarray] = dataclasses.field(default_factory=list)
    aggregate: list[np.ndarray] = dataclasses.field(default_factory=list)
    truth: list[np.ndarray] = dataclasses.field(default_factory=list)
    asked: list[np.ndarray] = dataclasses.field(default_factory=list)
    platform_loss: list[np.ndarray] = dataclasses.field(default_factory=list)
    excess_loss: list[np.ndarray] = dataclasses.field(default_factory=list)  # (B, N) L_t - l(p_i, y_t)

    def stacked(self, name: str) -> np.ndarray:
        """Return one record as an array with the slot axis first."""
        return np.stack(getattr(self, name))

    def cumulative_regret(self) -> np.ndarray:
        """Return the regret (T, B) after each slot against the best labeler so far."""
        return np.cumsum(self.stacked("excess_loss"), axis=0).max(axis=2)


class StrategicFeedbackGame:
    """B independent games of N labelers, stepped slot by slot.

    Args:
        config: the game's configuration.
        batch_size: number B of independent games.
        source: the preference source; by default synthetic preferences from ``config``.
            A data set's source sets N and K, overriding the configuration.
        mechanism: the aggregation rule; by default ``make(config.mechanism,
            **config.mechanism_params)``.
        record_history: keep per-slot records of the episode (memory O(T B N K)).
        compute_utilities: compute the labelers' utilities in every slot. Without them
            (``False``), ``step`` returns ``utilities=None`` and ``discounted_utility``
            stays 0, which speeds up studies that need only the platform's regret.
    """

    def __init__(
        self,
        config: GameConfig,
        *,
        batch_size: int = 1,
        source: PreferenceSource | None = None,
        mechanism: Mechanism | None = None,
        record_history: bool = False,
        compute_utilities: bool = True,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"invalid batch_size={batch_size!r}: expected an integer >= 1")
        self.source = source if source is not None else SyntheticSource(config)
        self.config = config_for_source(config, self.source)
        if "type" in self.config.observation_features and isinstance(self.source, ReplaySource):
            raise ConfigError(
                "invalid observation_features: 'type' is unknown under data set replay; remove it from the features"
            )
        self.mechanism = mechanism if mechanism is not None else make(self.config.mechanism, **self.config.mechanism_params)
        self.batch_size = batch_size
        self.n_labelers = self.source.n_labelers
        self.feedback_dim = self.source.feedback_dim
        self.labeler_names = tuple(self.source.labeler_names)
        self.horizon = self.source.episode_length(self.config.horizon)
        self.record_history = record_history
        self.compute_utilities = compute_utilities
        self._needs_weights_before = record_history or (compute_utilities and self.config.utility != "influence")
        self._center = center(self.feedback_dim, self.config.space)
        self.observation_low, self.observation_high = self._observation_bounds()
        self.t = 0
        self._draw: SlotDraw | None = None

    # ------------------------------------------------------------------ set-up

    def _observation_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        k = self.feedback_dim
        widths = {
            "preference": k,
            "weight": 1,
            "asked": 1,
            "time_left": 1,
            "previous_aggregate": k,
            "previous_truth": k,
            "revealed": 1,
        }
        low: list[float] = []
        high: list[float] = []
        for feature in self.config.observation_features:
            if feature == "type":
                low += [-1.0] * k + [0.0]
                high += [1.0] * k + [MAX_NOISE_SIGMA]
            else:
                low += [0.0] * widths[feature]
                high += [1.0] * widths[feature]
        return np.array(low, dtype=np.float32), np.array(high, dtype=np.float32)

    def reset(self, seed: int | np.random.SeedSequence | None = None) -> None:
        """Start B new episodes. The same seed gives the same exogenous draws.

        The seed feeds three independent streams: the preference source, the mechanism and
        the revelation of the truth. None of them depends on the labelers' reports.
        """
        sequence = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        source_seq, mechanism_seq, reveal_seq = sequence.spawn(3)
        b, n, k = self.batch_size, self.n_labelers, self.feedback_dim
        self.source.reset(b, np.random.default_rng(source_seq), horizon=self.horizon)
        self.mechanism.reset(
            n, self.horizon, np.random.default_rng(mechanism_seq), batch_size=b, feedback_dim=k, space=self.config.space
        )
        self._reveal_rng = np.random.default_rng(reveal_seq)
        self.t = 0
        self._draw = self.source.draw(0)
        self.previous_aggregate = np.broadcast_to(self._center, (b, k)).copy()
        self.previous_truth = self.previous_aggregate.copy()
        self.previous_revealed = np.zeros(b, dtype=bool)

        self._all_revealed = np.ones(b, dtype=bool)
        self._dense_preferences = self.source.always_has_preference
        self.discounted_utility = np.zeros((b, n))
        self.cumulative_platform_loss = np.zeros(b)
        self._cumulative_truthful_loss = np.zeros((b, n))
        self._cumulative_sparse_excess = np.zeros((b, n))
        self._cumulative_asked_excess = np.zeros((b, n))
        self.misreport_sum = np.zeros((b, n))
        self.exaggeration_sum = np.zeros((b, n))
        self._asked_count = np.zeros((b, n))
        self._all_asked_slots = 0
        self.history = History() if self.record_history else None

    # ------------------------------------------------------------------ state views

    @property
    def draw(self) -> SlotDraw:
        if self._draw is None:
            raise RuntimeError("the game has not been reset; call reset() first")
        return self._draw

    @property
    def preferences(self) -> np.ndarray:
        """Private preferences (B, N, K) of the current slot."""
        return self.draw.preferences

    @property
    def asked(self) -> np.ndarray:
        """Participation (B, N) of the current slot."""
        return self.draw.asked

    @property
    def weights(self) -> np.ndarray:
        """The mechanism's current weights (B, N)."""
        return self.mechanism.weights

    @property
    def done(self) -> bool:
        return self.t >= self.horizon

    def observe(self) -> np.ndarray:
        """Return every labeler's observation, float32 (B, N, F), features in configured order."""
        b, n = self.batch_size, self.n_labelers
        parts: list[np.ndarray] = []
        draw = self.draw
        for feature in self.config.observation_features:
            if feature == "preference":
                parts.append(draw.preferences)
            elif feature == "weight":
                parts.append(np.clip(self.mechanism.weights, 0.0, 1.0)[:, :, None])
            elif feature == "asked":
                parts.append(draw.asked[:, :, None].astype(np.float64))
            elif feature == "time_left":
                left = (self.horizon - self.t) / self.horizon
                parts.append(np.full((b, n, 1), left))
            elif feature == "previous_aggregate":
                parts.append(np.broadcast_to(self.previous_aggregate[:, None, :], (b, n, self.feedback_dim)))
            elif feature == "previous_truth":
                parts.append(np.broadcast_to(self.previous_truth[:, None, :], (b, n, self.feedback_dim)))
            elif feature == "revealed":
                parts.append(np.broadcast_to(self.previous_revealed[:, None, None], (b, n, 1)).astype(np.float64))
            elif feature == "type":
                bias, sigma = self.source.types  # type: ignore[misc]
                parts.append(np.clip(bias, -1.0, 1.0))
                parts.append(sigma[:, :, None])
        return np.concatenate(parts, axis=2).astype(np.float32)

    # ------------------------------------------------------------------ dynamics

    def actions_to_reports(self, actions: np.ndarray, labelers: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Turn actions (B, n, K) of the given labelers into reports in the feedback space.

        ``"report"`` mode projects the action onto Y; ``"shift"`` mode clips it to [-1, 1]^K
        and projects preference + action. Non-finite actions raise ValueError.
        """
        actions = np.asarray(actions, dtype=np.float64)
        preferences = self.preferences[:, labelers]
        if actions.shape != preferences.shape:
            raise ValueError(f"actions have shape {actions.shape}, expected {preferences.shape} (games, labelers, K)")
        if not np.all(np.isfinite(actions)):
            bad = actions[~np.isfinite(actions)][:3]
            raise ValueError(f"actions must be finite numbers; got {bad.tolist()} (NaN or infinite)")
        if self.config.action_mode == "report":
            return project(actions, self.config.space)
        return project(preferences + np.clip(actions, -1.0, 1.0), self.config.space)

    def step(self, reports: np.ndarray) -> StepResult:
        """Play one slot with the reports (B, N, K) of all labelers (projected onto Y first).

        Passing ``game.preferences`` itself (truthful play) skips the checks and the
        projection, which cannot change it.
        """
        if self.done:
            raise RuntimeError(f"the episode is over after {self.horizon} slots; call reset()")
        draw = self.draw
        config = self.config
        truthful = reports is draw.preferences
        if not truthful:
            reports = self._checked_reports(reports)

        weights_before = self.mechanism.weights.copy() if self._needs_weights_before else None
        aggregate = self.mechanism.aggregate(reports, draw.asked)
        if config.reveal_prob == 1.0:
            revealed = self._all_revealed
        else:
            revealed = self._reveal_rng.random(self.batch_size) < config.reveal_prob
        if config.reveal_prob == 1.0 or revealed.any():
            self.mechanism.update(reports, draw.asked, draw.truth, revealed=revealed, ask_prob=draw.ask_prob)

        utilities = None
        if self.compute_utilities:
            utilities = self._utilities(aggregate, draw, weights_before, self.mechanism.weights)
            self.discounted_utility += config.discount**self.t * utilities

        platform_loss = accuracy_loss(aggregate, draw.truth, config.loss)
        truthful_loss = accuracy_loss(draw.preferences, draw.truth[:, None, :], config.loss)
        self.cumulative_platform_loss += platform_loss
        if self._dense_preferences:
            self._cumulative_truthful_loss += truthful_loss
        else:
            self._cumulative_sparse_excess += np.where(draw.has_preference, platform_loss[:, None] - truthful_loss, 0.0)
        if draw.ask_prob is not None:
            self._cumulative_asked_excess += np.where(draw.asked, platform_loss[:, None] - truthful_loss, 0.0)
        if truthful:
            if draw.asked is draw.has_preference and self._dense_preferences:
                self._all_asked_slots += 1  # Everyone asked: count the slot once, not per labeler.
            else:
                self._asked_count += draw.asked
        else:
            self._accumulate_misreport(reports, aggregate, draw)

        if self.history is not None:
            self.history.weights.append(weights_before)
            self.history.reports.append(reports)
            self.history.preferences.append(draw.preferences)
            self.history.aggregate.append(aggregate)
            self.history.truth.append(draw.truth)
            self.history.asked.append(draw.asked)
            self.history.platform_loss.append(platform_loss)
            self.history.excess_loss.append(np.where(draw.has_preference, platform_loss[:, None] - truthful_loss, 0.0))

        self.previous_aggregate = aggregate
        if revealed is self._all_revealed:
            self.previous_truth = draw.truth
        else:
            self.previous_truth = np.where(revealed[:, None], draw.truth, self._center)
        self.previous_revealed = revealed
        self.t += 1
        if self.t < self.horizon:
            self._draw = self.source.draw(self.t)
        return StepResult(utilities, reports, aggregate, draw.truth, revealed, platform_loss, self.done)

    def _checked_reports(self, reports: np.ndarray) -> np.ndarray:
        reports = np.asarray(reports, dtype=np.float64)
        expected = (self.batch_size, self.n_labelers, self.feedback_dim)
        if reports.shape != expected:
            raise ValueError(f"reports have shape {reports.shape}, expected {expected} (games, labelers, K)")
        if not np.all(np.isfinite(reports)):
            raise ValueError("reports must be finite numbers; got NaN or infinite values")
        return project(reports, self.config.space)

    @property
    def cumulative_excess_loss(self) -> np.ndarray:
        """Return sum_t h_{i,t} (L_t - l(p_{i,t}, y_t)) so far, an array (B, N)."""
        if self._dense_preferences:
            return self.cumulative_platform_loss[:, None] - self._cumulative_truthful_loss
        return self._cumulative_sparse_excess.copy()

    def _utilities(
        self, aggregate: np.ndarray, draw: SlotDraw, weights_before: np.ndarray | None, weights_after: np.ndarray
    ) -> np.ndarray:
        config = self.config
        influence = np.zeros(weights_after.shape)
        reputation = np.zeros(weights_after.shape)
        if config.utility in ("influence", "mixed"):
            gap = aggregate[:, None, :] - draw.preferences
            influence = np.where(draw.has_preference, -np.mean(gap * gap, axis=2), 0.0)
        if config.utility in ("reputation", "mixed"):
            reputation = weights_after - weights_before
        if config.utility == "influence":
            return influence
        if config.utility == "reputation":
            return reputation
        return config.utility_mix * influence + (1.0 - config.utility_mix) * reputation

    def _accumulate_misreport(self, reports: np.ndarray, aggregate: np.ndarray, draw: SlotDraw) -> None:
        shift = reports - draw.preferences
        away = draw.preferences - aggregate[:, None, :]
        away_norm = np.linalg.norm(away, axis=2)
        signed = np.sum(shift * away, axis=2) / np.where(away_norm > 0, away_norm, 1.0)
        asked = draw.asked
        self.misreport_sum += np.where(asked, np.linalg.norm(shift, axis=2), 0.0)
        self.exaggeration_sum += np.where(asked & (away_norm > 0), signed, 0.0)
        self._asked_count += asked

    # ------------------------------------------------------------------ metrics

    def regret(self) -> np.ndarray:
        """Return the regret (B,) so far against the best labeler's truthful feedback in hindsight.

        R = max_i sum_t h_{i,t} (L_t - l(p_{i,t}, y_t)), where h marks the slots in which
        labeler i holds a preference (all slots for synthetic games), so under data set
        replay a labeler is compared only on the items it labelled (sleeping experts).
        """
        return self.cumulative_excess_loss.max(axis=1)

    @property
    def asked_count(self) -> np.ndarray:
        """Return how many slots each labeler has been asked in so far (B, N)."""
        return self._asked_count + self._all_asked_slots

    def asked_regret(self) -> np.ndarray:
        """Return the regret (B,) against the best labeler on the slots in which it was asked.

        R = max_i sum_{t: m_{i,t} = 1} (L_t - l(p_{i,t}, y_t)), the sleeping-experts regret.
        Under platform-sampled partial feedback it compares the platform with each labeler
        only where that labeler could influence the aggregate; without sampling it equals
        :meth:`regret`.
        """
        if self.draw.ask_prob is not None:
            return self._cumulative_asked_excess.max(axis=1)
        return self.regret()

    def misreport(self) -> np.ndarray:
        """Return each labeler's mean ||r - p||_2 over the slots it was asked in (B, N)."""
        return self.misreport_sum / np.maximum(self.asked_count, 1)

    def exaggeration(self) -> np.ndarray:
        """Return each labeler's mean signed shift along (p - a), positive when pushing away (B, N)."""
        return self.exaggeration_sum / np.maximum(self.asked_count, 1)
