"""Tests of the real-data adapters: measured facts of the real files and edge cases on small files.

Tests that need the real data skip when its folder is missing (see ``conftest.py``). The
agreement numbers below were measured with these loaders on the PandaLM ``data/`` files and the
standardized Snow et al. (2008) TSV files.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import pytest

from strategic_env.datasets import (
    DATASETS,
    load_dataset,
    load_pandalm,
    load_snow_rte,
    load_snow_valence,
    load_table,
    load_table_folder,
)
from strategic_env.preferences import LabelTable

RTE_PANEL = ("A18941IO2ZZWW6", "A11GX90QFWDLMM", "AXBQF8RALCIGV", "A1Q4VUJBMY78YR", "AEX5NCH03LWSG")
RTE_BEST_WORKER = "AEX5NCH03LWSG"


def agreement(table: LabelTable, worker: str) -> float:
    """Return the share of the worker's labelled items whose label equals the truth."""
    column = table.labels[:, table.workers.index(worker)]
    answered = ~np.isnan(column)
    return float(np.mean(column[answered] == table.truth[answered]))


def write_text(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# ---------------------------------------------------------------------------
# PandaLM, real data
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pandalm(pandalm_dir: Path) -> LabelTable:
    return load_pandalm(pandalm_dir)


def test_pandalm_shape(pandalm: LabelTable) -> None:
    assert pandalm.n_items == 999
    assert pandalm.n_workers == 5


def test_pandalm_worker_order(pandalm: LabelTable) -> None:
    assert pandalm.workers == ("annotator1", "annotator2", "annotator3", "gpt-3.5-turbo", "pandalm-7b")


def test_pandalm_humans_label_every_item(pandalm: LabelTable) -> None:
    assert not np.isnan(pandalm.labels[:, :3]).any()


def test_pandalm_labels_are_mapped_values(pandalm: LabelTable) -> None:
    observed = pandalm.labels[~np.isnan(pandalm.labels)]
    assert set(np.unique(observed)) == {0.0, 0.5, 1.0}
    assert set(np.unique(pandalm.truth)) == {0.0, 0.5, 1.0}


@pytest.mark.parametrize("human", ["annotator1", "annotator2", "annotator3"])
def test_pandalm_human_agreement(pandalm: LabelTable, human: str) -> None:
    # Measured: 0.962, 0.951 and 0.967.
    assert 0.95 <= agreement(pandalm, human) <= 0.97


def test_pandalm_gpt_agreement(pandalm: LabelTable) -> None:
    # Measured: 0.716 on the 974 items where gpt-3.5-turbo returned a usable result.
    assert agreement(pandalm, "gpt-3.5-turbo") == pytest.approx(0.70, abs=0.03)


def test_pandalm_pandalm_judge_agreement(pandalm: LabelTable) -> None:
    # Measured: 0.668 on all 999 items.
    assert agreement(pandalm, "pandalm-7b") == pytest.approx(0.67, abs=0.03)


def test_pandalm_humans_beat_judges(pandalm: LabelTable) -> None:
    human_minimum = min(agreement(pandalm, human) for human in pandalm.workers[:3])
    judge_maximum = max(agreement(pandalm, judge) for judge in pandalm.workers[3:])
    assert human_minimum > judge_maximum + 0.2


def test_pandalm_gpt_garbage_not_asked(pandalm: LabelTable) -> None:
    gpt = pandalm.labels[:, pandalm.workers.index("gpt-3.5-turbo")]
    assert int(np.isnan(gpt).sum()) == 25


def test_pandalm_unanimous_items(pandalm: LabelTable) -> None:
    humans = pandalm.labels[:, :3]
    unanimous = (humans == humans[:, :1]).all(axis=1)
    assert int(unanimous.sum()) == 879


def test_pandalm_description_mentions_own_vote(pandalm: LabelTable) -> None:
    assert "own vote" in pandalm.description


# ---------------------------------------------------------------------------
# PandaLM, small files
# ---------------------------------------------------------------------------


def write_pandalm(
    folder: Path,
    humans: list[tuple[int, int, int]],
    gpt: list[object] | None = None,
    judge: list[object] | None = None,
) -> Path:
    """Write the three PandaLM files. A None judge label leaves that idx out of the judge file."""
    testset = [
        {"idx": idx, "annotator1": first, "annotator2": second, "annotator3": third}
        for idx, (first, second, third) in enumerate(humans)
    ]
    gpt = gpt if gpt is not None else ["1"] * len(humans)
    judge = judge if judge is not None else [1] * len(humans)
    gpt_entries = [{"idx": idx, "gpt_result": label} for idx, label in enumerate(gpt) if label is not None]
    judge_entries = [
        {"idx": idx, "pandalm_result": label} for idx, label in enumerate(judge) if label is not None
    ]
    (folder / "testset-v1.json").write_text(json.dumps(testset), encoding="utf-8")
    (folder / "gpt-3.5-turbo-testset-v1.json").write_text(json.dumps(gpt_entries), encoding="utf-8")
    (folder / "pandalm-7b-testset-v1.json").write_text(json.dumps(judge_entries), encoding="utf-8")
    return folder


def test_pandalm_mapping_small(tmp_path: Path) -> None:
    humans = [(1, 1, 2), (2, 2, 0), (0, 0, 1)]
    folder = write_pandalm(tmp_path, humans, gpt=["Tie", "2", "garbage"], judge=[0, 2, 1])
    table = load_pandalm(folder)
    expected = np.array(
        [
            [1.0, 1.0, 0.0, 0.5, 0.5],
            [0.0, 0.0, 0.5, 0.0, 0.0],
            [0.5, 0.5, 1.0, np.nan, 1.0],
        ]
    )
    np.testing.assert_array_equal(table.labels, expected)
    np.testing.assert_array_equal(table.truth, [1.0, 0.0, 0.5])
    assert table.items == ("0", "1", "2")


def test_pandalm_three_way_split_median(tmp_path: Path) -> None:
    table = load_pandalm(write_pandalm(tmp_path, [(1, 2, 0)]))
    assert table.truth[0] == 0.5


def test_pandalm_missing_judge_idx(tmp_path: Path) -> None:
    table = load_pandalm(write_pandalm(tmp_path, [(1, 1, 1), (2, 2, 2)], judge=[1, None]))
    assert np.isnan(table.labels[1, 4])
    assert table.labels[0, 4] == 1.0


def test_pandalm_unknown_human_label(tmp_path: Path) -> None:
    write_pandalm(tmp_path, [(1, 1, 1), (1, 3, 1)])
    with pytest.raises(ValueError) as error:
        load_pandalm(tmp_path)
    message = str(error.value)
    assert "testset-v1.json" in message
    assert "idx 1" in message
    assert "3" in message


def test_pandalm_unknown_judge_label(tmp_path: Path) -> None:
    write_pandalm(tmp_path, [(1, 1, 1)], gpt=["maybe"])
    with pytest.raises(ValueError) as error:
        load_pandalm(tmp_path)
    message = str(error.value)
    assert "gpt-3.5-turbo-testset-v1.json" in message
    assert "idx 0" in message
    assert "'maybe'" in message


def test_pandalm_garbage_only_for_gpt(tmp_path: Path) -> None:
    write_pandalm(tmp_path, [(1, 1, 1)], judge=["garbage"])
    with pytest.raises(ValueError, match="pandalm-7b-testset-v1.json"):
        load_pandalm(tmp_path)


def test_pandalm_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as error:
        load_pandalm(tmp_path)
    message = str(error.value)
    assert str(tmp_path / "testset-v1.json") in message
    assert "WeOpenML/PandaLM" in message


def test_pandalm_missing_judge_file(tmp_path: Path) -> None:
    write_pandalm(tmp_path, [(1, 1, 1)])
    (tmp_path / "pandalm-7b-testset-v1.json").unlink()
    with pytest.raises(FileNotFoundError, match="pandalm-7b-testset-v1.json"):
        load_pandalm(tmp_path)


# ---------------------------------------------------------------------------
# Snow RTE, real data
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rte_panel(snow_dir: Path) -> LabelTable:
    return load_snow_rte(snow_dir, panel_size=5)


@pytest.fixture(scope="module")
def rte_whole(snow_dir: Path) -> LabelTable:
    return load_snow_rte(snow_dir, panel_size=None)


def test_rte_panel5_shape(rte_panel: LabelTable) -> None:
    assert rte_panel.n_items == 280
    assert rte_panel.workers == RTE_PANEL


def test_rte_panel5_dense(rte_panel: LabelTable) -> None:
    assert not np.isnan(rte_panel.labels).any()


def test_rte_panel5_best_worker(rte_panel: LabelTable) -> None:
    scores = {worker: agreement(rte_panel, worker) for worker in rte_panel.workers}
    assert max(scores, key=scores.get) == RTE_BEST_WORKER
    # Measured on the 280 shared items: 0.832.
    assert scores[RTE_BEST_WORKER] == pytest.approx(0.83, abs=0.03)


@pytest.mark.parametrize("worker", RTE_PANEL[:4])
def test_rte_panel5_other_workers(rte_panel: LabelTable, worker: str) -> None:
    # Measured on the 280 shared items: 0.479, 0.479, 0.507 and 0.507.
    assert 0.45 <= agreement(rte_panel, worker) <= 0.55


@pytest.mark.parametrize("worker", RTE_PANEL[:4])
def test_rte_whole_other_workers(rte_whole: LabelTable, worker: str) -> None:
    # Measured on each worker's own items (800, 760, 700, 540): 0.506, 0.496, 0.576, 0.507.
    assert 0.49 <= agreement(rte_whole, worker) <= 0.58


def test_rte_whole_best_worker(rte_whole: LabelTable) -> None:
    # Measured on the worker's 420 items: 0.852.
    assert agreement(rte_whole, RTE_BEST_WORKER) == pytest.approx(0.85, abs=0.02)


def test_rte_panel4_items(snow_dir: Path) -> None:
    table = load_snow_rte(snow_dir, panel_size=4)
    assert table.n_items == 500
    assert table.workers == RTE_PANEL[:4]


def test_rte_whole_shape(rte_whole: LabelTable) -> None:
    assert rte_whole.n_items == 800
    assert rte_whole.n_workers == 164


def test_rte_whole_ten_labels_per_item(rte_whole: LabelTable) -> None:
    counts = (~np.isnan(rte_whole.labels)).sum(axis=1)
    assert set(counts.tolist()) == {10}


def test_rte_whole_binary_labels(rte_whole: LabelTable) -> None:
    observed = rte_whole.labels[~np.isnan(rte_whole.labels)]
    assert set(np.unique(observed)) == {0.0, 1.0}
    assert set(np.unique(rte_whole.truth)) == {0.0, 1.0}


def test_rte_default_panel_size(snow_dir: Path, rte_panel: LabelTable) -> None:
    table = load_snow_rte(snow_dir)
    assert table.workers == rte_panel.workers
    assert table.items == rte_panel.items


def test_rte_panel_too_large(snow_dir: Path) -> None:
    with pytest.raises(ValueError, match="panel_size=7"):
        load_snow_rte(snow_dir, panel_size=7)


@pytest.mark.parametrize("panel_size", [0, -1, 2.0, True])
def test_rte_invalid_panel_size(snow_dir: Path, panel_size: object) -> None:
    with pytest.raises(ValueError, match="panel_size"):
        load_snow_rte(snow_dir, panel_size=panel_size)


# ---------------------------------------------------------------------------
# Snow valence, real data
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def valence(snow_dir: Path) -> LabelTable:
    return load_snow_valence(snow_dir)


def test_valence_whole_shape(valence: LabelTable) -> None:
    assert valence.n_items == 100
    assert valence.n_workers == 38


def test_valence_labels_in_unit_interval(valence: LabelTable) -> None:
    observed = valence.labels[~np.isnan(valence.labels)]
    assert observed.min() >= 0.0
    assert observed.max() <= 1.0


def test_valence_ten_ratings_per_item(valence: LabelTable) -> None:
    counts = (~np.isnan(valence.labels)).sum(axis=1)
    assert set(counts.tolist()) == {10}


def test_valence_gold_mapping(valence: LabelTable) -> None:
    # Headline 594 has expert gold -66, so (-66 + 100) / 200 = 0.17.
    assert valence.truth[valence.items.index("594")] == pytest.approx(0.17)


def test_valence_panel_tie_by_id(snow_dir: Path) -> None:
    # Two workers have 60 ratings each, and the smaller id takes the second place.
    table = load_snow_valence(snow_dir, panel_size=2)
    assert table.workers == ("ARQ4J4TLTPBNC", "A15L6WGIK3VU7N")
    assert table.n_items == 60


# ---------------------------------------------------------------------------
# Snow, small files
# ---------------------------------------------------------------------------

SNOW_HEADER = "!amt_annotation_ids\t!amt_worker_ids\torig_id\tresponse\tgold"


def test_snow_duplicate_label(tmp_path: Path) -> None:
    write_text(tmp_path / "rte.standardized.tsv", [SNOW_HEADER, "a1\tW1\t7\t1\t1", "a2\tW1\t7\t0\t1"])
    with pytest.raises(ValueError) as error:
        load_snow_rte(tmp_path, panel_size=None)
    message = str(error.value)
    assert "'W1'" in message
    assert "'7'" in message


def test_snow_conflicting_gold(tmp_path: Path) -> None:
    write_text(tmp_path / "rte.standardized.tsv", [SNOW_HEADER, "a1\tW1\t7\t1\t1", "a2\tW2\t7\t0\t0"])
    with pytest.raises(ValueError, match="two different gold labels"):
        load_snow_rte(tmp_path, panel_size=None)


def test_snow_rte_non_binary_label(tmp_path: Path) -> None:
    write_text(tmp_path / "rte.standardized.tsv", [SNOW_HEADER, "a1\tW1\t7\t2\t1"])
    with pytest.raises(ValueError, match="must be 0 or 1"):
        load_snow_rte(tmp_path, panel_size=None)


def test_snow_valence_out_of_range(tmp_path: Path) -> None:
    write_text(tmp_path / "valence.standardized.tsv", [SNOW_HEADER, "a1\tW1\t7\t150\t10"])
    with pytest.raises(ValueError, match="150"):
        load_snow_valence(tmp_path)


def test_snow_valence_mapping_small(tmp_path: Path) -> None:
    write_text(tmp_path / "valence.standardized.tsv", [SNOW_HEADER, "a1\tW1\t7\t-100\t0", "a2\tW2\t7\t-0\t0"])
    table = load_snow_valence(tmp_path)
    np.testing.assert_array_equal(table.labels, [[0.0, 0.5]])
    assert table.truth[0] == 0.5


def test_snow_panel_shares_no_item(tmp_path: Path) -> None:
    write_text(tmp_path / "rte.standardized.tsv", [SNOW_HEADER, "a1\tW1\t7\t1\t1", "a2\tW2\t8\t0\t0"])
    with pytest.raises(ValueError, match="panel_size=2 is too large"):
        load_snow_rte(tmp_path, panel_size=2)


def test_snow_panel_more_than_workers(tmp_path: Path) -> None:
    write_text(tmp_path / "rte.standardized.tsv", [SNOW_HEADER, "a1\tW1\t7\t1\t1"])
    with pytest.raises(ValueError, match="panel_size=2 is too large"):
        load_snow_rte(tmp_path, panel_size=2)


def test_snow_rte_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as error:
        load_snow_rte(tmp_path)
    message = str(error.value)
    assert str(tmp_path / "rte.standardized.tsv") in message
    assert "edwinrobots/bayesian_combination_tutorial2" in message


def test_snow_valence_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as error:
        load_snow_valence(tmp_path)
    message = str(error.value)
    assert str(tmp_path / "valence.standardized.tsv") in message
    assert "edwinrobots/bayesian_combination_tutorial2" in message


# ---------------------------------------------------------------------------
# Generic table
# ---------------------------------------------------------------------------

LABEL_LINES = ["task,worker,label", "t1,w1,1", "t1,w2,0", "t2,w2,0.25", "t3,w3,1"]
GOLD_LINES = ["task,true_label", "t2,0", "t1,1", "t3,0.5"]


def test_table_csv_round_trip(tmp_path: Path) -> None:
    labels = write_text(tmp_path / "labels.csv", LABEL_LINES)
    gold = write_text(tmp_path / "gold.csv", GOLD_LINES)
    table = load_table(labels, gold, name="small")
    assert table.name == "small"
    assert table.items == ("t1", "t2", "t3")
    assert table.workers == ("w1", "w2", "w3")
    expected = np.array([[1.0, 0.0, np.nan], [np.nan, 0.25, np.nan], [np.nan, np.nan, 1.0]])
    np.testing.assert_array_equal(table.labels, expected)
    np.testing.assert_array_equal(table.truth, [1.0, 0.0, 0.5])


def test_table_tsv(tmp_path: Path) -> None:
    labels = write_text(tmp_path / "labels.tsv", [line.replace(",", "\t") for line in LABEL_LINES])
    gold = write_text(tmp_path / "gold.tsv", [line.replace(",", "\t") for line in GOLD_LINES])
    table = load_table(labels, gold)
    assert table.items == ("t1", "t2", "t3")
    assert table.labels[1, 1] == 0.25


def test_table_delimiter_from_header(tmp_path: Path) -> None:
    labels = write_text(tmp_path / "labels.txt", [line.replace(",", "\t") for line in LABEL_LINES])
    gold = write_text(tmp_path / "gold.txt", GOLD_LINES)
    table = load_table(labels, gold)
    assert table.n_items == 3


def test_table_extra_columns_ignored(tmp_path: Path) -> None:
    labels = write_text(tmp_path / "labels.csv", ["worker,extra,task,label", "w1,x,t1,1"])
    gold = write_text(tmp_path / "gold.csv", ["true_label,task", "0,t1"])
    table = load_table(labels, gold)
    assert table.labels[0, 0] == 1.0
    assert table.truth[0] == 0.0


def test_table_label_range_mapping(tmp_path: Path) -> None:
    labels = write_text(tmp_path / "labels.csv", ["task,worker,label", "t1,w1,1", "t1,w2,5", "t1,w3,2"])
    gold = write_text(tmp_path / "gold.csv", ["task,true_label", "t1,3"])
    table = load_table(labels, gold, label_range=(1, 5))
    np.testing.assert_allclose(table.labels, [[0.0, 1.0, 0.25]])
    assert table.truth[0] == pytest.approx(0.5)


def test_table_out_of_range_without_label_range(tmp_path: Path) -> None:
    labels = write_text(tmp_path / "labels.csv", ["task,worker,label", "t1,w1,3"])
    gold = write_text(tmp_path / "gold.csv", ["task,true_label", "t1,1"])
    with pytest.raises(ValueError) as error:
        load_table(labels, gold)
    message = str(error.value)
    assert "3" in message
    assert "label_range" in message


def test_table_gold_out_of_range(tmp_path: Path) -> None:
    labels = write_text(tmp_path / "labels.csv", ["task,worker,label", "t1,w1,1"])
    gold = write_text(tmp_path / "gold.csv", ["task,true_label", "t1,-1"])
    with pytest.raises(ValueError, match="gold.csv"):
        load_table(labels, gold)


def test_table_outside_label_range(tmp_path: Path) -> None:
    labels = write_text(tmp_path / "labels.csv", ["task,worker,label", "t1,w1,7"])
    gold = write_text(tmp_path / "gold.csv", ["task,true_label", "t1,1"])
    with pytest.raises(ValueError, match=r"label_range=\(1, 5\)"):
        load_table(labels, gold, label_range=(1, 5))


@pytest.mark.parametrize("label_range", [(5, 1), (1, 1), (0, float("inf")), ("a", "b"), (1,)])
def test_table_invalid_label_range(tmp_path: Path, label_range: tuple) -> None:
    labels = write_text(tmp_path / "labels.csv", ["task,worker,label", "t1,w1,1"])
    gold = write_text(tmp_path / "gold.csv", ["task,true_label", "t1,1"])
    with pytest.raises(ValueError, match="invalid label_range"):
        load_table(labels, gold, label_range=label_range)


def test_table_non_numeric_label(tmp_path: Path) -> None:
    labels = write_text(tmp_path / "labels.csv", ["task,worker,label", "t1,w1,yes"])
    gold = write_text(tmp_path / "gold.csv", ["task,true_label", "t1,1"])
    with pytest.raises(ValueError, match="'yes'"):
        load_table(labels, gold)


def test_table_empty_label_value(tmp_path: Path) -> None:
    labels = write_text(tmp_path / "labels.csv", ["task,worker,label", "t1,w1,"])
    gold = write_text(tmp_path / "gold.csv", ["task,true_label", "t1,1"])
    with pytest.raises(ValueError, match="missing value in column 'label'"):
        load_table(labels, gold)


def test_table_duplicate_pair(tmp_path: Path) -> None:
    labels = write_text(tmp_path / "labels.csv", ["task,worker,label", "t1,w1,1", "t1,w1,0"])
    gold = write_text(tmp_path / "gold.csv", ["task,true_label", "t1,1"])
    with pytest.raises(ValueError) as error:
        load_table(labels, gold)
    message = str(error.value)
    assert "duplicate" in message
    assert "'t1'" in message
    assert "'w1'" in message


def test_table_duplicate_gold_task(tmp_path: Path) -> None:
    labels = write_text(tmp_path / "labels.csv", ["task,worker,label", "t1,w1,1"])
    gold = write_text(tmp_path / "gold.csv", ["task,true_label", "t1,1", "t1,0"])
    with pytest.raises(ValueError, match="duplicate gold label of task 't1'"):
        load_table(labels, gold)


def test_table_missing_column(tmp_path: Path) -> None:
    labels = write_text(tmp_path / "labels.csv", ["task,annotator,label", "t1,w1,1"])
    gold = write_text(tmp_path / "gold.csv", ["task,true_label", "t1,1"])
    with pytest.raises(ValueError) as error:
        load_table(labels, gold)
    message = str(error.value)
    assert str(labels) in message
    assert "'worker'" in message
    assert "'annotator'" in message


def test_table_items_without_gold_dropped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    labels = write_text(tmp_path / "labels.csv", ["task,worker,label", "t1,w1,1", "t2,w1,0", "t3,w2,1"])
    gold = write_text(tmp_path / "gold.csv", ["task,true_label", "t1,1"])
    with caplog.at_level(logging.WARNING, logger="strategic_env.datasets"):
        table = load_table(labels, gold)
    assert table.items == ("t1",)
    assert table.workers == ("w1",)
    assert "dropped 2 of 3 tasks" in caplog.text
    assert "dropped 1 workers" in caplog.text


def test_table_gold_without_labels_dropped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    labels = write_text(tmp_path / "labels.csv", ["task,worker,label", "t1,w1,1"])
    gold = write_text(tmp_path / "gold.csv", ["task,true_label", "t1,1", "t9,0"])
    with caplog.at_level(logging.WARNING, logger="strategic_env.datasets"):
        table = load_table(labels, gold)
    assert table.items == ("t1",)
    assert "dropped 1 gold tasks" in caplog.text


def test_table_no_common_task(tmp_path: Path) -> None:
    labels = write_text(tmp_path / "labels.csv", ["task,worker,label", "t1,w1,1"])
    gold = write_text(tmp_path / "gold.csv", ["task,true_label", "t2,1"])
    with pytest.raises(ValueError, match="no task"):
        load_table(labels, gold)


def test_table_missing_file(tmp_path: Path) -> None:
    gold = write_text(tmp_path / "gold.csv", GOLD_LINES)
    missing = tmp_path / "labels.csv"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        load_table(missing, gold)


def test_table_folder_csv(tmp_path: Path) -> None:
    write_text(tmp_path / "labels.csv", LABEL_LINES)
    write_text(tmp_path / "gold.tsv", [line.replace(",", "\t") for line in GOLD_LINES])
    table = load_table_folder(tmp_path)
    assert table.name == "table"
    assert table.n_items == 3


def test_table_folder_missing_files(tmp_path: Path) -> None:
    write_text(tmp_path / "labels.csv", LABEL_LINES)
    with pytest.raises(FileNotFoundError) as error:
        load_table_folder(tmp_path)
    message = str(error.value)
    assert str(tmp_path / "gold.csv") in message
    assert str(tmp_path / "gold.tsv") in message


def test_table_folder_both_formats(tmp_path: Path) -> None:
    write_text(tmp_path / "labels.csv", LABEL_LINES)
    write_text(tmp_path / "labels.tsv", [line.replace(",", "\t") for line in LABEL_LINES])
    write_text(tmp_path / "gold.csv", GOLD_LINES)
    with pytest.raises(ValueError, match="Keep only one"):
        load_table_folder(tmp_path)


# ---------------------------------------------------------------------------
# Dispatch
# ---------------------------------------------------------------------------


def test_dataset_names() -> None:
    assert DATASETS == ("pandalm", "snow-rte", "snow-valence", "table")


def test_dataset_table_dispatch(tmp_path: Path) -> None:
    write_text(tmp_path / "labels.csv", ["task,worker,label", "t1,w1,2"])
    write_text(tmp_path / "gold.csv", ["task,true_label", "t1,4"])
    table = load_dataset("table", tmp_path, label_range=(0, 4))
    assert table.labels[0, 0] == 0.5
    assert table.truth[0] == 1.0


def test_dataset_snow_dispatch(snow_dir: Path) -> None:
    table = load_dataset("snow-rte", snow_dir, panel_size=4)
    assert table.name == "snow-rte"
    assert table.n_items == 500


def test_dataset_unknown_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as error:
        load_dataset("imagenet", tmp_path)
    message = str(error.value)
    assert "'imagenet'" in message
    for name in DATASETS:
        assert name in message


@pytest.mark.parametrize("name", ["pandalm", "snow-rte", "snow-valence", "table"])
def test_dataset_missing_folder(tmp_path: Path, name: str) -> None:
    missing = tmp_path / "absent"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        load_dataset(name, missing)
