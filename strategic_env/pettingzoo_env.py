"""# Strategic Feedback

| Import               | `from strategic_env import strategic_feedback_v0`          |
|----------------------|-------------------------------------------------------------|
| Actions              | Continuous                                                  |
| Parallel API         | Yes (native)                                                |
| Manual Control       | No                                                          |
| Agents               | `agents= ['labeler_0', ..., 'labeler_{N-1}']`               |
| Number of agents     | N (5 in the `paper` preset; set by the data set in replay)  |
| Action Shape         | (K,)                                                        |
| Action Values        | [0, 1]^K (`report` mode) or [-1, 1]^K (`shift` mode)        |
| Observation Shape    | (F,), F = 3K + 4 with the default features                  |
| Observation Values   | [0, 1], float32                                             |

N human labelers give preference feedback to a platform over T slots. In each slot every
labeler holds a private preference p in the feedback space Y (K = 1: the probability that
response A beats response B; K > 1: scores in [0, 1]^K or a distribution on the simplex)
and reports r, possibly misreporting. The platform aggregates the reports of the asked
labelers with a mechanism (`mean`, `median`, `online_weighted`, or a user's rule). Then
the truth y is revealed with probability rho and the mechanism updates its weights from
each labeler's accuracy loss l(r, y). A labeler wants the aggregate close to its own
preference, so exaggerating can pay under averaging; weighted rules make accuracy pay.

## Arguments

``` python
from strategic_env import strategic_feedback_v0

env = strategic_feedback_v0.parallel_env(preset="paper", mechanism="mean", horizon=1000)
observations, infos = env.reset(seed=0)
while env.agents:
    actions = {agent: observations[agent][:1] for agent in env.agents}  # truthful reports
    observations, rewards, terminations, truncations, infos = env.step(actions)
```

`preset`: the named configuration to start from (`paper`, `diverse`).

`config`: a `GameConfig` to start from instead of a preset.

`source`: a preference source; `ReplaySource(load_dataset(...))` replays real annotations
and then sets N and K.

`mechanism`: a mechanism name, an import path `package.module:Class`, or a `Mechanism`
instance (a name is built with `mechanism_params`).

Every other keyword is a `GameConfig` field (`horizon`, `noise_sigma`, `bias`,
`action_mode`, `utility`, `discount`, `feedback_per_slot`, `observation_features`, ...).

## Observation Space

A float32 vector of the selected features, always in this order (default: all but `type`):

| Feature              | Width | Min | Max | Meaning                                            |
|----------------------|-------|-----|-----|----------------------------------------------------|
| `preference`         | K     | 0   | 1   | own private preference p_{i,t}                     |
| `weight`             | 1     | 0   | 1   | own current weight w_{i,t} in the mechanism        |
| `asked`              | 1     | 0   | 1   | 1 if asked for feedback in this slot               |
| `time_left`          | 1     | 0   | 1   | (T - t) / T at slot t = 0..T-1                     |
| `previous_aggregate` | K     | 0   | 1   | a_{t-1} (the centre of Y at t = 0)                 |
| `previous_truth`     | K     | 0   | 1   | y_{t-1} if revealed, else the centre of Y          |
| `revealed`           | 1     | 0   | 1   | 1 if y_{t-1} was revealed                          |
| `type`               | K + 1 | -1, 0 | 1, 5 | own bias beta_i (K values) and noise sigma_i     |

No observation contains another labeler's private type or preference.

## Action Space

A Box of shape (K,). In `report` mode the action is the report, projected onto Y (clipping
on the cube, Euclidean projection on the simplex). In `shift` mode the action is clipped to
[-1, 1]^K and the report is P_Y(p + action), so the zero action is truthful. Actions with
NaN or infinite values raise ValueError. Reports of labelers who are not asked are ignored.

## Rewards

The per-slot utility: `influence` (default) -||a_t - p_{i,t}||^2 / K, in [-1, 0];
`reputation` w_{i,t+1} - w_{i,t}; `mixed` lambda influence + (1 - lambda) reputation. A
labeler's objective is the sum of rewards discounted by `discount`. Under data set replay
a labeler who did not label an item receives 0 influence for its slot.

## Episode End

The horizon T is part of the game: after the last slot (T, or the data set's number of
items if smaller) every agent is terminated. Truncation is never set by the environment;
wrap it for an external cap.

## Infos

Each agent's info holds `report`, `aggregate`, `truth`, `revealed` and `weight` of the
slot just played (empty after reset).

## Version History

* v0: Initial release (0.1.0).
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import gymnasium
import numpy as np
from pettingzoo import ParallelEnv
from pettingzoo.utils.conversions import parallel_to_aec, parallel_to_aec_wrapper

from strategic_env.config import ConfigError, GameConfig, preset as make_preset
from strategic_env.game import StrategicFeedbackGame
from strategic_env.mechanisms import Mechanism
from strategic_env.preferences import PreferenceSource

ENV_NAME = "strategic_feedback_v0"

logger = logging.getLogger(__name__)


def build_config(config: GameConfig | None = None, preset: str | None = None, **overrides: Any) -> GameConfig:
    """Return ``config`` (or the named preset, default ``paper``) with field overrides applied."""
    if config is not None and preset is not None:
        raise ValueError("pass either config or preset, not both")
    base = config if config is not None else make_preset(preset or "paper")
    return base.replace(**overrides) if overrides else base


def build_game(
    *,
    config: GameConfig | None = None,
    preset: str | None = None,
    source: PreferenceSource | None = None,
    mechanism: str | Mechanism | None = None,
    batch_size: int = 1,
    record_history: bool = False,
    **overrides: Any,
) -> StrategicFeedbackGame:
    """Build a batched game from the keyword arguments that the environments accept."""
    mechanism_object = None
    if isinstance(mechanism, Mechanism):
        mechanism_object = mechanism
    elif mechanism is not None:
        overrides["mechanism"] = mechanism
    game_config = build_config(config, preset, **overrides)
    if mechanism_object is not None:
        # Record the instance's rule in the configuration; its parameters live on the instance.
        cls = type(mechanism_object)
        name = mechanism_object.name or f"{cls.__module__}:{cls.__qualname__}"
        try:
            game_config = game_config.replace(mechanism=name, mechanism_params={})
        except ConfigError:
            logger.warning("the configuration cannot name mechanism %s (not importable); it keeps %r",
                           cls.__qualname__, game_config.mechanism)
    return StrategicFeedbackGame(
        game_config,
        batch_size=batch_size,
        source=source,
        mechanism=mechanism_object,
        record_history=record_history,
    )


class StrategicFeedbackParallelEnv(ParallelEnv):
    """The strategic feedback game as a PettingZoo parallel environment (one game)."""

    metadata = {"name": ENV_NAME, "render_modes": [], "is_parallelizable": True}

    def __init__(self, render_mode: str | None = None, **kwargs: Any) -> None:
        if render_mode is not None:
            raise ValueError(f"invalid render_mode={render_mode!r}: this environment has no rendering; pass None")
        self.render_mode = render_mode
        self.game = build_game(batch_size=1, **kwargs)
        self.config = self.game.config
        # Agent ids are always labeler_i; a data set's annotator ids are kept in labeler_names.
        self.possible_agents = [f"labeler_{i}" for i in range(self.game.n_labelers)]
        self.labeler_names = dict(zip(self.possible_agents, self.game.labeler_names))
        self.agent_index = {agent: i for i, agent in enumerate(self.possible_agents)}
        self.agents: list[str] = []
        k = self.game.feedback_dim
        self._observation_space = gymnasium.spaces.Box(
            self.game.observation_low, self.game.observation_high, dtype=np.float32
        )
        low = 0.0 if self.config.action_mode == "report" else -1.0
        self._action_space = gymnasium.spaces.Box(low, 1.0, shape=(k,), dtype=np.float32)

    @functools.lru_cache(maxsize=None)
    def observation_space(self, agent: str) -> gymnasium.spaces.Box:
        self._check_agent(agent)
        return self._observation_space

    @functools.lru_cache(maxsize=None)
    def action_space(self, agent: str) -> gymnasium.spaces.Box:
        self._check_agent(agent)
        return self._action_space

    def _check_agent(self, agent: str) -> None:
        if agent not in self.agent_index:
            raise KeyError(f"unknown agent {agent!r}; agents are {', '.join(self.possible_agents)}")

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        if seed is not None or not hasattr(self, "_seed_sequence"):
            self._seed_sequence = np.random.SeedSequence(seed)
        # Each reset without a seed starts the next child stream, so episodes differ.
        self.game.reset(self._seed_sequence.spawn(1)[0])
        self.agents = self.possible_agents[:]
        observations = self.game.observe()[0]
        return (
            {agent: observations[i] for i, agent in enumerate(self.agents)},
            {agent: {} for agent in self.agents},
        )

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        if not hasattr(self, "_seed_sequence"):
            raise RuntimeError("the environment has not been reset; call reset() before step()")
        if not self.agents:
            raise RuntimeError("the episode is over; call reset() before step()")
        missing = [agent for agent in self.agents if agent not in actions]
        if missing:
            raise ValueError(f"missing actions for {', '.join(missing)}; every live agent must act in each slot")
        unknown = [agent for agent in actions if agent not in self.agent_index]
        if unknown:
            raise ValueError(f"actions for unknown agents {', '.join(map(str, unknown))}")
        k = self.game.feedback_dim
        stacked = np.empty((1, len(self.possible_agents), k))
        for agent, i in self.agent_index.items():
            action = np.asarray(actions[agent], dtype=np.float64)
            if action.size != k:
                raise ValueError(f"action of {agent} has {action.size} values, expected {k}: {action!r}")
            if not np.all(np.isfinite(action)):
                raise ValueError(f"action of {agent} must be finite; got {action.tolist()}")
            stacked[0, i] = action.reshape(k)
        reports = self.game.actions_to_reports(stacked)
        result = self.game.step(reports)

        # After the last slot the observation repeats that slot's preference with time_left 0.
        observations = self.game.observe()[0]
        weights = self.game.weights[0]
        rewards = {agent: float(result.utilities[0, i]) for agent, i in self.agent_index.items()}
        terminations = {agent: result.done for agent in self.agents}
        truncations = {agent: False for agent in self.agents}
        infos = {
            agent: {
                "report": result.reports[0, i].copy(),
                "aggregate": result.aggregate[0].copy(),
                "truth": result.truth[0].copy(),
                "revealed": bool(result.revealed[0]),
                "weight": float(weights[i]),
            }
            for agent, i in self.agent_index.items()
        }
        obs = {agent: observations[i] for agent, i in self.agent_index.items()}
        if result.done:
            self.agents = []
        return obs, rewards, terminations, truncations, infos

    def render(self) -> None:
        return None

    def close(self) -> None:
        return None

    def state(self) -> np.ndarray:
        """Return the global state: all preferences, weights and public features, float32."""
        game = self.game
        return np.concatenate(
            [game.preferences[0].ravel(), game.weights[0], game.previous_aggregate[0], game.previous_truth[0]]
        ).astype(np.float32)


def parallel_env(**kwargs: Any) -> StrategicFeedbackParallelEnv:
    """Create the parallel environment; keywords as in the module documentation."""
    return StrategicFeedbackParallelEnv(**kwargs)


def raw_env(**kwargs: Any) -> parallel_to_aec_wrapper:
    """Create the AEC environment without the order-enforcing wrapper."""
    return parallel_to_aec_wrapper(parallel_env(**kwargs))


def env(**kwargs: Any):
    """Create the AEC environment (the parallel game in turn order, order-enforced)."""
    return parallel_to_aec(parallel_env(**kwargs))
