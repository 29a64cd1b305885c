"""Preference sources: where the truth, the labelers' private preferences and participation come from.

A source produces, slot by slot and for a batch of B independent games, the truth y_t (B, K),
each labeler's preference p_{i,t} (B, N, K), which labelers are asked (B, N), and whether a
labeler has a preference on the slot's item at all (B, N). Two sources exist:

* :class:`SyntheticSource`: y_t from the configured prior and p_{i,t} = P_Y(y_t + beta_i +
  sigma_i xi_{i,t}), xi ~ N(0, I_K), with types fixed by the configuration or drawn at reset;
* :class:`ReplaySource`: items of a real multi-annotator :class:`LabelTable` replayed in a
  seeded random order, each annotator a labeler, its label its preference and the gold label
  the truth. Annotators who did not label an item are not asked and have no preference.

All randomness comes from the generator passed to ``reset`` and never depends on the
labelers' reports, so two runs from the same seed see the same draws whatever the labelers
do (common random numbers).
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod

import numpy as np

from strategic_env.config import GameConfig
from strategic_env.spaces import project


@dataclasses.dataclass(frozen=True)
class SlotDraw:
    """The exogenous draws of one slot for a batch of B games."""

    truth: np.ndarray  # (B, K) in the feedback space
    preferences: np.ndarray  # (B, N, K) in the feedback space
    asked: np.ndarray  # (B, N) bool: asked for feedback in this slot
    has_preference: np.ndarray  # (B, N) bool: the labeler holds a preference on this item
    ask_prob: np.ndarray | None  # (B, N) probability of being asked, when the platform sampled it


class PreferenceSource(ABC):
    """Produces truth, preferences and participation slot by slot."""

    n_labelers: int
    feedback_dim: int
    labeler_names: tuple[str, ...]
    # True when every labeler holds a preference in every slot, as in synthetic games.
    always_has_preference: bool = False

    @abstractmethod
    def episode_length(self, horizon: int) -> int:
        """Return the number of slots of an episode for a configured horizon."""

    @abstractmethod
    def reset(self, batch_size: int, rng: np.random.Generator, horizon: int | None = None) -> None:
        """Start B new episodes; ``horizon``, when given, is the number of slots that will be drawn."""

    @abstractmethod
    def draw(self, slot: int) -> SlotDraw:
        """Return the draws of slot ``slot`` (0-based) of the current episodes."""

    @property
    def types(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Return the labelers' (bias (B, N, K), sigma (B, N)) types, or None when unknown."""
        return None


class SyntheticSource(PreferenceSource):
    """Synthetic truth and preferences drawn from the model of the configuration.

    Draws are made in blocks of several slots at once to cut the per-slot overhead. A block
    covers at most the episode's horizon and holds at most max(BLOCK_ELEMENTS, B N K) noise
    values, so memory stays O(B N K).
    """

    BLOCK_ELEMENTS = 1 << 20
    always_has_preference = True

    def __init__(self, config: GameConfig) -> None:
        self.config = config
        self.n_labelers = config.n_labelers
        self.feedback_dim = config.feedback_dim
        self.labeler_names = tuple(f"labeler_{i}" for i in range(config.n_labelers))
        self._bias = np.zeros((1, self.n_labelers, self.feedback_dim))
        self._sigma = np.zeros((1, self.n_labelers))
        self._rng = np.random.default_rng()
        self._batch_size = 1
        self._all_asked = np.ones((1, self.n_labelers), dtype=bool)
        self._ask_prob: np.ndarray | None = None
        self._block: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None = None
        self._block_start = 0

    def episode_length(self, horizon: int) -> int:
        return horizon

    def reset(self, batch_size: int, rng: np.random.Generator, horizon: int | None = None) -> None:
        config = self.config
        n, k = self.n_labelers, self.feedback_dim
        self._rng = rng
        self._batch_size = batch_size
        if config.noise_sigma is not None:
            self._sigma = np.broadcast_to(np.asarray(config.noise_sigma), (batch_size, n)).copy()
        else:
            low, high = config.sigma_range
            self._sigma = rng.uniform(low, high, size=(batch_size, n))
        if config.bias is not None:
            self._bias = np.broadcast_to(np.asarray(config.bias), (batch_size, n, k)).copy()
        elif config.bias_scale > 0:
            self._bias = np.clip(rng.normal(0.0, config.bias_scale, size=(batch_size, n, k)), -1.0, 1.0)
        else:
            self._bias = np.zeros((batch_size, n, k))
        self._unbiased = not np.any(self._bias)
        self._all_asked = np.ones((batch_size, n), dtype=bool)
        if config.feedback_per_slot is not None and config.feedback_per_slot < n:
            self._ask_prob = np.full((batch_size, n), config.feedback_per_slot / n)
        else:
            self._ask_prob = None
        self._block = None
        self._block_start = 0
        self._block_length = max(1, self.BLOCK_ELEMENTS // (batch_size * n * k))
        if horizon is not None:
            self._block_length = min(self._block_length, horizon)

    @property
    def types(self) -> tuple[np.ndarray, np.ndarray]:
        return self._bias, self._sigma

    def _draw_block(self, length: int) -> None:
        config = self.config
        rng = self._rng
        b, n, k = self._batch_size, self.n_labelers, self.feedback_dim
        if config.space == "cube":
            a, beta_b = config.truth_beta
            truth = rng.beta(a, beta_b, size=(length, b, k))
        else:
            truth = rng.dirichlet(np.full(k, config.truth_dirichlet), size=(length, b))
        preferences = rng.standard_normal((length, b, n, k))
        preferences *= self._sigma[None, :, :, None]
        preferences += truth[:, :, None, :]
        if not self._unbiased:
            preferences += self._bias[None]
        if config.space == "cube":
            np.clip(preferences, 0.0, 1.0, out=preferences)
        else:
            preferences = project(preferences, config.space)
        asked = None
        if self._ask_prob is not None:
            # Asking the M labelers with the smallest uniform keys samples M of N uniformly.
            m = config.feedback_per_slot
            keys = rng.random((length, b, n))
            chosen = np.argpartition(keys, m - 1, axis=2)[:, :, :m]
            asked = np.zeros((length, b, n), dtype=bool)
            np.put_along_axis(asked, chosen, True, axis=2)
        self._block = (truth, preferences, asked)

    def draw(self, slot: int) -> SlotDraw:
        if self._block is None or not self._block_start <= slot < self._block_start + len(self._block[0]):
            if slot == 0 or self._block is None:
                self._block_start = slot
            else:
                self._block_start += len(self._block[0])
                if self._block_start != slot:
                    raise ValueError(f"synthetic slots must be drawn in order; expected slot {self._block_start}, got {slot}")
            self._draw_block(self._block_length)
        index = slot - self._block_start
        truth, preferences, asked = self._block  # type: ignore[misc]
        slot_asked = self._all_asked if asked is None else asked[index]
        return SlotDraw(truth[index], preferences[index], slot_asked, self._all_asked, self._ask_prob)


@dataclasses.dataclass(frozen=True)
class LabelTable:
    """A dense matrix view of a multi-annotator data set.

    Attributes:
        name: short name of the data set, used in reports.
        items: item ids, one per row.
        workers: annotator ids, one per column; they become the labelers' names.
        labels: (items, workers) labels already mapped into [0, 1]; NaN where an annotator
            did not label an item.
        truth: (items,) gold or reference label of each item, mapped into [0, 1].
        description: how labels and truth were mapped, for reports.
    """

    name: str
    items: tuple[str, ...]
    workers: tuple[str, ...]
    labels: np.ndarray
    truth: np.ndarray
    description: str = ""

    def __post_init__(self) -> None:
        labels = np.asarray(self.labels, dtype=np.float64)
        truth = np.asarray(self.truth, dtype=np.float64)
        if labels.shape != (len(self.items), len(self.workers)):
            raise ValueError(
                f"labels has shape {labels.shape}, expected (items, workers) = ({len(self.items)}, {len(self.workers)})"
            )
        if truth.shape != (len(self.items),):
            raise ValueError(f"truth has shape {truth.shape}, expected ({len(self.items)},)")
        if not np.all(np.isfinite(truth)) or truth.min(initial=0.0) < 0 or truth.max(initial=1.0) > 1:
            raise ValueError("every truth value must be a finite number in [0, 1]")
        observed = labels[~np.isnan(labels)]
        if np.any(~np.isfinite(observed)) or observed.min(initial=0.0) < 0 or observed.max(initial=1.0) > 1:
            raise ValueError("every label must be NaN (not labelled) or a finite number in [0, 1]")
        if len(self.items) == 0:
            raise ValueError("the table has no items")
        if np.any(np.isnan(labels).all(axis=1)):
            raise ValueError("every item needs at least one label")
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "truth", truth)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_workers(self) -> int:
        return len(self.workers)

    def mean_loss(self) -> np.ndarray:
        """Return each worker's mean quadratic loss against the truth on the items it labelled (lower is better)."""
        with np.errstate(invalid="ignore"):
            errors = (self.labels - self.truth[:, None]) ** 2
            return np.nanmean(errors, axis=0)


class ReplaySource(PreferenceSource):
    """Replays the items of a :class:`LabelTable` in a seeded random order (one item per slot)."""

    def __init__(self, table: LabelTable) -> None:
        self.table = table
        self.n_labelers = table.n_workers
        self.feedback_dim = 1
        self.labeler_names = table.workers
        self._labels = np.nan_to_num(table.labels, nan=0.5)
        self._answered = ~np.isnan(table.labels)
        self._order = np.zeros((1, table.n_items), dtype=np.int64)

    def episode_length(self, horizon: int) -> int:
        return min(horizon, self.table.n_items)

    def reset(self, batch_size: int, rng: np.random.Generator, horizon: int | None = None) -> None:
        self._order = rng.permuted(np.tile(np.arange(self.table.n_items), (batch_size, 1)), axis=1)

    def draw(self, slot: int) -> SlotDraw:
        items = self._order[:, slot]
        truth = self.table.truth[items][:, None]
        preferences = self._labels[items][:, :, None]
        asked = self._answered[items]
        return SlotDraw(truth, preferences, asked, asked, None)
