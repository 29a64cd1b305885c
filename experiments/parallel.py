"""Running independent study jobs in worker processes with a progress bar."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
from collections.abc import Callable, Sequence
from typing import Any

from tqdm import tqdm


def map_with_progress(
    function: Callable[[Any], Any], items: Sequence[Any], workers: int, description: str, unit: str
) -> list[Any]:
    """Return ``[function(item) for item in items]``, in ``workers`` spawned processes when more than one.

    Results keep the order of ``items``. Workers are spawned rather than forked, so each
    starts torch and numpy afresh.
    """
    results: list[Any] = []
    with tqdm(total=len(items), desc=description, unit=unit) as progress:
        if workers <= 1:
            for item in items:
                results.append(function(item))
                progress.update()
        else:
            context = multiprocessing.get_context("spawn")
            with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
                for result in pool.map(function, items):
                    results.append(result)
                    progress.update()
    return results
