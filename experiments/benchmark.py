"""Throughput benchmarks, each printed with a baseline measured in the same process.

``one_learner``: slots per second of the vectorised one-learner environment
(:class:`~strategic_env.one_learner.LabelerVecEnv`, B games stepped by the batched core)
against the single-game Gymnasium environment (:class:`~strategic_env.one_learner.LabelerEnv`)
stepped in a Python loop, both with truthful actions.
"""

from __future__ import annotations

import time
from typing import Any

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

