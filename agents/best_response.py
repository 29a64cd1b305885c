"""Closed-form myopic best response under linear aggregation rules.

A labeler i with influence utility -||a - p_i||^2 / K facing a linear rule a = sum_j v_j r_j
(weights v renormalised over the asked labelers and known before reporting) minimises
E[||v_i r_i + sum_{j != i} v_j r_j - p_i||^2 | p_i]. The objective is a convex quadratic
that separates over coordinates, so on the cube the constrained optimum is

    r_i = clip((p_i - sum_{j != i} v_j E[r_j | p_i]) / v_i, 0, 1).

With truthful others, E[r_j | p_i] = E[p_j | p_i], which needs a model of how the others'
preferences relate to one's own:

* :class:`SyntheticConditionalMeans` computes it from the game's model (Beta prior on the
  truth, clipped Gaussian preferences with fixed types) by numerical quadrature over the
  truth;
* :class:`EmpiricalConditionalMeans` estimates it from a real data set: the mean label of
  annotator j on the items where annotator i gave a label in the same bin.

Under ``mean`` and truthful others, the rule's weights never move, so this myopic best
response is the exact best response to the whole discounted game. Under learning rules it
ignores the effect of today's report on tomorrow's weights, so it is only a lower bound on
the best deviation gain.
"""

from __future__ import annotations

import numpy as np
from scipy import special, stats

from strategic_env.config import GameConfig
from strategic_env.game import StrategicFeedbackGame
from strategic_env.preferences import LabelTable
from strategic_env.spaces import project

TRUTH_GRID_SIZE = 2000
PREFERENCE_GRID_SIZE = 1001
# A noise level below this is treated as this, so that the likelihood stays a density.
MIN_QUADRATURE_SIGMA = 1e-3


def expected_clipped_normal(mean: np.ndarray, sigma: float) -> np.ndarray:
    """Return E[clip(X, 0, 1)] for X ~ N(mean, sigma^2)."""
    if sigma == 0:
        return np.clip(mean, 0.0, 1.0)

    def expected_excess(threshold: float) -> np.ndarray:
        # E[max(X - c, 0)] = (mean - c) Phi(z) + sigma phi(z), z = (mean - c) / sigma.
        z = (mean - threshold) / sigma
        return (mean - threshold) * special.ndtr(z) + sigma * np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi)

    return expected_excess(0.0) - expected_excess(1.0)


class SyntheticConditionalMeans:
    """E[p_j | p_i] under the synthetic model of a configuration on the cube, by quadrature.

    For each labeler i and coordinate k, the posterior of the truth y given p_i is computed
    on a grid of y from the Beta prior and the clipped-Gaussian likelihood. That likelihood
    is a density inside (0, 1) and a normal tail mass at 0 and at 1. The conditional means are tabulated on a grid
    of p_i and interpolated linearly; p_i = 0 and p_i = 1 have their own exact entries.
    """

    def __init__(self, config: GameConfig) -> None:
        if config.space != "cube":
            raise ValueError(f"invalid space={config.space!r}: the closed-form best response supports only the cube")
        if not config.fixed_types:
            raise ValueError(
                "the closed-form best response needs fixed labeler types: set noise_sigma (and bias, or bias_scale = 0)"
            )
        n, k = config.n_labelers, config.feedback_dim
        sigma = np.asarray(config.noise_sigma, dtype=np.float64)
        bias = np.asarray(config.bias, dtype=np.float64) if config.bias is not None else np.zeros((n, k))
        a, b = config.truth_beta
        truth = (np.arange(TRUTH_GRID_SIZE) + 0.5) / TRUTH_GRID_SIZE
        log_prior = stats.beta.logpdf(truth, a, b)
        self.interior = np.linspace(0.0, 1.0, PREFERENCE_GRID_SIZE)[1:-1]
        # table[i, k, :, j]: E[p_j | p_i] at p_i = 0, the interior grid points, then 1.
        self.table = np.zeros((n, k, len(self.interior) + 2, n))
        for coordinate in range(k):
            means = np.stack(
                [expected_clipped_normal(truth + bias[j, coordinate], sigma[j]) for j in range(n)], axis=1
            )
            for i in range(n):
                s = max(sigma[i], MIN_QUADRATURE_SIGMA)
                shift = truth + bias[i, coordinate]
                log_like = np.concatenate(
                    [
                        special.log_ndtr((0.0 - shift) / s)[None, :],
                        stats.norm.logpdf((self.interior[:, None] - shift[None, :]) / s),
                        special.log_ndtr((shift - 1.0) / s)[None, :],
                    ]
                )
                log_post = log_like + log_prior[None, :]
                log_post -= log_post.max(axis=1, keepdims=True)
                post = np.exp(log_post)
                post /= post.sum(axis=1, keepdims=True)
                self.table[i, coordinate] = post @ means

    def __call__(self, labeler: int, preference: np.ndarray) -> np.ndarray:
        """Return E[p_j | p_i = preference] for every j, shape (B, N, K), from preference (B, K).

        The entry j = i is the preference itself.
        """
        b, k = preference.shape
        n = self.table.shape[0]
        out = np.empty((b, n, k))
        for coordinate in range(k):
            table = self.table[labeler, coordinate]
            p = preference[:, coordinate]
            interior = np.stack(
                [np.interp(p, self.interior, table[1:-1, j]) for j in range(n)], axis=1
            )
            value = np.where((p <= 0.0)[:, None], table[0][None, :], interior)
            value = np.where((p >= 1.0)[:, None], table[-1][None, :], value)
            out[:, :, coordinate] = value
        out[:, labeler] = preference
        return out


class EmpiricalConditionalMeans:
    """E[p_j | p_i] estimated from a data set's co-labelled items.

    Labels with at most 11 distinct values are their own bins; continuous labels fall into
    10 equal-width bins of [0, 1]. A pair with no co-labelled item in a bin falls back to
    annotator j's overall mean label.
    """

    def __init__(self, table: LabelTable) -> None:
        labels = table.labels
        n = table.n_workers
        values = np.unique(labels[~np.isnan(labels)])
        self.discrete = len(values) <= 11
        self.edges = values if self.discrete else np.linspace(0.0, 1.0, 11)
        n_bins = len(self.edges) if self.discrete else 10
        overall = np.nanmean(labels, axis=0)
        overall = np.where(np.isnan(overall), 0.5, overall)
        self.table = np.broadcast_to(overall, (n, n_bins, n)).copy()
        for i in range(n):
            answered = ~np.isnan(labels[:, i])
            bins = self._bin(labels[answered, i])
            others = labels[answered]
            for c in range(n_bins):
                rows = others[bins == c]
                if len(rows) == 0:
                    continue
                counts = np.sum(~np.isnan(rows), axis=0)
                sums = np.nansum(rows, axis=0)
                self.table[i, c] = np.where(counts > 0, sums / np.maximum(counts, 1), overall)

    def _bin(self, values: np.ndarray) -> np.ndarray:
        if self.discrete:
            return np.abs(values[:, None] - self.edges[None, :]).argmin(axis=1)
        return np.clip(np.digitize(values, self.edges[1:-1]), 0, 9)

    def __call__(self, labeler: int, preference: np.ndarray) -> np.ndarray:
        """Return E[p_j | p_i = preference] for every j, shape (B, N, 1), from preference (B, 1).

        The entry j = i is the preference itself.
        """
        out = self.table[labeler, self._bin(preference[:, 0])][:, :, None]
        out[:, labeler] = preference
        return out


class MyopicBestResponse:
    """Fixed policy: the closed-form myopic best response to truthful others under a linear rule.

    Args:
        conditional_means: a model of E[p_j | p_i] (synthetic or empirical).

    The policy reads the mechanism's weights for the slot (known to the platform and assumed
    known to the labeler) and who is asked. A labeler whose weight in the slot is 0 has no
    influence and reports truthfully.
    """

    def __init__(self, conditional_means: SyntheticConditionalMeans | EmpiricalConditionalMeans) -> None:
        self.conditional_means = conditional_means

    def __call__(self, game: StrategicFeedbackGame, labelers: np.ndarray) -> np.ndarray:
        mechanism = game.mechanism
        if not mechanism.linear:
            raise ValueError(
                f"the closed-form best response needs a linear mechanism; {mechanism.name or type(mechanism).__name__!r} is not"
            )
        weights = mechanism.aggregation_weights(game.asked)
        preferences = game.preferences
        reports = np.empty((game.batch_size, len(labelers), game.feedback_dim))
        for column, i in enumerate(np.asarray(labelers)):
            expected = self.conditional_means(int(i), preferences[:, i])
            others_weights = weights.copy()
            others_weights[:, i] = 0.0
            others_part = np.einsum("bn,bnk->bk", others_weights, expected)
            own = weights[:, i][:, None]
            safe = np.where(own > 0, own, 1.0)
            best = project((preferences[:, i] - others_part) / safe, game.config.space)
            reports[:, column] = np.where(own > 0, best, preferences[:, i])
        return reports


def myopic_best_response_for(game: StrategicFeedbackGame) -> MyopicBestResponse:
    """Build the closed-form myopic best response for a game's synthetic model or data set."""
    source = game.source
    table = getattr(source, "table", None)
    if table is not None:
        return MyopicBestResponse(EmpiricalConditionalMeans(table))
    return MyopicBestResponse(SyntheticConditionalMeans(game.config))
