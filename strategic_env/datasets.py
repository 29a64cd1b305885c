"""Load real multi-annotator data sets as :class:`LabelTable` objects for replay.

Each adapter returns an (items x workers) matrix of labels mapped into [0, 1], with NaN where
a worker did not label an item, and a reference truth per item in [0, 1]:

* ``pandalm`` (:func:`load_pandalm`): 999 pairwise comparisons of two LLM responses, each
  labelled by three humans and judged by two LLMs (gpt-3.5-turbo and PandaLM-7B). Label 1
  (response 1 is better) maps to 1.0, label 2 to 0.0 and a tie to 0.5, so a label is the
  probability that response 1 is preferred. The truth is the majority of the three human
  labels, which includes each human's own vote. Source: GitHub repository WeOpenML/PandaLM,
  folder ``data/`` (Apache-2.0).
* ``snow-rte`` (:func:`load_snow_rte`): recognising textual entailment, binary crowd labels
  0/1 with expert gold 0/1, kept as they are. 800 items, 164 workers and 10 labels per item.
* ``snow-valence`` (:func:`load_snow_valence`): news headline valence ratings from -100 to 100
  with a numeric expert gold, both mapped by (x + 100) / 200. 100 items, 38 workers and
  10 ratings per item.
* ``table`` (:func:`load_table`, :func:`load_table_folder`): any data set in the long format
  of the crowd-kit library, a labels file with columns ``task, worker, label`` and a gold file
  with columns ``task, true_label``, mapped linearly from a given ``label_range``.

The two Snow data sets come from Snow, O'Connor, Jurafsky and Ng, "Cheap and Fast -- But is
it Good? Evaluating Non-Expert Annotations for Natural Language Tasks", EMNLP 2008. The
standardized TSV files are in the GitHub repository edwinrobots/bayesian_combination_tutorial2.
Their loaders can restrict the table to a dense panel: the ``panel_size`` most active workers
on the items that all of them labelled.

Nothing is downloaded. Every loader reads files from a folder that the caller gives and
raises FileNotFoundError, naming the path and the public source, when a file is missing.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from strategic_env.preferences import LabelTable

logger = logging.getLogger(__name__)

DATASETS = ("pandalm", "snow-rte", "snow-valence", "table")

PANDALM_SOURCE = "the GitHub repository WeOpenML/PandaLM, folder data/"
SNOW_SOURCE = (
    "the GitHub repository edwinrobots/bayesian_combination_tutorial2 (the standardized TSV files of "
    'Snow et al., "Cheap and Fast -- But is it Good?", EMNLP 2008)'
)

PANDALM_HUMANS = ("annotator1", "annotator2", "annotator3")
PANDALM_JUDGES = ("gpt-3.5-turbo", "pandalm-7b")
PANDALM_WORKERS = PANDALM_HUMANS + PANDALM_JUDGES
PANDALM_TESTSET = "testset-v1.json"
# Judge name -> (file name, field that contains the judge's label).
PANDALM_JUDGE_FILES = {
    "gpt-3.5-turbo": ("gpt-3.5-turbo-testset-v1.json", "gpt_result"),
    "pandalm-7b": ("pandalm-7b-testset-v1.json", "pandalm_result"),
}

SNOW_RTE_FILE = "rte.standardized.tsv"
SNOW_VALENCE_FILE = "valence.standardized.tsv"
SNOW_WORKER_COLUMN = "!amt_worker_ids"
SNOW_ITEM_COLUMN = "orig_id"
SNOW_LABEL_COLUMN = "response"
SNOW_GOLD_COLUMN = "gold"

LabelRange = tuple[float, float]
# (worker, item) -> label, in the order of the rows of the file.
LabelMap = dict[tuple[str, str], float]


# ---------------------------------------------------------------------------
# Shared helpers: file checks, delimited files, numbers and the dense matrix.
# ---------------------------------------------------------------------------


def _require_file(path: Path, source: str | None) -> Path:
    """Raise FileNotFoundError naming ``path`` and where the public file comes from, unless it exists."""
    if path.is_file():
        return path
    message = f"data file not found: {path}"
    if source is not None:
        message += f". Download it from {source} and pass the folder that contains it"
    raise FileNotFoundError(message)


def _detect_delimiter(path: Path, header: str) -> str:
    """Return tab or comma: the one found in the header line, else the one the extension implies."""
    if "\t" in header:
        return "\t"
    if "," in header:
        return ","
    return "\t" if path.suffix.lower() == ".tsv" else ","


def _read_delimited(path: Path, required: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line number, row) for each data row of a CSV or TSV file with the ``required`` columns.

    Column names and values are stripped of surrounding white space. Extra columns are ignored.
    Raises ValueError naming the file when the header lacks a required column, or when a row
    has an empty value in one.
    """
    with path.open(newline="", encoding="utf-8-sig") as stream:
        header = stream.readline()
        stream.seek(0)
        reader = csv.reader(stream, delimiter=_detect_delimiter(path, header))
        columns = [name.strip() for name in next(reader, [])]
        missing = [name for name in required if name not in columns]
        if missing:
            raise ValueError(
                f"{path}: missing required column(s) {missing}. The header contains {columns}, "
                f"but the file needs the columns {list(required)}"
            )
        positions = {name: columns.index(name) for name in required}
        for fields in reader:
            if not any(field.strip() for field in fields):
                continue
            row = {}
            for name, position in positions.items():
                value = fields[position].strip() if position < len(fields) else ""
                if not value:
                    raise ValueError(f"{path}, line {reader.line_num}: missing value in column {name!r}")
                row[name] = value
            yield reader.line_num, row


def _parse_number(text: str, path: Path, line: int, column: str) -> float:
    """Parse a finite number, raising ValueError naming the file, line, column and text otherwise."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{path}, line {line}: column {column!r} must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{path}, line {line}: column {column!r} must be a finite number, got {text!r}")
    return value


def _validate_panel_size(panel_size: int | None) -> None:
    if panel_size is None:
        return
    if isinstance(panel_size, bool) or not isinstance(panel_size, int) or panel_size < 1:
        raise ValueError(f"invalid panel_size={panel_size!r}: expected an integer >= 1 or None")


def _build_table(
    name: str,
    items: Sequence[str],
    workers: Sequence[str],
    labels: LabelMap,
    truth: dict[str, float],
    description: str,
) -> LabelTable:
    """Build the table, with NaN in the (items x workers) matrix where a worker did not label an item."""
    item_rows = {item: row for row, item in enumerate(items)}
    worker_columns = {worker: column for column, worker in enumerate(workers)}
    matrix = np.full((len(items), len(workers)), np.nan)
    for (worker, item), value in labels.items():
        row = item_rows.get(item)
        column = worker_columns.get(worker)
        if row is not None and column is not None:
            matrix[row, column] = value
    truth_vector = np.array([truth[item] for item in items], dtype=np.float64)
    return LabelTable(name, tuple(items), tuple(workers), matrix, truth_vector, description)


# ---------------------------------------------------------------------------
# Generic long format (crowd-kit): labels task, worker, label and gold task, true_label.
# ---------------------------------------------------------------------------


def _validate_label_range(label_range: Sequence[float] | None) -> LabelRange | None:
    if label_range is None:
        return None
    try:
        low, high = (float(bound) for bound in label_range)
    except (TypeError, ValueError):
        raise ValueError(f"invalid label_range={label_range!r}: expected two numbers (low, high)") from None
    if not (math.isfinite(low) and math.isfinite(high) and high > low):
        raise ValueError(f"invalid label_range={label_range!r}: expected finite numbers with low < high")
    return low, high


def _map_into_unit(value: float, label_range: LabelRange | None, path: Path, line: int) -> float:
    """Map ``value`` by (x - low) / (high - low), or check that it already lies in [0, 1]."""
    if label_range is None:
        if not 0.0 <= value <= 1.0:
            raise ValueError(
                f"{path}, line {line}: value {value!r} is outside [0, 1]. "
                "Pass label_range=(low, high) to map the labels into [0, 1]"
            )
        return value
    low, high = label_range
    mapped = (value - low) / (high - low)
    if not 0.0 <= mapped <= 1.0:
        raise ValueError(f"{path}, line {line}: value {value!r} is outside label_range=({low:g}, {high:g})")
    return mapped


def _find_table_file(folder: Path, stem: str) -> Path:
    candidates = [folder / f"{stem}.csv", folder / f"{stem}.tsv"]
    found = [path for path in candidates if path.is_file()]
    if not found:
        raise FileNotFoundError(f"data file not found: looked for {candidates[0]} and {candidates[1]}")
    if len(found) > 1:
        raise ValueError(f"both {found[0]} and {found[1]} exist. Keep only one of them")
    return found[0]


def load_table(
    labels_path: str | os.PathLike[str],
    gold_path: str | os.PathLike[str],
    name: str = "table",
    label_range: Sequence[float] | None = None,
) -> LabelTable:
    """Load a labels file (``task, worker, label``) and a gold file (``task, true_label``).

    Both files are CSV or TSV. The delimiter is the tab or comma found in the header line,
    else the one that the extension implies. Labels and gold labels must be numbers. With
    ``label_range=(low, high)`` they map by (x - low) / (high - low) and must lie in that
    range. Without it they must already lie in [0, 1]. Items and workers keep the order of
    their first appearance in the labels file. Items without a gold label, gold items without
    labels, and workers left with no label are dropped and counted in a logged warning.

    Raises:
        FileNotFoundError: a file does not exist.
        ValueError: a required column is missing, a value is not a number or is out of range,
            a (task, worker) pair or a gold task repeats, or no item has both labels and gold.
    """
    labels_file = _require_file(Path(labels_path), None)
    gold_file = _require_file(Path(gold_path), None)
    bounds = _validate_label_range(label_range)

    labels: LabelMap = {}
    label_items: dict[str, None] = {}
    for line, row in _read_delimited(labels_file, ("task", "worker", "label")):
        key = (row["worker"], row["task"])
        if key in labels:
            raise ValueError(
                f"{labels_file}, line {line}: duplicate label of task {row['task']!r} by worker {row['worker']!r}"
            )
        value = _parse_number(row["label"], labels_file, line, "label")
        labels[key] = _map_into_unit(value, bounds, labels_file, line)
        label_items.setdefault(row["task"], None)

    truth: dict[str, float] = {}
    for line, row in _read_delimited(gold_file, ("task", "true_label")):
        if row["task"] in truth:
            raise ValueError(f"{gold_file}, line {line}: duplicate gold label of task {row['task']!r}")
        value = _parse_number(row["true_label"], gold_file, line, "true_label")
        truth[row["task"]] = _map_into_unit(value, bounds, gold_file, line)

    items = [item for item in label_items if item in truth]
    if not items:
        raise ValueError(
            f"no task of {labels_file} has a gold label in {gold_file}. Check that the task ids match"
        )
    kept_items = set(items)
    workers = list(dict.fromkeys(worker for worker, item in labels if item in kept_items))
    all_workers = {worker for worker, _ in labels}

    unlabelled_gold = len(truth) - len(items)
    dropped_items = len(label_items) - len(items)
    dropped_workers = len(all_workers) - len(workers)
    if dropped_items:
        logger.warning(
            "%s: dropped %d of %d tasks that have labels but no gold label in %s",
            labels_file,
            dropped_items,
            len(label_items),
            gold_file,
        )
    if unlabelled_gold:
        logger.warning(
            "%s: dropped %d gold tasks that have no labels in %s", gold_file, unlabelled_gold, labels_file
        )
    if dropped_workers:
        logger.warning("%s: dropped %d workers whose tasks all lack a gold label", labels_file, dropped_workers)

    if bounds is None:
        description = f"Labels and gold from {labels_file} and {gold_file}, read as they are (already in [0, 1])."
    else:
        low, high = bounds
        description = (
            f"Labels and gold from {labels_file} and {gold_file}, mapped by (x - {low:g}) / ({high:g} - {low:g})."
        )
    return _build_table(name, items, workers, labels, truth, description)


def load_table_folder(folder: str | os.PathLike[str], label_range: Sequence[float] | None = None) -> LabelTable:
    """Load ``labels.csv`` or ``labels.tsv`` and ``gold.csv`` or ``gold.tsv`` from ``folder``.

    The files are read with :func:`load_table`, and the table is named ``table``.

    Raises:
        FileNotFoundError: no labels or no gold file exists. The message names both paths looked for.
        ValueError: both the CSV and the TSV version of a file exist, or :func:`load_table` rejects the data.
    """
    root = Path(folder)
    labels_path = _find_table_file(root, "labels")
    gold_path = _find_table_file(root, "gold")
    return load_table(labels_path, gold_path, name="table", label_range=label_range)


# ---------------------------------------------------------------------------
# PandaLM: three humans and two LLM judges on pairwise comparisons.
# ---------------------------------------------------------------------------


def _map_pandalm_label(value: Any, path: Path, idx: Any, allow_garbage: bool) -> float:
    """Map 1 -> 1.0, 2 -> 0.0 and a tie (0 or "Tie") -> 0.5, and "garbage" -> NaN if ``allow_garbage``."""
    if isinstance(value, bool):
        key = None
    elif isinstance(value, int):
        key = str(value)
    elif isinstance(value, str):
        key = value.strip().lower()
    else:
        key = None
    mapping = {"1": 1.0, "2": 0.0, "0": 0.5, "tie": 0.5}
    if allow_garbage:
        mapping["garbage"] = math.nan
    if key not in mapping:
        allowed = "1, 2, 0 or 'Tie'" + (" or 'garbage'" if allow_garbage else "")
        raise ValueError(f"{path}, idx {idx!r}: invalid label {value!r}. Expected {allowed}")
    return mapping[key]


def _read_json_list(path: Path) -> list[dict[str, Any]]:
    try:
        with path.open(encoding="utf-8") as stream:
            entries = json.load(stream)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: invalid JSON: {error}") from error
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise ValueError(f"{path}: expected a JSON list of objects")
    return entries


def _entry_field(entry: dict[str, Any], field: str, path: Path, position: int) -> Any:
    if field not in entry:
        idx = entry.get("idx", f"<entry {position}>")
        raise ValueError(f"{path}, idx {idx!r}: missing field {field!r}")
    return entry[field]


def _majority_or_median(votes: Sequence[float]) -> float:
    """Return the most common vote if at least two votes share it, else the median of the votes."""
    value, count = Counter(votes).most_common(1)[0]
    if count >= 2:
        return value
    return float(np.median(votes))


def load_pandalm(folder: str | os.PathLike[str]) -> LabelTable:
    """Load the PandaLM test set: three human annotators and two LLM judges on 999 comparisons.

    The workers are ``annotator1``, ``annotator2``, ``annotator3``, ``gpt-3.5-turbo`` and
    ``pandalm-7b``, in that order. The judge files join the test set on ``idx``. An idx that a
    judge file lacks, or a gpt-3.5-turbo result "garbage", is NaN (not asked). The truth is the
    majority of the three mapped human labels, or their median when all three differ. Judge
    entries whose idx is not in the test set are ignored and counted in a logged warning.

    Raises:
        FileNotFoundError: one of the three JSON files is missing.
        ValueError: a file is not a JSON list of objects, a field is missing, an idx repeats,
            or a label is not 1, 2, 0 or "Tie".
    """
    root = Path(folder)
    testset_path = _require_file(root / PANDALM_TESTSET, PANDALM_SOURCE)
    judge_paths = {}
    for judge, (file_name, _) in PANDALM_JUDGE_FILES.items():
        judge_paths[judge] = _require_file(root / file_name, PANDALM_SOURCE)

    items: list[str] = []
    labels: LabelMap = {}
    truth: dict[str, float] = {}
    for position, entry in enumerate(_read_json_list(testset_path)):
        item = str(_entry_field(entry, "idx", testset_path, position))
        if item in truth:
            raise ValueError(f"{testset_path}: duplicate idx {entry['idx']!r}")
        votes = []
        for human in PANDALM_HUMANS:
            raw = _entry_field(entry, human, testset_path, position)
            votes.append(_map_pandalm_label(raw, testset_path, entry["idx"], allow_garbage=False))
            labels[(human, item)] = votes[-1]
        items.append(item)
        truth[item] = _majority_or_median(votes)

    for judge, (_, field) in PANDALM_JUDGE_FILES.items():
        path = judge_paths[judge]
        seen: set[str] = set()
        unknown = 0
        for position, entry in enumerate(_read_json_list(path)):
            item = str(_entry_field(entry, "idx", path, position))
            if item in seen:
                raise ValueError(f"{path}: duplicate idx {entry['idx']!r}")
            seen.add(item)
            if item not in truth:
                unknown += 1
                continue
            raw = _entry_field(entry, field, path, position)
            value = _map_pandalm_label(raw, path, entry["idx"], allow_garbage=judge == "gpt-3.5-turbo")
            if not math.isnan(value):
                labels[(judge, item)] = value
        if unknown:
            logger.warning("%s: ignored %d entries whose idx is not in %s", path, unknown, testset_path)
        not_judged = len(truth.keys() - seen)
        if not_judged:
            logger.info("%s: %d test items have no entry, so %s was not asked on them", path, not_judged, judge)

    description = (
        "PandaLM test set (WeOpenML/PandaLM, data/) with 3 human annotators and 2 LLM judges. "
        "Label 1 (response 1 better) -> 1.0, 2 -> 0.0, tie -> 0.5, and gpt-3.5-turbo 'garbage' "
        "results count as not asked. The reference truth is the majority of the three human labels "
        "(their median when all differ), so it includes each human labeler's own vote and "
        "overstates a human's agreement with it."
    )
    return _build_table("pandalm", items, PANDALM_WORKERS, labels, truth, description)


# ---------------------------------------------------------------------------
# Snow et al. (2008): crowd labels with expert gold, whole table or dense panel.
# ---------------------------------------------------------------------------


def _read_snow_file(
    path: Path, map_value: Callable[[float, int, str], float]
) -> tuple[list[str], list[str], LabelMap, dict[str, float]]:
    """Read a standardized Snow TSV file into items, workers (first appearance), labels and gold.

    ``map_value(value, line, column)`` validates a raw number and maps it into [0, 1].
    """
    items: dict[str, None] = {}
    workers: dict[str, None] = {}
    labels: LabelMap = {}
    gold: dict[str, float] = {}
    required = (SNOW_WORKER_COLUMN, SNOW_ITEM_COLUMN, SNOW_LABEL_COLUMN, SNOW_GOLD_COLUMN)
    for line, row in _read_delimited(path, required):
        worker, item = row[SNOW_WORKER_COLUMN], row[SNOW_ITEM_COLUMN]
        if (worker, item) in labels:
            raise ValueError(f"{path}, line {line}: worker {worker!r} labelled item {item!r} twice")
        label = _parse_number(row[SNOW_LABEL_COLUMN], path, line, SNOW_LABEL_COLUMN)
        labels[(worker, item)] = map_value(label, line, SNOW_LABEL_COLUMN)
        gold_number = _parse_number(row[SNOW_GOLD_COLUMN], path, line, SNOW_GOLD_COLUMN)
        gold_value = map_value(gold_number, line, SNOW_GOLD_COLUMN)
        if gold.setdefault(item, gold_value) != gold_value:
            raise ValueError(f"{path}, line {line}: item {item!r} has two different gold labels")
        items.setdefault(item, None)
        workers.setdefault(worker, None)
    if not labels:
        raise ValueError(f"{path}: the file contains no labels")
    return list(items), list(workers), labels, gold


def _select_panel(
    path: Path, items: list[str], workers: list[str], labels: LabelMap, panel_size: int
) -> tuple[list[str], list[str]]:
    """Return the ``panel_size`` most active workers (ties by ascending id) and the items they all labelled."""
    if panel_size > len(workers):
        raise ValueError(f"panel_size={panel_size} is too large: {path} has only {len(workers)} workers")
    counts = Counter(worker for worker, _ in labels)
    panel = sorted(workers, key=lambda worker: (-counts[worker], worker))[:panel_size]
    shared = [item for item in items if all((worker, item) in labels for worker in panel)]
    if not shared:
        raise ValueError(
            f"panel_size={panel_size} is too large: the {panel_size} most active workers of {path} "
            "share no item. Pass a smaller panel_size, or None for the whole table"
        )
    return shared, panel


def _load_snow(
    path: Path,
    name: str,
    map_value: Callable[[float, int, str], float],
    panel_size: int | None,
    description: str,
) -> LabelTable:
    _validate_panel_size(panel_size)
    items, workers, labels, gold = _read_snow_file(path, map_value)
    if panel_size is None:
        description += f" Whole table: {len(workers)} workers on {len(items)} items, NaN where not labelled."
    else:
        items, workers = _select_panel(path, items, workers, labels, panel_size)
        description += (
            f" Dense panel: the {panel_size} most active workers (ties by ascending id) on the "
            f"{len(items)} items that all of them labelled."
        )
    return _build_table(name, items, workers, labels, gold, description)


def load_snow_rte(folder: str | os.PathLike[str], panel_size: int | None = 5) -> LabelTable:
    """Load the Snow et al. (2008) textual entailment labels, 0/1 with expert gold 0/1.

    With ``panel_size=k`` the table is the dense panel of the k workers with the most labels
    (ties broken by ascending worker id, and columns in that order) on the items that all k
    labelled. With ``panel_size=None`` it is the whole sparse table of 164 workers on 800
    items, with workers in order of first appearance.

    Raises:
        FileNotFoundError: ``rte.standardized.tsv`` is missing.
        ValueError: a label is not 0 or 1, a worker labelled an item twice, an item has two
            gold labels, or the panel workers share no item.
    """
    path = _require_file(Path(folder) / SNOW_RTE_FILE, SNOW_SOURCE)

    def map_binary(value: float, line: int, column: str) -> float:
        if value not in (0.0, 1.0):
            raise ValueError(f"{path}, line {line}: column {column!r} must be 0 or 1, got {value!r}")
        return value

    description = (
        "Snow et al. (2008) recognising textual entailment (RTE), Amazon Mechanical Turk labels 0/1 "
        "against expert gold 0/1, kept as they are."
    )
    return _load_snow(path, "snow-rte", map_binary, panel_size, description)


def load_snow_valence(folder: str | os.PathLike[str], panel_size: int | None = None) -> LabelTable:
    """Load the Snow et al. (2008) headline valence ratings, mapped from [-100, 100] by (x + 100) / 200.

    ``panel_size`` selects a dense panel as in :func:`load_snow_rte`. The default None gives the
    whole table of 38 workers on 100 headlines.

    Raises:
        FileNotFoundError: ``valence.standardized.tsv`` is missing.
        ValueError: a rating or gold value lies outside [-100, 100], a worker rated a headline
            twice, a headline has two gold values, or the panel workers share no headline.
    """
    path = _require_file(Path(folder) / SNOW_VALENCE_FILE, SNOW_SOURCE)

    def map_rating(value: float, line: int, column: str) -> float:
        if not -100.0 <= value <= 100.0:
            raise ValueError(f"{path}, line {line}: column {column!r} must lie in [-100, 100], got {value!r}")
        return (value + 100.0) / 200.0

    description = (
        "Snow et al. (2008) news headline valence, Amazon Mechanical Turk ratings and expert gold in "
        "[-100, 100] mapped by (x + 100) / 200."
    )
    return _load_snow(path, "snow-valence", map_rating, panel_size, description)


# ---------------------------------------------------------------------------
# Dispatch by name.
# ---------------------------------------------------------------------------


def load_dataset(name: str, path: str | os.PathLike[str], **kwargs: Any) -> LabelTable:
    """Load the data set ``name`` (one of :data:`DATASETS`) from the folder ``path``.

    Keyword arguments go to the loader: ``panel_size`` for the Snow data sets and
    ``label_range`` for ``table``, which reads a folder with :func:`load_table_folder`.
    """
    loaders: dict[str, Callable[..., LabelTable]] = {
        "pandalm": load_pandalm,
        "snow-rte": load_snow_rte,
        "snow-valence": load_snow_valence,
        "table": load_table_folder,
    }
    if name not in loaders:
        raise ValueError(f"unknown data set {name!r}. Expected one of: {', '.join(DATASETS)}")
    return loaders[name](path, **kwargs)
