"""Fixtures that locate the real annotation data used by the data set tests.

The data is not part of the project. Tests read it from the folder named by the environment
variable ``STRATEGIC_ENV_DATA``, else from the folder ``shared/data`` beside the project root,
and skip when the folder is missing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_ENV_VAR = "STRATEGIC_ENV_DATA"


def _require_folder(folder: Path) -> Path:
    if not folder.is_dir():
        pytest.skip(
            f"real data folder not found: {folder}. Set {DATA_ENV_VAR} to the folder that contains "
            "pandalm/ and snow2008/"
        )
    return folder


@pytest.fixture(scope="session")
def data_root() -> Path:
    """Folder that contains the ``pandalm`` and ``snow2008`` data folders."""
    configured = os.environ.get(DATA_ENV_VAR)
    root = Path(configured) if configured else PROJECT_ROOT.parent / "shared" / "data"
    return _require_folder(root)


@pytest.fixture(scope="session")
def pandalm_dir(data_root: Path) -> Path:
    """Folder with the PandaLM test set and the two LLM judge files."""
    return _require_folder(data_root / "pandalm")


@pytest.fixture(scope="session")
def snow_dir(data_root: Path) -> Path:
    """Folder with the standardized Snow et al. (2008) TSV files."""
    return _require_folder(data_root / "snow2008")


def pytest_configure(config: pytest.Config) -> None:
    # PPO's small networks train faster on one torch thread, and the suite shares 2 cores.
    import torch

    torch.set_num_threads(1)
