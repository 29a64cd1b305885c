"""Tests of the environments: the PettingZoo parallel and AEC forms and the one-learner wrappers.

The PettingZoo checks run through PettingZoo's own test utilities, and the one-learner
Gymnasium environment through the checkers of Gymnasium and Stable-Baselines3.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gymnasium_check_env
from pettingzoo.test import api_test, parallel_api_test, seed_test
from pettingzoo.utils.conversions import parallel_to_aec
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import strategic_env
from strategic_env import LabelerEnv, LabelerVecEnv, ReplaySource, parallel_env, strategic_feedback_v0
from strategic_env.config import preset
from strategic_env.datasets import load_pandalm, load_snow_rte
from strategic_env.pettingzoo_env import StrategicFeedbackParallelEnv

EnvFactory = Callable[[], StrategicFeedbackParallelEnv]

# Keyword arguments of the synthetic environments under test, with short horizons.
SYNTHETIC_CASES = {
    "paper": {"preset": "paper", "horizon": 100},
    "diverse": {"preset": "diverse", "horizon": 100},
    "simplex_k3": {"preset": "paper", "feedback_dim": 3, "space": "simplex", "horizon": 100},
    "cube_k3": {"preset": "paper", "feedback_dim": 3, "horizon": 100},
    "shift": {"preset": "paper", "action_mode": "shift", "horizon": 100},
    "partial_median": {"preset": "paper", "mechanism": "median", "feedback_per_slot": 3, "horizon": 100},
    "type_features": {
        "preset": "diverse",
        "observation_features": ("preference", "weight", "time_left", "type"),
        "reveal_prob": 0.5,
        "horizon": 100,
    },
}
DATASET_CASES = ("pandalm", "snow_rte")


@pytest.fixture(params=[*SYNTHETIC_CASES, *DATASET_CASES])
def make_env(request: pytest.FixtureRequest) -> EnvFactory:
    """Return a factory of fresh parallel environments for one configuration."""
    name = request.param
    if name == "pandalm":
        # The horizon exceeds the 999 items, so an episode replays the whole data set.
        table = load_pandalm(request.getfixturevalue("pandalm_dir"))
        return lambda: parallel_env(source=ReplaySource(table), mechanism="online_weighted", horizon=1000)
    if name == "snow_rte":
        # The dense panel has 280 items, so the whole data set is one episode.
        table = load_snow_rte(request.getfixturevalue("snow_dir"))
        return lambda: parallel_env(source=ReplaySource(table), mechanism="online_weighted")
    kwargs = SYNTHETIC_CASES[name]
    return lambda: parallel_env(**kwargs)


def seeded_actions(env: StrategicFeedbackParallelEnv, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Draw one action per live agent, uniformly in its action space, from ``rng``."""
    actions = {}
    for agent in env.agents:
        space = env.action_space(agent)
        actions[agent] = rng.uniform(space.low, space.high).astype(np.float32)
    return actions


def play_episode(env: StrategicFeedbackParallelEnv, seed: int, action_seed: int = 0) -> list[tuple]:
    """Play a whole episode with seeded random actions and return the outputs of every step."""
    rng = np.random.default_rng(action_seed)
    observations, infos = env.reset(seed=seed)
    trajectory = [(observations, infos)]
    while env.agents:
        trajectory.append(env.step(seeded_actions(env, rng)))
    return trajectory


def assert_same_outputs(first, second) -> None:
    if isinstance(first, dict):
        assert first.keys() == second.keys()
        for key in first:
            assert_same_outputs(first[key], second[key])
    elif isinstance(first, (tuple, list)):
        assert len(first) == len(second)
        for left, right in zip(first, second):
            assert_same_outputs(left, right)
    else:
        np.testing.assert_array_equal(first, second)


def time_left_index(env: StrategicFeedbackParallelEnv) -> int:
    """Return the position of the time_left feature in the observation vector."""
    k = env.game.feedback_dim
    widths = {"preference": k, "weight": 1, "asked": 1}
    features = env.config.observation_features
    return sum(widths[feature] for feature in features[: features.index("time_left")])


# ---------------------------------------------------------------------------
# PettingZoo test utilities
# ---------------------------------------------------------------------------


def test_parallel_api(make_env: EnvFactory) -> None:
    env = make_env()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parallel_api_test(env, num_cycles=env.game.horizon + 5)


def test_parallel_api_full_paper_episode() -> None:
    env = parallel_env(preset="paper")
    assert env.game.horizon == 1000
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parallel_api_test(env, num_cycles=1000)


def test_aec_api(make_env: EnvFactory) -> None:
    env = make_env()
    cycles = env.game.horizon + 5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        api_test(parallel_to_aec(env), num_cycles=cycles)


def test_aec_seed(make_env: EnvFactory) -> None:
    cycles = make_env().game.horizon + 5
    seed_test(lambda: parallel_to_aec(make_env()), num_cycles=cycles)


# ---------------------------------------------------------------------------
# Determinism over whole episodes
# ---------------------------------------------------------------------------


def test_same_seed_same_episode(make_env: EnvFactory) -> None:
    first = play_episode(make_env(), seed=7)
    second = play_episode(make_env(), seed=7)
    assert len(first) == len(second)
    assert_same_outputs(first, second)


def test_different_seed_different_episode(make_env: EnvFactory) -> None:
    first = play_episode(make_env(), seed=7)
    second = play_episode(make_env(), seed=8)
    first_observations = np.stack([step[0]["labeler_0"] for step in first])
    second_observations = np.stack([step[0]["labeler_0"] for step in second])
    assert not np.array_equal(first_observations, second_observations)


def test_unseeded_reset_continues_seed() -> None:
    first = parallel_env(preset="paper", horizon=20)
    second = parallel_env(preset="paper", horizon=20)
    play_episode(first, seed=3)
    play_episode(second, seed=3)
    first_observations, _ = first.reset()
    second_observations, _ = second.reset()
    assert_same_outputs(first_observations, second_observations)


def test_unseeded_reset_starts_new_episode() -> None:
    env = parallel_env(preset="paper", horizon=20)
    seeded, _ = env.reset(seed=3)
    unseeded, _ = env.reset()
    assert not np.array_equal(seeded["labeler_0"], unseeded["labeler_0"])


# ---------------------------------------------------------------------------
# Agents, observations and episode end
# ---------------------------------------------------------------------------


def test_observations_float32_in_space(make_env: EnvFactory) -> None:
    env = make_env()
    for step in play_episode(env, seed=1):
        observations = step[0]
        for agent, observation in observations.items():
            assert observation.dtype == np.float32
            assert env.observation_space(agent).contains(observation)


def test_agent_ids(make_env: EnvFactory) -> None:
    env = make_env()
    n = env.game.n_labelers
    assert env.possible_agents == [f"labeler_{i}" for i in range(n)]
    env.reset(seed=0)
    assert env.agents == env.possible_agents


def test_last_slot_terminates_all(make_env: EnvFactory) -> None:
    env = make_env()
    trajectory = play_episode(env, seed=2)
    _, _, terminations, truncations, _ = trajectory[-1]
    assert len(trajectory) - 1 == env.game.horizon
    assert set(terminations) == set(env.possible_agents)
    assert all(terminations.values())
    assert not any(truncations.values())
    assert env.agents == []


def test_earlier_slots_not_terminated(make_env: EnvFactory) -> None:
    trajectory = play_episode(make_env(), seed=2)
    for _, _, terminations, truncations, _ in trajectory[1:-1]:
        assert not any(terminations.values())
        assert not any(truncations.values())


def test_time_left_reaches_zero() -> None:
    env = parallel_env(preset="paper", horizon=10)
    trajectory = play_episode(env, seed=0)
    index = time_left_index(env)
    assert trajectory[0][0]["labeler_0"][index] == 1.0
    assert trajectory[-1][0]["labeler_0"][index] == 0.0


def test_reset_infos_empty() -> None:
    env = parallel_env(preset="paper", horizon=5)
    _, infos = env.reset(seed=0)
    assert infos == {agent: {} for agent in env.possible_agents}


def test_step_infos_contents() -> None:
    env = parallel_env(preset="paper", horizon=5)
    env.reset(seed=0)
    actions = {agent: np.array([0.3], dtype=np.float32) for agent in env.agents}
    _, rewards, _, _, infos = env.step(actions)
    info = infos["labeler_2"]
    assert set(info) == {"report", "aggregate", "truth", "revealed", "weight"}
    np.testing.assert_allclose(info["report"], [0.3], atol=1e-7)
    np.testing.assert_allclose(info["aggregate"], [0.3], atol=1e-7)
    assert sum(infos[agent]["weight"] for agent in env.possible_agents) == pytest.approx(1.0)
    assert rewards["labeler_2"] <= 0.0


def test_out_of_range_action_projected() -> None:
    env = parallel_env(preset="paper", horizon=5)
    env.reset(seed=0)
    actions = {agent: np.array([1.7], dtype=np.float32) for agent in env.agents}
    actions["labeler_1"] = np.array([-0.4], dtype=np.float32)
    _, _, _, _, infos = env.step(actions)
    np.testing.assert_array_equal(infos["labeler_0"]["report"], [1.0])
    np.testing.assert_array_equal(infos["labeler_1"]["report"], [0.0])


def test_step_after_end_raises() -> None:
    env = parallel_env(preset="paper", horizon=2)
    play_episode(env, seed=0)
    with pytest.raises(RuntimeError, match="reset"):
        env.step({agent: np.array([0.5], dtype=np.float32) for agent in env.possible_agents})


def test_missing_action_raises() -> None:
    env = parallel_env(preset="paper", horizon=2)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="labeler_4"):
        env.step({f"labeler_{i}": np.array([0.5], dtype=np.float32) for i in range(4)})


def test_unknown_agent_space_raises() -> None:
    env = parallel_env(preset="paper", horizon=2)
    with pytest.raises(KeyError, match="labeler_9"):
        env.observation_space("labeler_9")


def test_render_mode_rejected() -> None:
    with pytest.raises(ValueError, match="render_mode"):
        parallel_env(preset="paper", render_mode="human")


def test_state_vector() -> None:
    env = parallel_env(preset="paper", horizon=5)
    env.reset(seed=0)
    state = env.state()
    assert state.dtype == np.float32
    assert state.shape == (5 + 5 + 1 + 1,)


def test_action_space_by_mode() -> None:
    report_space = parallel_env(preset="paper", feedback_dim=2).action_space("labeler_0")
    shift_space = parallel_env(preset="paper", feedback_dim=2, action_mode="shift").action_space("labeler_0")
    assert report_space == gymnasium.spaces.Box(0.0, 1.0, shape=(2,), dtype=np.float32)
    assert shift_space == gymnasium.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)


def test_replay_keeps_annotator_names(pandalm_dir: Path) -> None:
    env = parallel_env(source=ReplaySource(load_pandalm(pandalm_dir)))
    assert env.possible_agents[3] == "labeler_3"
    assert env.labeler_names["labeler_3"] == "gpt-3.5-turbo"


def test_preset_env_with_k3_override() -> None:
    env = parallel_env(preset="diverse", feedback_dim=3, horizon=20)
    assert env.config.bias[1] == (0.1, 0.1, 0.1)
    assert env.action_space("labeler_0").shape == (3,)


def test_config_argument() -> None:
    config = preset("paper", horizon=7, mechanism="mean")
    env = parallel_env(config=config)
    assert env.config == config
    assert env.game.horizon == 7


# ---------------------------------------------------------------------------
# AEC forms
# ---------------------------------------------------------------------------


def play_aec(env, seed: int) -> int:
    """Play an AEC episode with constant reports and return the number of agent turns."""
    env.reset(seed=seed)
    turns = 0
    for agent in env.agent_iter():
        observation, _, termination, truncation, _ = env.last()
        assert env.observation_space(agent).contains(observation)
        action = None if termination or truncation else np.array([0.5], dtype=np.float32)
        env.step(action)
        turns += 1
    return turns


def test_env_function_aec_episode() -> None:
    env = strategic_env.env(preset="paper", horizon=10)
    # 10 slots of 5 turns, then one final turn per terminated agent.
    assert play_aec(env, seed=0) == 10 * 5 + 5


def test_raw_env_function_aec_episode() -> None:
    env = strategic_env.raw_env(preset="paper", horizon=10)
    assert play_aec(env, seed=0) == 10 * 5 + 5


def test_versioned_module_api() -> None:
    env = strategic_feedback_v0.parallel_env(preset="paper", horizon=10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parallel_api_test(env, num_cycles=15)
    assert env.metadata["name"] == "strategic_feedback_v0"


# ---------------------------------------------------------------------------
# LabelerEnv
# ---------------------------------------------------------------------------


def test_labeler_env_gymnasium_checker() -> None:
    gymnasium_check_env(LabelerEnv(learner=1, preset="paper", horizon=50), skip_render_check=True)


def test_labeler_env_sb3_checker() -> None:
    sb3_check_env(LabelerEnv(learner=1, preset="paper", horizon=50), warn=False)


def test_labeler_env_sb3_checker_shift_mode() -> None:
    sb3_check_env(LabelerEnv(learner=0, preset="paper", action_mode="shift", horizon=50), warn=False)


def test_labeler_env_gymnasium_make() -> None:
    env = gymnasium.make("strategic_env/Labeler-v0", learner=1, horizon=50)
    observation, _ = env.reset(seed=0)
    assert env.observation_space.contains(observation)

    steps = 0
    terminated = truncated = False
    while not (terminated or truncated):
        observation, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        steps += 1
        assert env.observation_space.contains(observation)
        assert -1.0 <= reward <= 0.0
    assert steps == 50
    assert terminated
    assert not truncated
    env.close()


def test_labeler_env_same_seed_same_episode() -> None:
    episodes = []
    for _ in range(2):
        env = LabelerEnv(learner=2, preset="paper", horizon=30)
        observation, _ = env.reset(seed=4)
        rows = [observation]
        for _ in range(30):
            observation, reward, _, _, _ = env.step(observation[:1])
            rows.append(np.append(observation, reward))
        episodes.append(rows)
    assert_same_outputs(episodes[0], episodes[1])


def test_labeler_env_truthful_reward_is_utility() -> None:
    env = LabelerEnv(learner=4, preset="paper", mechanism="mean", horizon=40)
    observation, _ = env.reset(seed=0)
    for _ in range(40):
        preferences = env.game.preferences[0, :, 0].copy()
        observation, reward, _, _, info = env.step(observation[:1])
        assert info["aggregate"][0] == pytest.approx(preferences.mean(), abs=1e-6)
        assert reward == pytest.approx(-((preferences.mean() - preferences[4]) ** 2), abs=1e-6)


def test_labeler_env_others_policy_used() -> None:
    def report_zero(game, labelers):
        return np.zeros((game.batch_size, len(labelers), game.feedback_dim))

    env = LabelerEnv(learner=0, others=report_zero, preset="paper", mechanism="mean", horizon=5)
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([1.0], dtype=np.float32))
    assert info["aggregate"][0] == pytest.approx(0.2)


def test_labeler_env_nan_action_raises() -> None:
    env = LabelerEnv(learner=1, preset="paper", horizon=5)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="finite"):
        env.step(np.array([np.nan], dtype=np.float32))


def test_labeler_env_invalid_learner_raises() -> None:
    with pytest.raises(ValueError, match="learner"):
        LabelerEnv(learner=5, preset="paper")


# ---------------------------------------------------------------------------
# LabelerVecEnv
# ---------------------------------------------------------------------------


def run_vec(env: LabelerVecEnv, slots: int, action_seed: int = 0) -> list[tuple]:
    rng = np.random.default_rng(action_seed)
    outputs = [env.reset()]
    for _ in range(slots):
        actions = rng.uniform(0.0, 1.0, size=(env.num_envs, 1)).astype(np.float32)
        outputs.append(env.step(actions))
    return outputs


def test_vec_env_shapes() -> None:
    env = LabelerVecEnv(4, learner=2, seed=3, preset="paper", horizon=20)
    observations = env.reset()
    assert observations.shape == (4, 7)
    assert observations.dtype == np.float32
    observations, rewards, dones, infos = env.step(np.full((4, 1), 0.5, dtype=np.float32))
    assert rewards.shape == (4,)
    assert dones.shape == (4,)
    assert len(infos) == 4


def test_vec_env_auto_reset_infos() -> None:
    horizon = 20
    env = LabelerVecEnv(3, learner=1, seed=3, preset="paper", horizon=horizon)
    env.reset()
    rewards = []
    for _ in range(horizon):
        observations, reward, dones, infos = env.step(np.full((3, 1), 0.5, dtype=np.float32))
        rewards.append(reward)
    assert dones.all()
    for i, info in enumerate(infos):
        assert info["terminal_observation"][3] == 0.0
        assert info["episode"]["l"] == horizon
        assert info["episode"]["r"] == pytest.approx(float(np.sum(np.stack(rewards)[:, i], dtype=np.float64)), rel=1e-6)
        assert info["TimeLimit.truncated"] is False
    # After the automatic reset the observations start a new episode.
    np.testing.assert_array_equal(observations[:, 3], np.ones(3, dtype=np.float32))


def test_vec_env_not_done_before_end() -> None:
    env = LabelerVecEnv(2, learner=1, seed=3, preset="paper", horizon=10)
    outputs = run_vec(env, 9)
    for _, _, dones, infos in outputs[1:]:
        assert not dones.any()
        assert infos == [{}, {}]


def test_vec_env_same_seed_same_rollout() -> None:
    first = run_vec(LabelerVecEnv(3, learner=4, seed=5, preset="paper", horizon=15), 40)
    second = run_vec(LabelerVecEnv(3, learner=4, seed=5, preset="paper", horizon=15), 40)
    assert_same_outputs(first, second)


def test_vec_env_different_seed_different_rollout() -> None:
    first = run_vec(LabelerVecEnv(3, learner=4, seed=5, preset="paper", horizon=15), 15)
    second = run_vec(LabelerVecEnv(3, learner=4, seed=6, preset="paper", horizon=15), 15)
    assert not np.array_equal(first[0], second[0])


def test_vec_env_seed_method_matches_constructor() -> None:
    constructed = LabelerVecEnv(2, learner=0, seed=9, preset="paper", horizon=10)
    reseeded = LabelerVecEnv(2, learner=0, seed=1, preset="paper", horizon=10)
    reseeded.seed(9)
    assert_same_outputs(run_vec(constructed, 12), run_vec(reseeded, 12))


def test_vec_env_episodes_differ_after_auto_reset() -> None:
    env = LabelerVecEnv(2, learner=0, seed=9, preset="paper", horizon=10)
    first_start = env.reset()
    for _ in range(10):
        second_start, _, _, _ = env.step(np.full((2, 1), 0.5, dtype=np.float32))
    assert not np.array_equal(first_start, second_start)


def test_vec_env_truthful_reward_is_utility() -> None:
    env = LabelerVecEnv(4, learner=3, seed=2, preset="paper", mechanism="online_weighted", horizon=30)
    observations = env.reset()
    for _ in range(29):
        game = env.game
        preferences = game.preferences.copy()
        weights = game.mechanism.aggregation_weights(game.asked)
        aggregate = np.einsum("bn,bnk->bk", weights, preferences)
        expected = -np.mean((aggregate - preferences[:, 3]) ** 2, axis=1)
        observations, rewards, _, _ = env.step(observations[:, :1])
        np.testing.assert_allclose(rewards, expected, rtol=1e-5, atol=1e-7)


def test_vec_env_trains_sb3_ppo() -> None:
    from stable_baselines3 import PPO

    env = LabelerVecEnv(4, learner=4, seed=0, preset="paper", mechanism="mean", horizon=16)
    model = PPO("MlpPolicy", env, n_steps=16, batch_size=32, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=128)
    actions, _ = model.predict(env.reset(), deterministic=True)
    assert actions.shape == (4, 1)
    assert model.num_timesteps == 128


def test_vec_env_matches_labeler_env_distribution() -> None:
    horizon = 200
    vec_env = LabelerVecEnv(8, learner=4, seed=0, preset="paper", mechanism="mean", horizon=horizon)
    observations = vec_env.reset()
    vec_rewards = []
    for _ in range(horizon):
        observations, rewards, _, _ = vec_env.step(observations[:, :1])
        vec_rewards.append(rewards)

    single_env = LabelerEnv(learner=4, preset="paper", mechanism="mean", horizon=horizon)
    single_rewards = []
    for episode in range(8):
        observation, _ = single_env.reset(seed=100 + episode)
        for _ in range(horizon):
            observation, reward, _, _, _ = single_env.step(observation[:1])
            single_rewards.append(reward)

    # Both estimate the mean truthful utility of the noisiest labeler (measured -0.034, with a
    # per-slot standard deviation of 0.046) from 1600 slots each. Treating slots as
    # independent, the standard error of the difference is about 0.0016.
    assert np.mean(vec_rewards) == pytest.approx(np.mean(single_rewards), abs=0.01)
    assert np.mean(vec_rewards) < 0.0
