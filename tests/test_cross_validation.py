"""Lesion-grouped k-fold cross-validation: the folds, the CLI, stop and resume, the Train view."""

from __future__ import annotations

import json
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd
import pytest

from core.cli import main
from core.cross_validation import FoldStarted, cross_validate
from core.errors import DatasetError
from core.runs import list_runs
from core.splits import grouped_folds, split_fold
from core.training import BatchProgress, TrainConfig

CLASSES = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")


def records(per_class: int = 12, patients: bool = False) -> pd.DataFrame:
    """Metadata rows only: 1-3 images per lesion; with `patients`, 2 lesions a patient
    and every seventh row without a patient id."""
    rows, rng = [], np.random.default_rng(0)
    for ci, c in enumerate(CLASSES):
        for lesion in range(per_class):
            for _ in range(int(rng.integers(1, 4))):
                n = len(rows)
                rows.append({"image_id": f"ISIC_{n:07d}", "lesion_id": f"HAM_{c}_{lesion}",
                             "dx": c, "patient_id": "" if n % 7 == 0 else
                             f"P_{ci}_{lesion // 2}"})
    frame = pd.DataFrame(rows)
    return frame if patients else frame.drop(columns="patient_id")


def _ids(frame: pd.DataFrame, column: str, positions: np.ndarray) -> set[str]:
    return {v for v in frame[column].iloc[positions] if v}


@pytest.mark.parametrize("k", [3, 5])
def test_folds_share_no_lesion_cover_every_image_once_and_keep_every_class(k: int) -> None:
    frame = records()
    folds = grouped_folds(frame, k, seed=1)
    assert len(folds) == k
    tests = np.concatenate([test for _, test in folds])
    assert sorted(tests) == list(range(len(frame)))  # each image in exactly one test part
    for train, test in folds:
        assert not _ids(frame, "lesion_id", train) & _ids(frame, "lesion_id", test)
        assert set(frame["dx"].iloc[test]) == set(CLASSES)  # 12 lesions a class >= k
    for a in range(k):
        for b in range(a + 1, k):
            assert not _ids(frame, "lesion_id", folds[a][1]) & _ids(frame, "lesion_id",
                                                                    folds[b][1])
    subset = split_fold(frame, k, 2, val_fraction=0.15, seed=1).to_numpy()
    assert list(np.flatnonzero(subset == "test")) == sorted(folds[1][1])
    parts = {p: _ids(frame, "lesion_id", np.flatnonzero(subset == p))
             for p in ("train", "val", "test")}
    assert parts["val"] and not parts["train"] & parts["val"]
    assert not (parts["train"] | parts["val"]) & parts["test"]


def test_with_patient_ids_no_patient_is_in_two_folds() -> None:
    frame = records(patients=True)
    folds = grouped_folds(frame, 4, seed=0)
    for train, test in folds:
        assert not _ids(frame, "patient_id", train) & _ids(frame, "patient_id", test)
        assert not _ids(frame, "lesion_id", train) & _ids(frame, "lesion_id", test)
    subset = split_fold(frame, 4, 1, seed=0).to_numpy()
    train, val = (np.flatnonzero(subset == p) for p in ("train", "val"))
    assert not _ids(frame, "patient_id", train) & _ids(frame, "patient_id", val)


def test_too_few_lesions_or_a_leaky_split_are_refused(ham_dir: Path) -> None:
    with pytest.raises(DatasetError, match="at least 5 distinct lesions"):
        grouped_folds(records(per_class=1).iloc[:8], 5)
    with pytest.raises(DatasetError, match="lesion split"):
        TrainConfig(data_dir=str(ham_dir), folds=3, split="seed-leaky").validate()


def _config(ham_dir: Path, epochs: int) -> TrainConfig:
    return TrainConfig(data_dir=str(ham_dir), model="mlp", image_size=8, epochs=epochs,
                       batch_size=8, balance="resample:10", seed=3, folds=3)


def _test_lesions(group: Path, fold: int) -> set[str]:
    split = pd.read_csv(group / f"fold{fold}" / "split.csv", dtype=str)
    return set(split.loc[split["subset"] == "test", "lesion_id"])


def test_train_folds_3_prints_mean_sd_and_writes_three_grouped_runs(
        ham_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from core.paths import runs_dir

    group = runs_dir() / "cv-group"
    assert main(["train", "--data", str(ham_dir), "--model", "mlp", "--image-size", "8",
                 "--epochs", "1", "--batch-size", "8", "--balance", "resample:10",
                 "--folds", "3", "--out", str(group)]) == 0
    captured = capsys.readouterr()
    assert "balanced accuracy: " in captured.out and " ± " in captured.out
    assert "(mean ± SD over 3 folds)" in captured.out
    assert "all folds 3/3" in captured.err  # the progress over every fold
    summary = json.loads((group / "cv_summary.json").read_text())
    assert [r["fold"] for r in summary["per_fold"]] == [1, 2, 3]
    assert summary["grouped_by"] == "lesion"
    values = [r["balanced_accuracy"] for r in summary["per_fold"]]
    assert summary["mean_sd"]["balanced_accuracy"]["mean"] == pytest.approx(np.mean(values))
    assert summary["mean_sd"]["balanced_accuracy"]["sd"] == pytest.approx(np.std(values,
                                                                                 ddof=1))
    for fold in (1, 2, 3):
        run = group / f"fold{fold}"
        assert (run / "model.keras").is_file() and (run / "metrics.json").is_file()
        config = json.loads((run / "config.json").read_text())
        assert (config["folds"], config["fold"]) == (3, fold)
    tests = [_test_lesions(group, f) for f in (1, 2, 3)]
    assert not (tests[0] & tests[1] or tests[0] & tests[2] or tests[1] & tests[2])
    assert len(set().union(*tests)) == 21  # every lesion tested once
    runs = list_runs()
    assert sorted(r.name for r in runs) == [f"cv-group · fold {f}/3" for f in (1, 2, 3)]
    assert all(not r.damaged and not r.resumable for r in runs)


def test_a_stop_in_fold_2_resumes_without_retraining_fold_1(
        ham_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folds: list[FoldStarted] = []
    batches: list[BatchProgress] = []

    def stop() -> bool:  # fold 1 done, fold 2's epoch 1 done, then stopped in its epoch 2
        return len(batches) >= 12  # batches of fold 2 only (at most 9 an epoch)

    group = tmp_path / "group"
    first = cross_validate(_config(ham_dir, 2), out_dir=group, on_fold=folds.append,
                           on_batch=lambda b: batches.append(b) if folds[-1].fold == 2 else None,
                           should_stop=stop)
    assert first.stopped and first.summary is None and first.last_run == group / "fold2"
    assert [f.fold for f in folds] == [1, 2] and not (group / "fold3").exists()
    assert not (group / "cv_summary.json").exists()
    fold1 = {p.name: p.stat().st_mtime_ns for p in (group / "fold1").iterdir()}
    [stopped] = [r for r in list_runs(group.parent) if r.path.name == "fold2"]
    assert stopped.resumable and stopped.name == "group · fold 2/3"
    capsys.readouterr()
    assert main(["train", "--resume", str(group / "fold2")]) == 0  # a fold: its group goes on
    captured = capsys.readouterr()
    assert "(mean ± SD over 3 folds)" in captured.out
    assert "fold 1/3" not in captured.err and "fold 2/3: resuming" in captured.err
    assert "resuming after epoch 1" in captured.err
    assert {p.name: p.stat().st_mtime_ns for p in (group / "fold1").iterdir()} == fold1
    history = pd.read_csv(group / "fold2" / "history.csv")
    assert list(history["epoch"]) == [1, 2]
    summary = json.loads((group / "cv_summary.json").read_text())
    assert len(summary["per_fold"]) == 3
    assert main(["train", "--resume", str(group)]) == 2  # finished: nothing to resume
    assert "already finished" in capsys.readouterr().err


def test_the_train_view_cross_validates_into_grouped_runs(qtbot, ham_dir: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QMessageBox, QSpinBox

    from gui.main_window import MainWindow

    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    try:
        view = window.train_view
        view.set_dataset(str(ham_dir))
        settings = view.settings
        settings.model_box.setCurrentIndex(settings.model_box.findData("mlp"))
        settings.size_spin.setValue(8)
        settings.epochs_spin.setValue(1)
        settings.batch_spin.setValue(8)
        settings.balance_box.setCurrentIndex(settings.balance_box.findData("none"))
        folds = cast(QSpinBox, settings.editors["folds"])
        assert folds.specialValueText() == "off" and folds.value() == 1
        folds.setValue(3)
        qtbot.mouseClick(view.start_button, Qt.MouseButton.LeftButton)
        assert view.is_running() and view.epoch_bar.maximum() == 3  # every fold's epochs
        qtbot.waitUntil(lambda: not view.is_running(), timeout=180000)
        log = view.log.toPlainText()
        assert "(mean ± SD over 3 folds)" in log, log
        assert view.epoch_bar.value() == view.epoch_bar.maximum() == 3
        names = sorted(view.runs.table.item(r, 0).text() for r in range(3))
        assert view.runs.table.rowCount() == 3
        assert [n.split(" · ")[1] for n in names] == [f"fold {f}/3" for f in (1, 2, 3)]
        assert len({n.split(" · ")[0] for n in names}) == 1  # one group
        assert all(view.runs.table.item(r, 5).text() == "finished" for r in range(3))
    finally:
        window.tasks.stop_all()
