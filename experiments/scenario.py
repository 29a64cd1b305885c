"""A scenario: the game configuration and preference source that a study runs on.

Studies build many games (one per mechanism, seed and profile) from one scenario, each with
a fresh preference source, because a source holds the state of its current episodes.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from strategic_env.config import GameConfig, load_config, preset as make_preset
from strategic_env.datasets import DATASETS, load_dataset
from strategic_env.game import StrategicFeedbackGame, config_for_source
from strategic_env.mechanisms import resolve
from strategic_env.preferences import LabelTable, ReplaySource, SyntheticSource


@dataclasses.dataclass(frozen=True)
class Scenario:
    """A configuration with either synthetic preferences or a data set to replay."""

    config: GameConfig
    table: LabelTable | None = None
    preset: str | None = None
    dataset: str | None = None
    data_path: str | None = None

    @property
    def labeler_names(self) -> tuple[str, ...]:
        if self.table is not None:
            return self.table.workers
        return tuple(f"labeler_{i}" for i in range(self.config.n_labelers))

    @property
    def n_labelers(self) -> int:
        return len(self.labeler_names)

    def make_source(self) -> ReplaySource | SyntheticSource:
        return ReplaySource(self.table) if self.table is not None else SyntheticSource(self.config)

    def config_for(self, mechanism: str | None) -> GameConfig:
        """Return the configuration under ``mechanism``.

        ``mechanism_params`` belong to the configured mechanism, so another mechanism runs
        with its defaults.
        """
        if mechanism is None or mechanism == self.config.mechanism:
            return self.config
        return self.config.replace(mechanism=mechanism, mechanism_params={})

    def make_game(
        self, mechanism: str | None = None, batch_size: int = 1, record_history: bool = False
    ) -> StrategicFeedbackGame:
        """Build a game of ``batch_size`` episodes under ``mechanism`` (default: the configured one)."""
        config = self.config_for(mechanism)
        return StrategicFeedbackGame(
            config, batch_size=batch_size, source=self.make_source(), record_history=record_history
        )

    def describe(self) -> dict[str, Any]:
        """Return a JSON-ready description for results files."""
        return {
            "preset": self.preset,
            "dataset": self.dataset,
            "data_path": self.data_path,
            "labelers": list(self.labeler_names),
            "game": self.config.to_dict(),
            "data_description": self.table.description if self.table is not None else None,
        }


def build_scenario(
    preset: str | None = None,
    config_file: str | Path | None = None,
    dataset: str | None = None,
    data: str | Path | None = None,
    dataset_options: dict[str, Any] | None = None,
    **overrides: Any,
) -> Scenario:
    """Build a scenario from the command line's options; invalid input raises ValueError."""
    if preset is not None and config_file is not None:
        raise ValueError("pass either --preset or --config, not both")
    if config_file is not None:
        config = load_config(config_file, **overrides)
    else:
        config = make_preset(preset or "paper", **overrides)
    if dataset is None:
        if data is not None:
            raise ValueError("--data needs --dataset to say which data set the folder contains")
        return Scenario(config=config, preset=(preset or "paper") if config_file is None else None)
    if dataset not in DATASETS:
        raise ValueError(f"unknown data set {dataset!r}; expected one of {', '.join(DATASETS)}")
    if data is None:
        raise ValueError(f"--dataset {dataset} needs --data PATH, the folder that contains the data set's files")
    table = load_dataset(dataset, Path(data), **(dataset_options or {}))
    config = config_for_source(config, ReplaySource(table))
    return Scenario(config=config, table=table, preset=(preset or "paper") if config_file is None else None,
                    dataset=dataset, data_path=str(data))


def parse_mechanisms(text: str) -> tuple[str, ...]:
    """Split a comma-separated list of mechanism names and check that each resolves."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if not names:
        raise ValueError(f"invalid --mechanisms {text!r}: expected comma-separated names such as mean,median")
    if len(set(names)) != len(names):
        raise ValueError(f"invalid --mechanisms {text!r}: each mechanism may appear only once")
    for name in names:
        resolve(name)
    return names


def parse_seeds(text: str) -> tuple[int, ...]:
    """Parse ``--seeds``: a count N (seeds 0..N-1) or a comma-separated list of seeds."""
    try:
        if "," in text:
            seeds = tuple(int(part) for part in text.split(",") if part.strip())
        else:
            count = int(text)
            if count < 1:
                raise ValueError
            seeds = tuple(range(count))
    except ValueError:
        raise ValueError(f"invalid --seeds {text!r}: expected a count such as 5 or a list such as 0,1,2") from None
    if not seeds or len(set(seeds)) != len(seeds) or any(seed < 0 for seed in seeds):
        raise ValueError(f"invalid --seeds {text!r}: seeds must be distinct integers >= 0")
    return seeds
