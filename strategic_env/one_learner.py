"""One-learner views of the game: one labeler learns, the others follow fixed policies.

:class:`LabelerEnv` is a Gymnasium environment over one game. :class:`LabelerVecEnv` is a
Stable-Baselines3 ``VecEnv`` over B games stepped together by the batched core, which is how
deviators are trained at speed. Both share :class:`OneLearnerGame`, so they play the same
game slot by slot.

A fixed policy is any callable ``policy(game, labelers) -> reports`` that returns the
reports (B, len(labelers), K) of the given labelers in the current slot of the batched
``game``. It may read the game's public state and those labelers' private preferences.
Without one, the other labelers report truthfully.

Spaces, rewards and episode end are those of the parallel environment
(:mod:`strategic_env.pettingzoo_env`), seen by the learning labeler: its observation vector,
its action, its per-slot utility as reward, and termination after the last slot (never
truncation).
"""

from __future__ import annotations

from typing import Any, Protocol

import gymnasium
import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn

from strategic_env.game import StepResult, StrategicFeedbackGame
from strategic_env.pettingzoo_env import build_game


class LabelerPolicy(Protocol):
    """A fixed policy: the reports (B, n, K) of ``labelers`` in the game's current slot."""

    def __call__(self, game: StrategicFeedbackGame, labelers: np.ndarray) -> np.ndarray: ...


def truthful_reports(game: StrategicFeedbackGame, labelers: np.ndarray) -> np.ndarray:
    """Report the private preference."""
    return game.preferences[:, labelers]


class OneLearnerGame:
    """A batched game in which labeler ``learner`` acts and the others follow ``others``."""

    def __init__(self, game: StrategicFeedbackGame, learner: int, others: LabelerPolicy | None) -> None:
        n = game.n_labelers
        if isinstance(learner, bool) or not isinstance(learner, (int, np.integer)) or not 0 <= learner < n:
            raise ValueError(f"invalid learner={learner!r}: expected a labeler index in [0, {n - 1}]")
        self.game = game
        self.learner = int(learner)
        self.others = np.array([i for i in range(n) if i != learner], dtype=np.int64)
        self.others_policy: LabelerPolicy = others if others is not None else truthful_reports
        k = game.feedback_dim
        self.observation_space = gymnasium.spaces.Box(game.observation_low, game.observation_high, dtype=np.float32)
        low = 0.0 if game.config.action_mode == "report" else -1.0
        self.action_space = gymnasium.spaces.Box(low, 1.0, shape=(k,), dtype=np.float32)

    def observe(self) -> np.ndarray:
        """Return the learner's observations (B, F)."""
        return self.game.observe()[:, self.learner]

    def play(self, actions: np.ndarray) -> StepResult:
        """Play one slot with the learner's actions (B, K) and the others' fixed policy."""
        game = self.game
        actions = np.asarray(actions, dtype=np.float64).reshape(game.batch_size, 1, game.feedback_dim)
        reports = np.empty((game.batch_size, game.n_labelers, game.feedback_dim))
        reports[:, [self.learner]] = game.actions_to_reports(actions, [self.learner])
        if len(self.others):
            reports[:, self.others] = self.others_policy(game, self.others)
        return game.step(reports)


class LabelerEnv(gymnasium.Env):
    """Gymnasium environment of one learning labeler; the others follow fixed policies.

    Args:
        learner: index of the learning labeler (agent ``labeler_{learner}``).
        others: fixed policy of the other labelers; truthful by default.
        render_mode: must be None (no rendering).
        **kwargs: game arguments as for ``strategic_env.parallel_env`` (``preset``,
            ``config``, ``source``, ``mechanism`` and GameConfig fields).

    Example:
        >>> from strategic_env import LabelerEnv
        >>> env = LabelerEnv(learner=4, preset="paper", mechanism="mean", horizon=100)
        >>> observation, info = env.reset(seed=0)
        >>> observation, reward, terminated, truncated, info = env.step(observation[:1])
    """

    metadata = {"render_modes": []}

    def __init__(
        self, learner: int = 0, others: LabelerPolicy | None = None, render_mode: str | None = None, **kwargs: Any
    ) -> None:
        if render_mode is not None:
            raise ValueError(f"invalid render_mode={render_mode!r}: this environment has no rendering; pass None")
        self.render_mode = render_mode
        self.core = OneLearnerGame(build_game(batch_size=1, **kwargs), learner, others)
        self.game = self.core.game
        self.observation_space = self.core.observation_space
        self.action_space = self.core.action_space

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        # Gymnasium's np_random is seeded from ``seed``; the game draws its own stream from it.
        self.game.reset(int(self.np_random.integers(2**63 - 1)))
        return self.core.observe()[0], {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self.game.done:
            raise RuntimeError("the episode is over; call reset() before step()")
        result = self.core.play(np.asarray(action)[None])
        learner = self.core.learner
        info = {
            "report": result.reports[0, learner].copy(),
            "aggregate": result.aggregate[0].copy(),
            "weight": float(self.game.weights[0, learner]),
        }
        return self.core.observe()[0], float(result.utilities[0, learner]), result.done, False, info


class LabelerVecEnv(VecEnv):
    """Stable-Baselines3 VecEnv of ``n_envs`` one-learner games stepped by the batched core.

    All games share the horizon, so they end together and are reset together. The info of
    each game at the end contains ``terminal_observation`` and ``episode`` (``r``: the
    undiscounted return, ``l``: the length), as SB3's Monitor would write them.

    Args:
        n_envs: number of games B.
        learner, others: as for :class:`LabelerEnv`.
        seed: seed of the first reset; later resets continue the same seed sequence.
        **kwargs: game arguments as for ``strategic_env.parallel_env``.
    """

    def __init__(
        self,
        n_envs: int,
        learner: int = 0,
        others: LabelerPolicy | None = None,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        self.render_mode = None
        self.core = OneLearnerGame(build_game(batch_size=n_envs, **kwargs), learner, others)
        self.game = self.core.game
        self._seed_sequence = np.random.SeedSequence(seed)
        self._actions = np.zeros((n_envs, self.game.feedback_dim))
        self._returns = np.zeros(n_envs)
        super().__init__(n_envs, self.core.observation_space, self.core.action_space)

    def reset(self) -> np.ndarray:
        if self._seeds[0] is not None:
            self._seed_sequence = np.random.SeedSequence(self._seeds[0])
        self._reset_seeds()
        self._reset_options()
        self.game.reset(self._seed_sequence.spawn(1)[0])
        self._returns[:] = 0.0
        return self.core.observe()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions, dtype=np.float64)

    def step_wait(self) -> VecEnvStepReturn:
        result = self.core.play(self._actions)
        rewards = result.utilities[:, self.core.learner].astype(np.float32)
        self._returns += rewards
        observations = self.core.observe()
        dones = np.full(self.num_envs, result.done)
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if result.done:
            for i in range(self.num_envs):
                infos[i]["terminal_observation"] = observations[i]
                infos[i]["TimeLimit.truncated"] = False
                infos[i]["episode"] = {"r": float(self._returns[i]), "l": self.game.horizon, "t": 0.0}
            self.game.reset(self._seed_sequence.spawn(1)[0])
            self._returns[:] = 0.0
            observations = self.core.observe()
        return observations, rewards, dones, infos

    def close(self) -> None:
        return None

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [getattr(self, attr_name) for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any) -> list:
        return [getattr(self, method_name)(*method_args, **method_kwargs) for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type[gymnasium.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]
