"""Aggregation mechanisms: how the platform turns the labelers' reports into one feedback.

Every mechanism works on a batch of independent games at once and shares one interface:

* ``reset(n_labelers, horizon, rng, batch_size=1, feedback_dim=1, space="cube")``;
* ``aggregate(reports, mask) -> aggregate``: reports of shape (B, N, K), a boolean mask
  (B, N) of the labelers asked in the slot, and an aggregate of shape (B, K) in the
  feedback space;
* ``update(reports, mask, truth, revealed=None, ask_prob=None)`` after the truth (B, K)
  is revealed; ``revealed`` (B,) says in which games it was, and ``ask_prob`` (B, N), when
  the platform sampled whom to ask, the probability that each labeler was asked;
* ``weights``: an array (B, N), a distribution over labelers (uniform for unweighted rules).

Reports of labelers who are not asked are ignored. Build a mechanism by name with
:func:`make`, which also accepts an import path ``package.module:Class``; add a new rule by
subclassing :class:`Mechanism` and decorating it with :func:`register`.
"""

from __future__ import annotations

import importlib
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from strategic_env.spaces import accuracy_loss, center, project

_REGISTRY: dict[str, type[Mechanism]] = {}


def register(name: str) -> Callable[[type[Mechanism]], type[Mechanism]]:
    """Register a Mechanism subclass under ``name`` so that :func:`make` can build it."""

    def decorator(cls: type[Mechanism]) -> type[Mechanism]:
        if not (isinstance(cls, type) and issubclass(cls, Mechanism)):
            raise TypeError(f"{cls!r} is not a subclass of Mechanism")
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"a mechanism named {name!r} is already registered ({_REGISTRY[name].__qualname__})")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorator


def available() -> tuple[str, ...]:
    """Return the names of the registered mechanisms."""
    return tuple(_REGISTRY)


def resolve(name: str) -> type[Mechanism]:
    """Return the mechanism class for a registered name or an import path ``module:Class``."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    if ":" in name:
        module_name, _, attribute = name.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            raise ValueError(f"cannot import mechanism module {module_name!r} from {name!r}: {error}") from None
        cls = getattr(module, attribute, None)
        if not (isinstance(cls, type) and issubclass(cls, Mechanism)):
            raise ValueError(f"{name!r} does not name a Mechanism subclass")
        return cls
    raise ValueError(
        f"unknown mechanism {name!r}; expected one of {', '.join(available())} or an import path 'package.module:Class'"
    )


def make(name: str, **params: Any) -> Mechanism:
    """Build the mechanism named ``name`` (registered name or ``module:Class``) with ``params``."""
    cls = resolve(name)
    try:
        return cls(**params)
    except TypeError as error:
        raise ValueError(f"invalid parameters {params!r} for mechanism {name!r}: {error}") from None


class Mechanism(ABC):
    """Base class of the aggregation rules.

    Subclasses implement :meth:`aggregate` and, if they learn, :meth:`update`. Rules whose
    aggregate is a weighted average of the participants' reports with weights fixed before
    the reports are seen set ``linear = True`` and implement :meth:`aggregation_weights`;
    the closed-form best response applies to them.
    """

    name: ClassVar[str] = ""
    linear: ClassVar[bool] = False

    def __init__(self, loss: str = "quadratic") -> None:
        if loss not in ("quadratic", "absolute"):
            raise ValueError(f"invalid loss={loss!r} for mechanism {type(self).__name__}: expected 'quadratic' or 'absolute'")
        self.loss = loss
        self.n_labelers = 0
        self.horizon = 0
        self.feedback_dim = 1
        self.space = "cube"
        self._weights = np.ones((1, 1))

    def reset(
        self,
        n_labelers: int,
        horizon: int,
        rng: np.random.Generator,
        *,
        batch_size: int = 1,
        feedback_dim: int = 1,
        space: str = "cube",
    ) -> None:
        """Start new games: uniform weights for ``batch_size`` games of N labelers and T slots."""
        self.n_labelers = n_labelers
        self.horizon = horizon
        self.rng = rng
        self.feedback_dim = feedback_dim
        self.space = space
        self._weights = np.full((batch_size, n_labelers), 1.0 / n_labelers)

    @property
    def weights(self) -> np.ndarray:
        """Current weights, an array (B, N) whose rows are distributions over labelers."""
        return self._weights

    @abstractmethod
    def aggregate(self, reports: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Return the aggregate (B, K) of the reports (B, N, K) of the asked labelers (mask (B, N))."""

    def update(
        self,
        reports: np.ndarray,
        mask: np.ndarray,
        truth: np.ndarray,
        revealed: np.ndarray | None = None,
        ask_prob: np.ndarray | None = None,
    ) -> None:
        """Learn from the revealed truth (B, K). The base rule does not learn."""

    def aggregation_weights(self, mask: np.ndarray) -> np.ndarray:
        """Return the weights (B, N) that a linear rule applies to this slot's reports."""
        raise NotImplementedError(f"mechanism {self.name or type(self).__name__} is not linear")

    def losses(self, reports: np.ndarray, truth: np.ndarray) -> np.ndarray:
        """Return each labeler's accuracy loss (B, N) under this mechanism's loss."""
        return accuracy_loss(reports, truth[:, None, :], self.loss)

    def _empty_slot_aggregate(self, batch_size: int) -> np.ndarray:
        return np.broadcast_to(center(self.feedback_dim, self.space), (batch_size, self.feedback_dim)).copy()


class WeightedMechanism(Mechanism):
    """A rule that aggregates a_t = sum_i w_i r_i over the participants, weights renormalised."""

    linear = True

    def aggregation_weights(self, mask: np.ndarray) -> np.ndarray:
        masked = self._weights * mask
        total = masked.sum(axis=1, keepdims=True)
        # A slot whose participants all have zero weight falls back to their plain mean.
        fallback = mask / np.maximum(mask.sum(axis=1, keepdims=True), 1)
        return np.where(total > 0, masked / np.where(total > 0, total, 1.0), fallback)

    def aggregate(self, reports: np.ndarray, mask: np.ndarray) -> np.ndarray:
        weights = self.aggregation_weights(mask)
        aggregate = np.einsum("bn,bnk->bk", weights, reports)
        empty = ~mask.any(axis=1)
        if empty.any():
            aggregate[empty] = self._empty_slot_aggregate(int(empty.sum()))
        return aggregate


@register("mean")
class Mean(WeightedMechanism):
    """Average of the participants' reports, with fixed uniform weights.

    The current practice in RLHF. Manipulable: under the influence utility a labeler gains
    by exaggerating away from the others. Its regret against the best labeler is linear in
    T when the labelers' accuracies differ.
    """


@register("median")
class Median(Mechanism):
    """Coordinate-wise median of the participants' reports, projected onto the feedback space.

    For an even number of participants the median is the mean of the two middle values.
    Strategy-proof in one dimension for single-peaked preferences (Moulin, "On
    strategy-proofness and single peakedness", Public Choice 1980), but it ignores the
    labelers' accuracies, so its regret is linear in T.
    """

    def aggregate(self, reports: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if mask.all():
            aggregate = np.median(reports, axis=1)
        else:
            masked = np.where(mask[:, :, None], reports, np.nan)
            empty = ~mask.any(axis=1)
            masked[empty] = 0.0  # nanmedian warns on all-NaN rows; those rows are replaced below.
            aggregate = np.nanmedian(masked, axis=1)
            if empty.any():
                aggregate[empty] = self._empty_slot_aggregate(int(empty.sum()))
        return project(aggregate, self.space) if self.space == "simplex" else aggregate


@register("online_weighted")
class OnlineWeighted(WeightedMechanism):
    """Online weighted aggregation that tracks each labeler's accuracy (weighted-score update).

    Rule: after the truth is revealed, w_{i,t+1} = w_{i,t} (1 - eta (l_{i,t} - sum_j w_{j,t}
    l_{j,t})), where l is the accuracy loss. The weights keep summing to 1 without
    renormalising, and a labeler's next weight is linear in its own loss, so with a strictly
    proper loss a myopic labeler who maximises its weight reports truthfully.

    This is the weighted-score update (WSU) of Freeman, Pennock, Podimata and Wortman Vaughan,
    "No-Regret and Incentive-Compatible Online Learning" (ICML 2020), which proves regret
    O(sqrt(T ln N)) with eta = sqrt(ln N / T). Hao and Duan, "Online Learning from Strategic
    Human Feedback in LLM Fine-Tuning" (arXiv 2412.16834), state O(sqrt(T)) regret and
    truthfulness for their dynamic weighting; their exact rule was not available, so this
    rule is a reconstruction of it.

    Participation: when the platform samples whom to ask (``ask_prob`` given), the losses
    are importance weighted, l_hat = l m / P(m = 1), which keeps the update unbiased and
    linear; eta is then capped at the smallest asking probability so that no weight turns
    negative. When the data decides who answers (no ``ask_prob``), the labelers who were
    not asked keep their weight and the update runs among the participants on their
    renormalised weights, preserving their total (sleeping experts).

    Args:
        eta: learning rate in (0, 1]; default sqrt(ln N / T), capped at 1.
        loss: "quadratic" (default, strictly proper) or "absolute".
    """

    def __init__(self, eta: float | None = None, loss: str = "quadratic") -> None:
        super().__init__(loss=loss)
        if eta is not None and (isinstance(eta, bool) or not isinstance(eta, (int, float)) or not 0.0 < eta <= 1.0):
            raise ValueError(f"invalid eta={eta!r} for online_weighted: expected a number in (0, 1] or None")
        self.eta_param = eta
        self.eta = eta if eta is not None else 0.0

    def reset(self, n_labelers: int, horizon: int, rng: np.random.Generator, **kwargs: Any) -> None:
        super().reset(n_labelers, horizon, rng, **kwargs)
        if self.eta_param is None:
            self.eta = min(1.0, math.sqrt(math.log(n_labelers) / horizon)) if n_labelers > 1 else 0.0

    def update(
        self,
        reports: np.ndarray,
        mask: np.ndarray,
        truth: np.ndarray,
        revealed: np.ndarray | None = None,
        ask_prob: np.ndarray | None = None,
    ) -> None:
        losses = self.losses(reports, truth)
        weights = self._weights
        if ask_prob is not None:
            eta = min(self.eta, float(np.min(ask_prob)))
            scaled = np.where(mask, losses / ask_prob, 0.0)
            mean_loss = np.sum(weights * scaled, axis=1, keepdims=True)
            new = weights * (1.0 - eta * (scaled - mean_loss))
        else:
            participant_weights = weights * mask
            total = participant_weights.sum(axis=1, keepdims=True)
            safe_total = np.where(total > 0, total, 1.0)
            mean_loss = np.sum(participant_weights * losses, axis=1, keepdims=True) / safe_total
            new = np.where(mask, weights * (1.0 - self.eta * (losses - mean_loss)), weights)
        # The rule preserves the total exactly; renormalising only removes rounding drift.
        new = np.maximum(new, 0.0)
        new /= new.sum(axis=1, keepdims=True)
        if revealed is None:
            self._weights = new
        else:
            self._weights = np.where(revealed[:, None], new, weights)
