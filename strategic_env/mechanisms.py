"""Aggregation mechanisms: how the platform turns the labelers' reports into one feedback.

Every mechanism works on a batch of independent games at once and shares one interface:

* ``reset(n_labelers, horizon, rng, batch_size=1, feedback_dim=1, space="cube")``;
* ``aggregate(reports, mask) -> aggregate``: reports of shape (B, N, K), a boolean mask
  (B, N) of the labelers asked in the slot, and an aggregate of shape (B, K) in the
  feedback space;
* ``update(reports, mask, truth, revealed=None, ask_prob=None)`` after the truth (B, K)
  is revealed; ``revealed`` (B,) marks the games in which it was, and ``ask_prob`` (B, N), when
  the platform sampled whom to ask, the probability that each labeler was asked;
* ``weights``: an array (B, N), a distribution over labelers (uniform for unweighted rules).

Registered rules: ``mean``, ``median``, ``online_weighted``, ``hedge``, ``mw_linear``,
``weighted_majority_abs``, ``follow_the_leader`` and ``em_weights``; each class docstring
gives the rule, its parameters and its known guarantees.

Reports of labelers who are not asked are ignored. Build a mechanism by name with
:func:`make`, which also accepts an import path ``package.module:Class``; add a new rule by
subclassing :class:`Mechanism` and decorating it with :func:`register`.
"""

from __future__ import annotations

import importlib
import inspect
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
        if not module_name or not attribute or module_name.startswith("."):
            raise ValueError(f"invalid mechanism import path {name!r}: expected an absolute path 'package.module:Class'")
        try:
            module = importlib.import_module(module_name)
        except (ImportError, TypeError, ValueError) as error:
            raise ValueError(f"cannot import mechanism module {module_name!r} from {name!r}: {error}") from None
        cls = getattr(module, attribute, None)
        if not (isinstance(cls, type) and issubclass(cls, Mechanism)):
            raise ValueError(f"{name!r} does not name a Mechanism subclass")
        if inspect.isabstract(cls):
            raise ValueError(f"{name!r} is an abstract class; name a subclass that implements aggregate")
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

    Subclasses implement :meth:`aggregate` and, if they learn, :meth:`update`. A rule whose
    aggregate is a weighted average of the participants' reports, with weights fixed before
    the reports are seen, sets ``linear = True`` and implements :meth:`aggregation_weights`.
    The closed-form best response applies to such rules.
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
        # A weighted average of reports that all equal 1 can round to 1 + 2^-52, outside the
        # space. Clipping to [0, 1] removes that and changes no aggregate inside the cube or simplex.
        aggregate = np.clip(np.einsum("bn,bnk->bk", weights, reports), 0.0, 1.0)
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

    def aggregate(self, reports: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if mask.all():
            return np.clip(reports.mean(axis=1), 0.0, 1.0)
        return super().aggregate(reports, mask)


@register("median")
class Median(Mechanism):
    """Coordinate-wise median of the participants' reports, projected onto the feedback space.

    For an even number of participants the median is the mean of the two middle values.
    Strategy-proof in one dimension for single-peaked preferences (Moulin, "On
    strategy-proofness and single peakedness", Public Choice 1980), but it ignores the
    labelers' accuracies, so its regret is linear in T.
    """

    def aggregate(self, reports: np.ndarray, mask: np.ndarray) -> np.ndarray:
        counts = mask.sum(axis=1)
        if mask.all():
            aggregate = np.median(reports, axis=1)
        elif counts.min() == counts.max() > 0:
            # Every game asked the same number of labelers: gather them in order and take the median.
            asked = reports[mask].reshape(reports.shape[0], int(counts[0]), reports.shape[2])
            aggregate = np.median(asked, axis=1)
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
    truthfulness for their dynamic weighting. Their exact rule was not available, so this
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

    def aggregate(self, reports: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if mask.all():
            # The weights sum to 1, so with everyone asked they need no renormalising.
            return np.clip(np.einsum("bn,bnk->bk", self._weights, reports), 0.0, 1.0)
        return super().aggregate(reports, mask)

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
        if ask_prob is None and mask.all():
            # Full participation, written as w (1 + eta sum_j w_j l_j) - eta w l in place.
            weighted_losses = weights * losses
            mean_loss = weighted_losses.sum(axis=1, keepdims=True)
            new = weights * (1.0 + self.eta * mean_loss)
            weighted_losses *= self.eta
            new -= weighted_losses
        elif ask_prob is not None:
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
        np.maximum(new, 0.0, out=new)
        new /= new.sum(axis=1, keepdims=True)
        if revealed is None or revealed.all():
            self._weights = new
        else:
            self._weights = np.where(revealed[:, None], new, weights)


# ---------------------------------------------------------------------------
# Shared numerics of the learning rules
# ---------------------------------------------------------------------------


def _check_number(
    mechanism: str,
    name: str,
    value: Any,
    low: float,
    high: float = math.inf,
    *,
    low_inclusive: bool = False,
    high_inclusive: bool = True,
) -> float:
    """Return ``value`` as a float if it is a finite real number in the interval, else raise ValueError."""
    valid = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if valid:
        above = value >= low if low_inclusive else value > low
        below = value <= high if high_inclusive else value < high
        valid = above and below
    if not valid:
        opening = "[" if low_inclusive else "("
        closing = "]" if high_inclusive and math.isfinite(high) else ")"
        interval = f"{opening}{low:g}, {high:g}{closing}"
        raise ValueError(f"invalid {name}={value!r} for {mechanism}: expected a finite number in {interval}")
    return float(value)


def _default_rate(mechanism: str, n_labelers: int, horizon: int, scale: float, cap: float = math.inf) -> float:
    """Return min(cap, sqrt(scale ln N / T)), the tuned learning rate for a known horizon T (0 when N = 1)."""
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise ValueError(f"invalid horizon={horizon!r} for {mechanism}: expected an integer >= 1")
    if n_labelers <= 1:
        return 0.0
    return min(cap, math.sqrt(scale * math.log(n_labelers) / horizon))


def _masked_softmax(log_weights: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Return exp(log_weights) normalised over the masked entries of each row; an empty row is all zero.

    The row's largest masked entry is subtracted before exponentiating, so no entry overflows
    and the largest one is exactly 1 before normalising.
    """
    masked = np.where(mask, log_weights, -np.inf)
    peak = masked.max(axis=1, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0.0)
    unnormalised = np.exp(masked - peak)
    total = unnormalised.sum(axis=1, keepdims=True)
    return unnormalised / np.where(total > 0, total, 1.0)


def _masked_logsumexp(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Return log sum_i exp(values_i) over the masked entries of each row (B,); -inf for an empty row."""
    masked = np.where(mask, values, -np.inf)
    peak = masked.max(axis=1)
    safe_peak = np.where(np.isfinite(peak), peak, 0.0)
    with np.errstate(divide="ignore"):
        return safe_peak + np.log(np.sum(np.exp(masked - safe_peak[:, None]), axis=1))


def _sleeping_correction(log_weights: np.ndarray, log_factor: np.ndarray, awake: np.ndarray) -> np.ndarray:
    """Return the log shift (B,) that keeps the awake labelers' total weight after a multiplicative step.

    Adding log_factor + shift to the awake labelers' log weights leaves the sum of their
    weights unchanged. The shift is zero in games where every labeler or no labeler is awake,
    because the step then needs no correction (or changes nothing).
    """
    partial = awake.any(axis=1) & ~awake.all(axis=1)
    with np.errstate(invalid="ignore"):
        shift = _masked_logsumexp(log_weights, awake) - _masked_logsumexp(log_weights + log_factor, awake)
    return np.where(partial, shift, 0.0)


def importance_weighted_losses(losses: np.ndarray, mask: np.ndarray, ask_prob: np.ndarray) -> np.ndarray:
    """Return l_hat = l m / P(m = 1) (B, N): an unbiased estimate of every labeler's loss under sampled asking.

    Labelers who were not asked get 0. Raises ValueError if ``ask_prob`` does not have the
    shape (B, N), lies outside [0, 1], or is 0 for a labeler who was asked.
    """
    ask_prob = np.asarray(ask_prob, dtype=np.float64)
    if ask_prob.shape != losses.shape:
        raise ValueError(f"ask_prob has shape {ask_prob.shape}, expected {losses.shape} (games, labelers)")
    if not np.all((ask_prob >= 0.0) & (ask_prob <= 1.0)):
        raise ValueError(
            f"invalid ask_prob: expected probabilities in [0, 1], got values from {ask_prob.min()} to {ask_prob.max()}"
        )
    if np.any(mask & (ask_prob <= 0.0)):
        raise ValueError("invalid ask_prob: a labeler was asked although its asking probability is 0")
    return np.where(mask, losses / np.where(mask, ask_prob, 1.0), 0.0)


def _smallest_ask_prob(ask_prob: np.ndarray) -> np.ndarray:
    """Return each game's smallest positive asking probability (B,); 1 for a game where none is positive."""
    return np.min(np.where(ask_prob > 0.0, ask_prob, 1.0), axis=1)


class LossWeightedMechanism(WeightedMechanism):
    """A weighted rule that learns from each labeler's accuracy loss once the truth is revealed.

    The rule's state is one array (B, N), from which the weights follow. :meth:`update`
    computes the losses and hands them to one of two steps:

    * ``_importance_step`` when ``ask_prob`` is given: every labeler is updated with the
      importance-weighted loss l_hat = l m / P(m = 1), which is 0 for those not asked;
    * ``_sleeping_step`` otherwise: only the asked labelers are updated, in a way that keeps
      their total weight, and the others keep theirs.

    Games with ``revealed`` false keep their state. Reports must lie in the feedback space,
    so that every loss lies in [0, 1].
    """

    def reset(self, n_labelers: int, horizon: int, rng: np.random.Generator, **kwargs: Any) -> None:
        super().reset(n_labelers, horizon, rng, **kwargs)
        self._set_state(np.zeros((self._weights.shape[0], n_labelers)))

    def update(
        self,
        reports: np.ndarray,
        mask: np.ndarray,
        truth: np.ndarray,
        revealed: np.ndarray | None = None,
        ask_prob: np.ndarray | None = None,
    ) -> None:
        mask = np.asarray(mask, dtype=bool)
        losses = self.losses(reports, truth)
        if ask_prob is None and mask.all():
            state = self._full_step(losses)
        elif ask_prob is None:
            state = self._sleeping_step(losses, mask)
        else:
            ask_prob = np.asarray(ask_prob, dtype=np.float64)
            state = self._importance_step(importance_weighted_losses(losses, mask, ask_prob), ask_prob)
        if revealed is not None:
            state = np.where(np.asarray(revealed, dtype=bool)[:, None], state, self._state)
        self._set_state(state)

    def _full_step(self, losses: np.ndarray) -> np.ndarray:
        """Return the state after every labeler, all asked, incurs ``losses``."""
        return self._sleeping_step(losses, np.ones(losses.shape, dtype=bool))

    def aggregate(self, reports: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if mask.all():
            # With everyone asked, the aggregation weights are the weights themselves.
            return np.clip(np.einsum("bn,bnk->bk", self._weights, reports), 0.0, 1.0)
        return super().aggregate(reports, mask)

    def _set_state(self, state: np.ndarray) -> None:
        state = np.array(state, dtype=np.float64)
        if state.shape != self._weights.shape:
            raise ValueError(f"state has shape {state.shape}, expected {self._weights.shape} (games, labelers)")
        self._state = state
        self._weights = self._weights_from_state(state)

    @abstractmethod
    def _weights_from_state(self, state: np.ndarray) -> np.ndarray:
        """Return the weights (B, N) that the state gives."""

    @abstractmethod
    def _sleeping_step(self, losses: np.ndarray, awake: np.ndarray) -> np.ndarray:
        """Return the state after the asked labelers (``awake``) incur ``losses``."""

    @abstractmethod
    def _importance_step(self, estimated_losses: np.ndarray, ask_prob: np.ndarray) -> np.ndarray:
        """Return the state after every labeler incurs its importance-weighted loss."""


class ExponentialWeightsMechanism(LossWeightedMechanism):
    """A loss-driven rule whose weights are proportional to exp(log weight), kept in log space."""

    @abstractmethod
    def _log_weights(self, state: np.ndarray) -> np.ndarray:
        """Return the unnormalised log weights (B, N) that the state gives."""

    def _weights_from_state(self, state: np.ndarray) -> np.ndarray:
        log_weights = self._log_weights(state)
        weights = np.exp(log_weights - log_weights.max(axis=1, keepdims=True))
        weights /= weights.sum(axis=1, keepdims=True)
        return weights

    def aggregation_weights(self, mask: np.ndarray) -> np.ndarray:
        # Renormalising in log space keeps the participants' weights positive even when a
        # labeler who was not asked has nearly all the weight.
        return _masked_softmax(self._log_weights(self._state), np.asarray(mask, dtype=bool))


# ---------------------------------------------------------------------------
# The learning rules
# ---------------------------------------------------------------------------


@register("hedge")
class Hedge(ExponentialWeightsMechanism):
    """Exponentially weighted average (Hedge): w_i proportional to exp(-eta L_i).

    Rule: L_i is labeler i's cumulative loss and the weights are computed in log space, with
    the smallest L subtracted before exponentiating, so they stay finite for any T. With
    eta = sqrt(8 ln N / T) the aggregate's regret against the best labeler is at most
    sqrt(T ln N / 2) for any loss in [0, 1] that is convex in the aggregate, both quadratic
    and absolute included (Freund and Schapire, "A decision-theoretic generalization of
    on-line learning and an application to boosting", Journal of Computer and System
    Sciences 55(1), 1997; Cesa-Bianchi and Lugosi, "Prediction, Learning, and Games",
    Cambridge University Press 2006, chapter 2). Not exactly incentive compatible: a
    labeler's next weight is not linear in its own loss, so a proper loss does not make
    truthful reporting maximise it (Freeman, Pennock, Podimata and Wortman Vaughan,
    "No-Regret and Incentive-Compatible Online Learning", ICML 2020).

    Participation: with ``ask_prob`` every labeler adds its importance-weighted loss
    l m / P(m = 1) to L. Exponential weights stay positive for any loss, so eta is not capped.
    Without ``ask_prob``, in a game where only some labelers were asked, each participant adds
    l_i - l_mix with l_mix = -(1/eta) ln(sum_j w_j exp(-eta l_j) / sum_j w_j) over the
    participants j, so the participants keep their total weight and the others keep
    theirs (sleeping experts). L is then the cumulative loss over the slots in which the
    labeler was asked, relative to the participants' mixture, and it equals the plain
    cumulative loss when every labeler is asked in every slot.

    Args:
        eta: learning rate, a number in (0, 1e6]; default sqrt(8 ln N / T) (0 when N = 1).
        loss: "quadratic" (default) or "absolute".
    """

    def __init__(self, eta: float | None = None, loss: str = "quadratic") -> None:
        super().__init__(loss=loss)
        # Above 1e6, -eta L can overflow to -inf for every labeler and the weights become NaN.
        self.eta_param = None if eta is None else _check_number("hedge", "eta", eta, 0.0, 1e6)
        self.eta = self.eta_param if self.eta_param is not None else 0.0

    def reset(self, n_labelers: int, horizon: int, rng: np.random.Generator, **kwargs: Any) -> None:
        if self.eta_param is None:
            self.eta = _default_rate("hedge", n_labelers, horizon, scale=8.0)
        super().reset(n_labelers, horizon, rng, **kwargs)

    @property
    def cumulative_loss(self) -> np.ndarray:
        """Cumulative loss L (B, N) of each labeler, as defined in the class docstring."""
        return self._state

    @cumulative_loss.setter
    def cumulative_loss(self, value: np.ndarray) -> None:
        self._set_state(value)

    def _log_weights(self, state: np.ndarray) -> np.ndarray:
        return -self.eta * state

    def _sleeping_step(self, losses: np.ndarray, awake: np.ndarray) -> np.ndarray:
        state = self._state
        if self.eta > 0:
            mixture_loss = _sleeping_correction(-self.eta * state, -self.eta * losses, awake) / self.eta
        else:
            mixture_loss = np.zeros(state.shape[0])
        return np.where(awake, state + losses - mixture_loss[:, None], state)

    def _importance_step(self, estimated_losses: np.ndarray, ask_prob: np.ndarray) -> np.ndarray:
        return self._state + estimated_losses

    def _full_step(self, losses: np.ndarray) -> np.ndarray:
        return self._state + losses


class _LinearMultiplicative(ExponentialWeightsMechanism):
    """Multiplicative update w_i <- w_i (1 - eta l_i), kept as log weights (log w += log1p(-eta l)).

    Subclasses set the rule's name, the bound on eta and whether the log weights are
    renormalised after each step.
    """

    eta_high: ClassVar[float] = 0.5
    eta_high_inclusive: ClassVar[bool] = True
    renormalise: ClassVar[bool] = True

    def __init__(self, eta: float | None = None, loss: str = "quadratic") -> None:
        super().__init__(loss=loss)
        rule = self.name or type(self).__name__
        self.eta_param = (
            None
            if eta is None
            else _check_number(rule, "eta", eta, 0.0, self.eta_high, high_inclusive=self.eta_high_inclusive)
        )
        self.eta = self.eta_param if self.eta_param is not None else 0.0

    def reset(self, n_labelers: int, horizon: int, rng: np.random.Generator, **kwargs: Any) -> None:
        if self.eta_param is None:
            self.eta = _default_rate(self.name, n_labelers, horizon, scale=1.0, cap=0.5)
        super().reset(n_labelers, horizon, rng, **kwargs)

    @property
    def log_weights(self) -> np.ndarray:
        """Log weights (B, N); the weights are exp(log_weights) normalised per game."""
        return self._state

    @log_weights.setter
    def log_weights(self, value: np.ndarray) -> None:
        self._set_state(value)

    def _log_weights(self, state: np.ndarray) -> np.ndarray:
        return state

    def _finish(self, log_weights: np.ndarray) -> np.ndarray:
        if not self.renormalise:
            return log_weights
        return log_weights - _masked_logsumexp(log_weights, np.ones(log_weights.shape, dtype=bool))[:, None]

    def _sleeping_step(self, losses: np.ndarray, awake: np.ndarray) -> np.ndarray:
        state = self._state
        log_factor = np.log1p(-self.eta * losses)
        shift = _sleeping_correction(state, log_factor, awake)
        return self._finish(np.where(awake, state + log_factor + shift[:, None], state))

    def _full_step(self, losses: np.ndarray) -> np.ndarray:
        return self._finish(self._state + np.log1p(-self.eta * losses))

    def _importance_step(self, estimated_losses: np.ndarray, ask_prob: np.ndarray) -> np.ndarray:
        # l_hat is at most 1 / p_min, so eta <= p_min / 2 keeps every factor 1 - eta l_hat >= 1/2.
        eta = np.minimum(self.eta, 0.5 * _smallest_ask_prob(ask_prob))[:, None]
        return self._finish(self._state + np.log1p(-eta * estimated_losses))


@register("mw_linear")
class MultiplicativeWeights(_LinearMultiplicative):
    """Multiplicative weights with the linear factor: w_i <- w_i (1 - eta l_i), then renormalised.

    Rule: the weights are kept as log weights, log w_i += log1p(-eta l_i), and renormalised
    in log space after each step, so no weight underflows to an all-zero row or overflows for
    any T. With eta <= 1/2 and losses in [0, 1] the aggregate's regret against the best
    labeler is at most eta T + ln N / eta, so 2 sqrt(T ln N) with eta = sqrt(ln N / T), for
    losses convex in the aggregate (Arora, Hazan and Kale, "The Multiplicative Weights Update
    Method: a Meta-Algorithm and Applications", Theory of Computing 8, 2012). Not incentive
    compatible: renormalising makes a labeler's next weight depend on its loss through the
    total as well, so a proper loss does not make truthful reporting maximise it. Freeman,
    Pennock, Podimata and Wortman Vaughan ("No-Regret and Incentive-Compatible Online
    Learning", ICML 2020) show that this standard update is manipulable.

    Participation: with ``ask_prob`` the losses are importance weighted, l_hat = l m / P(m = 1),
    and eta is capped per game at half the smallest positive asking probability, so every
    factor 1 - eta l_hat stays at least 1/2. Without ``ask_prob`` only the participants are
    updated, then rescaled to keep their total weight, and the others keep theirs (sleeping
    experts).

    Args:
        eta: learning rate in (0, 1/2]; default sqrt(ln N / T), capped at 1/2 (0 when N = 1).
        loss: "quadratic" (default) or "absolute".
    """


@register("weighted_majority_abs")
class WeightedMajorityAbsolute(_LinearMultiplicative):
    """Weighted majority with the absolute loss: unnormalised w_i <- w_i (1 - eta l_i).

    Rule: l_i = ||r_i - y||_1 / K always, whatever loss other rules use. The weights are kept
    unnormalised as log weights, log w_i = sum_t log1p(-eta l_{i,t}), and reported
    normalised; the aggregate is their weighted average of the reports. This is the
    continuous-prediction form of the weighted majority algorithm with beta = 1 - eta
    (Littlestone and Warmuth, "The Weighted Majority Algorithm", Information and Computation
    108(2), 1994). Its normalised weights equal those of ``mw_linear`` with the absolute loss,
    so the regret bound 2 sqrt(T ln N) for eta = sqrt(ln N / T) (Arora, Hazan and Kale 2012)
    holds for the absolute loss. Manipulable: the expected absolute loss is minimised by the
    median of a labeler's belief about the truth, not its mean, so a labeler who maximises
    its weight reports values pushed to the extremes (0 or 1 for a two-point belief).

    Participation: as for ``mw_linear``. With ``ask_prob`` eta is capped per game at half the
    smallest positive asking probability. Without it the participants keep their total
    weight and the others keep theirs.

    Args:
        eta: learning rate in (0, 1); default sqrt(ln N / T), capped at 1/2 (0 when N = 1).
            Every factor 1 - eta l stays at least 1 - eta > 0.
        loss: only "absolute" is accepted.
    """

    eta_high = 1.0
    eta_high_inclusive = False
    renormalise = False

    def __init__(self, eta: float | None = None, loss: str = "absolute") -> None:
        if loss != "absolute":
            raise ValueError(
                f"invalid loss={loss!r} for weighted_majority_abs: this rule always uses the absolute loss. "
                "Use mw_linear for the quadratic loss"
            )
        super().__init__(eta=eta, loss=loss)


@register("follow_the_leader")
class FollowTheLeader(LossWeightedMechanism):
    """Follow the leader: all weight on the lowest cumulative loss, ties split evenly.

    Rule: L_i is labeler i's cumulative loss. The leaders are the labelers with
    L_i <= min_j L_j + tie_rtol max(1, |min_j L_j|), a relative tolerance that absorbs
    rounding in long sums. In a slot, the aggregate follows the leaders among the asked
    labelers, so it never falls back to a plain mean when the overall leader was not asked.
    No regret guarantee: when two labelers alternate being the more accurate one, its regret
    grows linearly in T. A simple reference rule.

    Participation: with ``ask_prob`` every labeler adds l m / P(m = 1) to L. Without
    ``ask_prob``, in a game where only some labelers were asked, each participant adds
    l_i - (min_j (L_j + l_j) - min_j L_j) over the participants j, so the lowest L among the
    participants is unchanged. This is the eta -> infinity limit of Hedge's sleeping-experts
    step: the participants keep their total weight up to ties, and the others keep theirs.

    Args:
        tie_rtol: relative tolerance for ties, a number in [0, 1); default 1e-9.
        loss: "quadratic" (default) or "absolute".
    """

    def __init__(self, tie_rtol: float = 1e-9, loss: str = "quadratic") -> None:
        super().__init__(loss=loss)
        self.tie_rtol = _check_number(
            "follow_the_leader", "tie_rtol", tie_rtol, 0.0, 1.0, low_inclusive=True, high_inclusive=False
        )

    @property
    def cumulative_loss(self) -> np.ndarray:
        """Cumulative loss L (B, N) of each labeler, as defined in the class docstring."""
        return self._state

    @cumulative_loss.setter
    def cumulative_loss(self, value: np.ndarray) -> None:
        self._set_state(value)

    def _leader_weights(self, state: np.ndarray, mask: np.ndarray) -> np.ndarray:
        masked = np.where(mask, state, np.inf)
        best = masked.min(axis=1, keepdims=True)
        tolerance = self.tie_rtol * np.maximum(1.0, np.abs(np.where(np.isfinite(best), best, 0.0)))
        leaders = mask & (state <= best + tolerance)
        count = leaders.sum(axis=1, keepdims=True)
        return leaders / np.maximum(count, 1)

    def _weights_from_state(self, state: np.ndarray) -> np.ndarray:
        return self._leader_weights(state, np.ones(state.shape, dtype=bool))

    def aggregation_weights(self, mask: np.ndarray) -> np.ndarray:
        return self._leader_weights(self._state, np.asarray(mask, dtype=bool))

    def _sleeping_step(self, losses: np.ndarray, awake: np.ndarray) -> np.ndarray:
        state = self._state
        partial = awake.any(axis=1) & ~awake.all(axis=1)
        before = np.where(awake, state, np.inf).min(axis=1)
        after = np.where(awake, state + losses, np.inf).min(axis=1)
        with np.errstate(invalid="ignore"):
            # A game with no participant gives inf - inf here, and the shift there is unused.
            shift = np.where(partial, after - before, 0.0)
        return np.where(awake, state + losses - shift[:, None], state)

    def _importance_step(self, estimated_losses: np.ndarray, ask_prob: np.ndarray) -> np.ndarray:
        return self._state + estimated_losses

    def _full_step(self, losses: np.ndarray) -> np.ndarray:
        return self._state + losses


@register("em_weights")
class EMWeights(Mechanism):
    """Weights from agreement without the truth, Dawid-Skene style: w_i proportional to 1 / sigma_hat_i^2.

    Rule: labeler i's residual in a slot is res_i = l(r_i, a), the loss of its report against
    the aggregate a. Its noise estimate is the running mean
    m_i = (prior_count m_0 + sum_t res_{i,t}) / (prior_count + n_i) over the n_i slots in
    which it was asked, and sigma_hat_i^2 = max(m_i, min_variance) for the quadratic residual,
    or max(m_i^2, min_variance) for the absolute one. In each slot the aggregate and the
    residuals are iterated ``iterations`` times: a = sum_i w_i r_i over the asked labelers
    with w_i proportional to 1 / sigma_hat_i^2, the estimate including this slot's residual,
    then the residuals are recomputed against the new a. This is the fixed-point (EM-style)
    estimation of labeler noise of Dawid and Skene, "Maximum Likelihood Estimation of
    Observer Error-Rates Using the EM Algorithm", Journal of the Royal Statistical Society
    Series C 28(1), 1979, applied to continuous reports with Gaussian noise.

    It never uses the truth, so it learns from the reports alone: :meth:`aggregate` updates
    the statistics of the asked labelers and the weights, and :meth:`update` does nothing.
    Calling :meth:`aggregate` on hypothetical reports therefore changes the state, so copy
    the mechanism first (``copy.deepcopy``). ``revealed`` and ``ask_prob`` play no role, and
    labelers who were not asked keep their statistics. The aggregate depends on the current
    reports through the weights, so the rule is not linear and has no closed-form best
    response. No regret guarantee: it rewards agreement rather than accuracy, so labelers
    who share a bias gain weight together and its regret against the best labeler can grow
    linearly in T.

    Args:
        iterations: fixed-point iterations per slot, an integer >= 1; default 5.
        prior_count: pseudo-count of the prior residual, > 0; default 10. It keeps the early
            weights near uniform.
        prior_residual: prior residual scale s_0 in (0, 1]; default 0.2. The prior mean residual
            m_0 is s_0^2 for the quadratic residual and s_0 for the absolute one, so the prior
            sigma_hat is s_0 in both cases.
        min_variance: floor on sigma_hat^2, in [1e-12, 1]; default 1e-6, so no weight is infinite.
        loss: residual measure, "quadratic" (default, ||r - a||^2 / K) or "absolute"
            (||r - a||_1 / K).
    """

    def __init__(
        self,
        iterations: int = 5,
        prior_count: float = 10.0,
        prior_residual: float = 0.2,
        min_variance: float = 1e-6,
        loss: str = "quadratic",
    ) -> None:
        super().__init__(loss=loss)
        if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)) or iterations < 1:
            raise ValueError(f"invalid iterations={iterations!r} for em_weights: expected an integer >= 1")
        self.iterations = int(iterations)
        self.prior_count = _check_number("em_weights", "prior_count", prior_count, 0.0)
        # Losses lie in [0, 1], so a larger residual scale means nothing; the floor on the
        # variance keeps 1 / sigma_hat^2 far from overflowing.
        self.prior_residual = _check_number("em_weights", "prior_residual", prior_residual, 0.0, 1.0)
        self.min_variance = _check_number("em_weights", "min_variance", min_variance, 1e-12, 1.0, low_inclusive=True)
        # The prior mean residual m_0: a variance for the quadratic residual, a scale for the absolute one.
        self._prior_mean_residual = prior_residual**2 if loss == "quadratic" else prior_residual

    def reset(self, n_labelers: int, horizon: int, rng: np.random.Generator, **kwargs: Any) -> None:
        super().reset(n_labelers, horizon, rng, **kwargs)
        shape = self._weights.shape
        self.residual_sum = np.full(shape, self.prior_count * self._prior_mean_residual)
        self.residual_count = np.full(shape, self.prior_count)

    def variance(self, residual_sum: np.ndarray, residual_count: np.ndarray) -> np.ndarray:
        """Return sigma_hat^2 (B, N) from residual sums and counts, floored at ``min_variance``."""
        mean_residual = residual_sum / residual_count
        estimate = mean_residual if self.loss == "quadratic" else mean_residual**2
        return np.maximum(estimate, self.min_variance)

    def aggregate(self, reports: np.ndarray, mask: np.ndarray) -> np.ndarray:
        mask = np.asarray(mask, dtype=bool)
        sums, counts = self.residual_sum, self.residual_count
        variance = self.variance(sums, counts)
        for _ in range(self.iterations):
            precision = np.where(mask, 1.0 / variance, 0.0)
            total = precision.sum(axis=1, keepdims=True)
            weights = precision / np.where(total > 0, total, 1.0)
            aggregate = np.clip(np.einsum("bn,bnk->bk", weights, reports), 0.0, 1.0)
            residuals = accuracy_loss(reports, aggregate[:, None, :], self.loss)
            variance = self.variance(sums + residuals, counts + 1.0)

        self.residual_sum = np.where(mask, sums + residuals, sums)
        self.residual_count = counts + mask
        precision = 1.0 / self.variance(self.residual_sum, self.residual_count)
        empty = ~mask.any(axis=1)
        self._weights = np.where(empty[:, None], self._weights, precision / precision.sum(axis=1, keepdims=True))
        if empty.any():
            aggregate[empty] = self._empty_slot_aggregate(int(empty.sum()))
        return aggregate
