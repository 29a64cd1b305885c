"""Throughput benchmarks, each printed with a baseline measured in the same process.

``mechanisms``: labeler-slots per second of the batched core for every mechanism at
N in {5, 100}, K in {1, 8} and B in {1, 1000} games, truthful labelers and synthetic
preferences drawn inside the timed loop, against a plain Python loop of the same rule
(:mod:`strategic_env.reference_rules`), and numpy's normal-draw rate as the limit.

``one_learner``: slots per second of the vectorised one-learner environment
(:class:`~strategic_env.one_learner.LabelerVecEnv`, B games stepped by the batched core)
against the single-game Gymnasium environment (:class:`~strategic_env.one_learner.LabelerEnv`)
stepped in a Python loop, both with truthful actions.
"""

from __future__ import annotations

import random
import time
from typing import Any

import numpy as np

from strategic_env.config import GameConfig
from strategic_env.game import StrategicFeedbackGame
from strategic_env.reference_rules import plain_game_slots, plain_rule

from strategic_env.one_learner import LabelerEnv, LabelerVecEnv


def _timed_slots(step: Any, slots_per_call: int, min_seconds: float) -> float:
    """Call ``step`` until ``min_seconds`` pass; return slots per second."""
    calls = 0
    started = time.perf_counter()
    while True:
        step()
        calls += 1
        elapsed = time.perf_counter() - started
        if elapsed >= min_seconds:
            return calls * slots_per_call / elapsed


def bench_one_learner(n_envs: int = 64, mechanism: str = "online_weighted", min_seconds: float = 2.0) -> dict[str, float]:
    """Measure slots per second of the vectorised and the single-game one-learner environments."""
    single = LabelerEnv(learner=4, preset="paper", mechanism=mechanism)
    observation, _ = single.reset(seed=0)
    truthful = observation[:1]

    def single_step() -> None:
        nonlocal truthful
        observation, _, terminated, _, _ = single.step(truthful)
        truthful = observation[:1]
        if terminated:
            observation, _ = single.reset()
            truthful = observation[:1]

    vectorised = LabelerVecEnv(n_envs, learner=4, seed=0, preset="paper", mechanism=mechanism)
    observations = vectorised.reset()

    def vector_step() -> None:
        nonlocal observations
        observations, _, _, _ = vectorised.step(observations[:, :1])

    single_rate = _timed_slots(single_step, 1, min_seconds)
    vector_rate = _timed_slots(vector_step, n_envs, min_seconds)
    return {"n_envs": n_envs, "single_slots_per_s": single_rate, "vectorised_slots_per_s": vector_rate,
            "ratio": vector_rate / single_rate}


def format_one_learner(result: dict[str, float], mechanism: str) -> str:
    """Return the benchmark's figures as text."""
    return (
        f"one-learner environment, mechanism {mechanism}, paper preset, truthful actions\n"
        f"  LabelerEnv (1 game, Python loop):      {result['single_slots_per_s']:>12,.0f} slots/s\n"
        f"  LabelerVecEnv ({result['n_envs']} games, batched core): {result['vectorised_slots_per_s']:>12,.0f} slots/s\n"
        f"  ratio: {result['ratio']:.1f}x"
    )



BENCH_GRID = tuple((n, k, b) for n in (5, 100) for k in (1, 8) for b in (1, 1000))


def _bench_config(mechanism: str, n: int, k: int) -> GameConfig:
    sigma = tuple(float(s) for s in np.linspace(0.05, 0.25, n))
    return GameConfig(n_labelers=n, feedback_dim=k, horizon=10**7, noise_sigma=sigma, mechanism=mechanism)


def normal_draws_per_second(shape: tuple[int, ...], min_seconds: float) -> float:
    """Return how many standard normal values numpy's generator draws per second at ``shape``."""
    rng = np.random.default_rng(0)
    return _timed_slots(lambda: rng.standard_normal(shape), int(np.prod(shape)), min_seconds)


def numpy_labeler_slots_per_second(mechanism: str, n: int, k: int, b: int, min_seconds: float) -> float:
    """Return labeler-slots per second of the batched core: B truthful games of N labelers, K coordinates.

    The synthetic preferences are drawn inside the timed loop, utilities are not computed
    (the regret study does not need them).
    """
    game = StrategicFeedbackGame(_bench_config(mechanism, n, k), batch_size=b, compute_utilities=False)
    game.reset(0)
    for _ in range(3):
        game.step(game.preferences)  # Warm-up: first blocks of draws and first updates.
    return _timed_slots(lambda: game.step(game.preferences), b * n, min_seconds)


def plain_labeler_slots_per_second(mechanism: str, n: int, k: int, min_seconds: float) -> float | None:
    """Return labeler-slots per second of the plain Python loop of the same rule, or None if none exists."""
    try:
        rule = plain_rule(mechanism, n, 10**7)
    except KeyError:
        return None
    sigma = [float(s) for s in np.linspace(0.05, 0.25, n)]
    rng = random.Random(0)
    slots = max(1, 2000 // n)
    return _timed_slots(lambda: plain_game_slots(rule, sigma, k, slots, rng), slots * n, min_seconds)


def bench_mechanisms(
    mechanisms: tuple[str, ...], grid: tuple[tuple[int, int, int], ...] = BENCH_GRID, min_seconds: float = 0.5
) -> list[dict[str, Any]]:
    """Measure every mechanism on every (N, K, B) cell, with the plain loop and the normal-draw limit."""
    rows = []
    plain_cache: dict[tuple[str, int, int], float | None] = {}
    for mechanism in mechanisms:
        for n, k, b in grid:
            if (mechanism, n, k) not in plain_cache:
                plain_cache[(mechanism, n, k)] = plain_labeler_slots_per_second(mechanism, n, k, min_seconds)
            fast = numpy_labeler_slots_per_second(mechanism, n, k, b, min_seconds)
            plain = plain_cache[(mechanism, n, k)]
            rows.append(
                {
                    "mechanism": mechanism, "n": n, "k": k, "batch": b, "labeler_slots_per_s": fast,
                    "plain_labeler_slots_per_s": plain, "ratio": None if plain is None else fast / plain,
                }
            )
    return rows


def format_mechanisms(rows: list[dict[str, Any]], normal_rate: float) -> str:
    """Return the mechanism benchmark as a text table."""
    lines = [
        f"numpy standard normal draws at (B, N, K) = (1000, 100, 1): {normal_rate / 1e6:,.1f} million values/s "
        "(the limit: a labeler-slot needs one draw per coordinate)",
        f"{'mechanism':<22} {'N':>4} {'K':>3} {'B':>5} {'batched core':>16} {'plain loop':>14} {'ratio':>8}",
    ]
    for row in rows:
        plain = row["plain_labeler_slots_per_s"]
        plain_text = "n/a" if plain is None else f"{plain / 1e6:,.3f} M/s"
        if row["ratio"] is None:
            ratio_text = "n/a"
        elif row["ratio"] < 10:
            ratio_text = f"{row['ratio']:.2g}x"
        else:
            ratio_text = f"{row['ratio']:,.0f}x"
        lines.append(
            f"{row['mechanism']:<22} {row['n']:>4} {row['k']:>3} {row['batch']:>5} "
            f"{row['labeler_slots_per_s'] / 1e6:>12,.2f} M/s {plain_text:>14} {ratio_text:>8}"
        )
    lines.append("(labeler-slots per second; plain loop: one game in Python floats and lists, same rule and draws)")
    return "\n".join(lines)
