"""Feedback spaces, projections onto them, and the accuracy losses."""

from __future__ import annotations

import numpy as np


def project_cube(x: np.ndarray) -> np.ndarray:
    """Project onto [0, 1]^K by clipping each coordinate."""
    return np.clip(x, 0.0, 1.0)


def project_simplex(x: np.ndarray) -> np.ndarray:
    """Project each vector along the last axis onto the probability simplex (Euclidean).

    Uses the sort-based algorithm of Held, Wolfe and Crowder (1974), as described by
    Duchi et al., "Efficient Projections onto the l1-Ball" (ICML 2008).
    """
    x = np.asarray(x, dtype=np.float64)
    k = x.shape[-1]
    sorted_desc = -np.sort(-x, axis=-1)
    cumulative = np.cumsum(sorted_desc, axis=-1) - 1.0
    index = np.arange(1, k + 1, dtype=np.float64)
    condition = sorted_desc - cumulative / index > 0
    # The support size is the last index where the condition holds; it is at least 1.
    rho = k - np.argmax(condition[..., ::-1], axis=-1)
    theta = np.take_along_axis(cumulative, (rho - 1)[..., None], axis=-1) / rho[..., None]
    return np.maximum(x - theta, 0.0)


def project(x: np.ndarray, space: str) -> np.ndarray:
    """Project onto the feedback space named ``space`` ("cube" or "simplex")."""
    if space == "cube":
        return project_cube(x)
    if space == "simplex":
        return project_simplex(x)
    raise ValueError(f"unknown feedback space {space!r}; expected 'cube' or 'simplex'")


def center(feedback_dim: int, space: str) -> np.ndarray:
    """Return the centre of the feedback space: 0.5 per coordinate, or uniform on the simplex."""
    value = 0.5 if space == "cube" else 1.0 / feedback_dim
    return np.full(feedback_dim, value)


def accuracy_loss(reports: np.ndarray, truth: np.ndarray, loss: str) -> np.ndarray:
    """Return the loss of each report against the truth, averaged over the K coordinates.

    ``reports`` has shape (..., K) and ``truth`` broadcasts against it. Quadratic:
    ||r - y||^2 / K. Absolute: ||r - y||_1 / K. Both lie in [0, 1] on the feedback space.
    """
    diff = reports - truth
    if loss == "quadratic":
        if diff.shape[-1] == 1:
            diff = diff[..., 0]
            return np.multiply(diff, diff, out=diff)
        return np.einsum("...k,...k->...", diff, diff) / diff.shape[-1]
    if loss == "absolute":
        if diff.shape[-1] == 1:
            return np.abs(diff[..., 0], out=diff[..., 0])
        return np.mean(np.abs(diff), axis=-1)
    raise ValueError(f"unknown loss {loss!r}; expected 'quadratic' or 'absolute'")
