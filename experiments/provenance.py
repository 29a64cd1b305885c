"""Provenance of a run: configuration, seeds, package versions and git commit, and safe output writing."""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("strategic-env", "numpy", "scipy", "gymnasium", "pettingzoo", "stable-baselines3", "torch", "matplotlib")


def package_versions() -> dict[str, str]:
    """Return the installed versions of the packages that results depend on."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_commit() -> dict[str, Any]:
    """Return the project's git commit and whether the work tree had uncommitted changes."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown (not a git checkout)", "dirty": None}
    return {"commit": commit, "dirty": bool(status.strip())}


def provenance(config: dict[str, Any], seeds: list[int], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return the record that every results folder keeps beside its figures."""
    return {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "configuration": config,
        "seeds": list(seeds),
        "packages": package_versions(),
        "git": git_commit(),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        **(extra or {}),
    }


def prepare_output(folder: str | Path, overwrite: bool) -> Path:
    """Create the output folder, rejecting one that already contains results unless ``overwrite``."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"output path {folder} exists and is not a folder; choose another --out")
    if (folder / "results.json").exists() and not overwrite:
        raise FileExistsError(
            f"output folder {folder} already contains results.json; choose another --out or pass --overwrite"
        )
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically: a failed write never leaves a truncated file behind."""
    write_text(path, json.dumps(data, indent=2, sort_keys=False, default=_to_builtin) + "\n")


def write_text(path: Path, text: str) -> None:
    """Write text atomically through a temporary file in the same folder."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        # mkstemp creates the file readable by its owner only; give it the usual mode.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _to_builtin(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "to_dict"):
        return value.to_dict()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
