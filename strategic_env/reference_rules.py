"""Plain Python implementations of the aggregation rules, one game at a time.

These loops over labelers and coordinates use only Python floats and lists. They are the
baseline of ``strategic-env bench`` and an independent oracle in the tests: on the same
reports and truths they must give the same aggregates and weights as the batched numpy
rules in :mod:`strategic_env.mechanisms`. They cover full participation only.
"""

from __future__ import annotations

import math
import random


def quadratic_loss(report: list[float], truth: list[float]) -> float:
    return sum((r - y) ** 2 for r, y in zip(report, truth)) / len(truth)


def absolute_loss(report: list[float], truth: list[float]) -> float:
    return sum(abs(r - y) for r, y in zip(report, truth)) / len(truth)


def weighted_average(weights: list[float], reports: list[list[float]]) -> list[float]:
    total = sum(weights)
    k = len(reports[0])
    return [sum(w * r[c] for w, r in zip(weights, reports)) / total for c in range(k)]


class PlainRule:
    """A rule over one game: ``aggregate(reports)`` then ``update(reports, truth)``."""

    def __init__(self, n_labelers: int, horizon: int, loss: str = "quadratic") -> None:
        self.n = n_labelers
        self.horizon = horizon
        self.loss = quadratic_loss if loss == "quadratic" else absolute_loss
        self.weights = [1.0 / n_labelers] * n_labelers

    def aggregate(self, reports: list[list[float]]) -> list[float]:
        return weighted_average(self.weights, reports)

    def update(self, reports: list[list[float]], truth: list[float]) -> None:
        return None


class PlainMean(PlainRule):
    pass


class PlainMedian(PlainRule):
    def aggregate(self, reports: list[list[float]]) -> list[float]:
        out = []
        for c in range(len(reports[0])):
            values = sorted(r[c] for r in reports)
            middle = len(values) // 2
            out.append(values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2)
        return out


class PlainOnlineWeighted(PlainRule):
    def __init__(self, n_labelers: int, horizon: int, loss: str = "quadratic") -> None:
        super().__init__(n_labelers, horizon, loss)
        self.eta = min(1.0, math.sqrt(math.log(n_labelers) / horizon)) if n_labelers > 1 else 0.0

    def update(self, reports: list[list[float]], truth: list[float]) -> None:
        losses = [self.loss(r, truth) for r in reports]
        mean_loss = sum(w * l for w, l in zip(self.weights, losses))
        new = [w * (1.0 - self.eta * (l - mean_loss)) for w, l in zip(self.weights, losses)]
        total = sum(new)
        self.weights = [w / total for w in new]


class PlainHedge(PlainRule):
    def __init__(self, n_labelers: int, horizon: int, loss: str = "quadratic") -> None:
        super().__init__(n_labelers, horizon, loss)
        self.eta = math.sqrt(8.0 * math.log(n_labelers) / horizon) if n_labelers > 1 else 0.0
        self.cumulative = [0.0] * n_labelers

    def update(self, reports: list[list[float]], truth: list[float]) -> None:
        for i, r in enumerate(reports):
            self.cumulative[i] += self.loss(r, truth)
        best = min(self.cumulative)
        scores = [math.exp(-self.eta * (c - best)) for c in self.cumulative]
        total = sum(scores)
        self.weights = [s / total for s in scores]


class PlainMultiplicative(PlainRule):
    """w_i <- w_i (1 - eta l_i), renormalised (mw_linear) or with absolute loss (weighted majority)."""

    def __init__(self, n_labelers: int, horizon: int, loss: str = "quadratic", eta_cap: float = 0.5) -> None:
        super().__init__(n_labelers, horizon, loss)
        self.eta = min(eta_cap, math.sqrt(math.log(n_labelers) / horizon)) if n_labelers > 1 else 0.0
        self.log_weights = [0.0] * n_labelers

    def update(self, reports: list[list[float]], truth: list[float]) -> None:
        for i, r in enumerate(reports):
            self.log_weights[i] += math.log1p(-self.eta * self.loss(r, truth))
        best = max(self.log_weights)
        scores = [math.exp(v - best) for v in self.log_weights]
        total = sum(scores)
        self.weights = [s / total for s in scores]


class PlainFollowTheLeader(PlainRule):
    def __init__(self, n_labelers: int, horizon: int, loss: str = "quadratic") -> None:
        super().__init__(n_labelers, horizon, loss)
        self.cumulative = [0.0] * n_labelers

    def update(self, reports: list[list[float]], truth: list[float]) -> None:
        for i, r in enumerate(reports):
            self.cumulative[i] += self.loss(r, truth)
        best = min(self.cumulative)
        tolerance = 1e-9 * max(1.0, abs(best))
        leaders = [c <= best + tolerance for c in self.cumulative]
        count = sum(leaders)
        self.weights = [1.0 / count if leader else 0.0 for leader in leaders]


class PlainEMWeights(PlainRule):
    """em_weights with its defaults: weights 1 / sigma_hat^2 from residuals against the aggregate."""

    def __init__(self, n_labelers: int, horizon: int, iterations: int = 5, prior_count: float = 10.0,
                 prior_residual: float = 0.2, min_variance: float = 1e-6) -> None:
        super().__init__(n_labelers, horizon)
        self.iterations = iterations
        self.min_variance = min_variance
        self.residual_sum = [prior_count * prior_residual**2] * n_labelers
        self.residual_count = [prior_count] * n_labelers

    def aggregate(self, reports: list[list[float]]) -> list[float]:
        variance = [max(s / c, self.min_variance) for s, c in zip(self.residual_sum, self.residual_count)]
        for _ in range(self.iterations):
            precision = [1.0 / v for v in variance]
            aggregate = [min(1.0, max(0.0, value)) for value in weighted_average(precision, reports)]
            residuals = [quadratic_loss(r, aggregate) for r in reports]
            variance = [
                max((s + e) / (c + 1.0), self.min_variance)
                for s, e, c in zip(self.residual_sum, residuals, self.residual_count)
            ]
        self.residual_sum = [s + e for s, e in zip(self.residual_sum, residuals)]
        self.residual_count = [c + 1.0 for c in self.residual_count]
        precision = [1.0 / max(s / c, self.min_variance) for s, c in zip(self.residual_sum, self.residual_count)]
        total = sum(precision)
        self.weights = [p / total for p in precision]
        return aggregate


def plain_rule(name: str, n_labelers: int, horizon: int) -> PlainRule:
    """Build the plain Python rule for a mechanism name; KeyError if none exists."""
    builders = {
        "mean": lambda: PlainMean(n_labelers, horizon),
        "median": lambda: PlainMedian(n_labelers, horizon),
        "online_weighted": lambda: PlainOnlineWeighted(n_labelers, horizon),
        "hedge": lambda: PlainHedge(n_labelers, horizon),
        "mw_linear": lambda: PlainMultiplicative(n_labelers, horizon),
        "weighted_majority_abs": lambda: PlainMultiplicative(n_labelers, horizon, loss="absolute"),
        "follow_the_leader": lambda: PlainFollowTheLeader(n_labelers, horizon),
        "em_weights": lambda: PlainEMWeights(n_labelers, horizon),
    }
    return builders[name]()


def plain_game_slots(
    rule: PlainRule, sigma: list[float], feedback_dim: int, slots: int, rng: random.Random
) -> float:
    """Play ``slots`` truthful slots of one synthetic game (Beta(2, 2) truth); return the regret."""
    platform_loss = 0.0
    labeler_loss = [0.0] * len(sigma)
    for _ in range(slots):
        truth = [rng.betavariate(2.0, 2.0) for _ in range(feedback_dim)]
        reports = [[min(1.0, max(0.0, y + s * rng.gauss(0.0, 1.0))) for y in truth] for s in sigma]
        aggregate = rule.aggregate(reports)
        rule.update(reports, truth)
        platform_loss += quadratic_loss(aggregate, truth)
        for i, r in enumerate(reports):
            labeler_loss[i] += quadratic_loss(r, truth)
    return platform_loss - min(labeler_loss)
