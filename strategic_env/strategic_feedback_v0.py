"""The strategic feedback environment under its versioned PettingZoo name.

Import it as ``from strategic_env import strategic_feedback_v0``; the suffix is bumped on any
change that can alter learning results. Its documentation is that of
:mod:`strategic_env.pettingzoo_env`.
"""

from strategic_env.pettingzoo_env import env, parallel_env, raw_env

__all__ = ["env", "parallel_env", "raw_env"]
