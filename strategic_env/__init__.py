"""A benchmark of strategic human feedback in online RLHF.

N labelers report preference feedback to a platform that aggregates it with a mechanism;
the labelers may misreport. The game runs batched in numpy (:mod:`strategic_env.game`) and
is exposed as a PettingZoo parallel environment (:func:`parallel_env`), its AEC form
(:func:`env`, :func:`raw_env`) and a one-learner Gymnasium environment (:class:`LabelerEnv`,
registered as ``strategic_env/Labeler-v0``), with a Stable-Baselines3 vectorised form on the
batched core (:class:`LabelerVecEnv`).
"""

import gymnasium

from strategic_env.config import ConfigError, GameConfig, load_config, preset
from strategic_env.game import StrategicFeedbackGame
from strategic_env.mechanisms import Mechanism, make as make_mechanism, register as register_mechanism
from strategic_env.one_learner import LabelerEnv, LabelerVecEnv
from strategic_env.pettingzoo_env import StrategicFeedbackParallelEnv, env, parallel_env, raw_env
from strategic_env.preferences import LabelTable, ReplaySource, SyntheticSource
from strategic_env import strategic_feedback_v0  # noqa: E402  (the versioned PettingZoo name)

__all__ = [
    "ConfigError",
    "GameConfig",
    "LabelTable",
    "LabelerEnv",
    "LabelerVecEnv",
    "Mechanism",
    "ReplaySource",
    "StrategicFeedbackGame",
    "StrategicFeedbackParallelEnv",
    "SyntheticSource",
    "env",
    "load_config",
    "make_mechanism",
    "parallel_env",
    "preset",
    "raw_env",
    "register_mechanism",
    "strategic_feedback_v0",
]

__version__ = "0.1.0"

GYM_ENV_ID = "strategic_env/Labeler-v0"
if GYM_ENV_ID not in gymnasium.registry:
    gymnasium.register(id=GYM_ENV_ID, entry_point="strategic_env.one_learner:LabelerEnv")
