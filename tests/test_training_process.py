"""The Train view's runs in a child process (`core.child_process`), as the app trains by
default: same visible results, Stop, a killed child, and no TensorFlow in the GUI process.

Each test spawns a TensorFlow child (several seconds on 2 cores); the rest of the suite
trains in-process (`tests/conftest.py`).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from gui.curve_painter import PROCESS_NAME as PAINTER_NAME
from gui.main_window import MainWindow

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_MS = 180000  # a spawned child imports TensorFlow first: slow on a busy 2-core machine


@pytest.fixture(autouse=True)
def train_in_child(monkeypatch: pytest.MonkeyPatch) -> None:
    """The app's default: no SKIN_LESION_TRAIN_IN_PROCESS."""
    monkeypatch.delenv("SKIN_LESION_TRAIN_IN_PROCESS", raising=False)


def start_training(win: MainWindow, data: Path | str, epochs: int) -> None:
    """The tiny MLP (8 px, batch 4, no balancing) for `epochs` epochs, from the Train view."""
    view = win.train_view
    view.set_dataset(str(data))
    view.settings.model_box.setCurrentIndex(view.settings.model_box.findData("mlp"))
    view.settings.size_spin.setValue(8)
    view.settings.epochs_spin.setValue(epochs)
    view.settings.batch_spin.setValue(4)
    view.settings.balance_box.setCurrentIndex(view.settings.balance_box.findData("none"))
    view.start_clicked()
    assert view.is_running()


def spin(until: Callable[[], bool], seconds: float) -> bool:
    """Run the event loop until `until()` or `seconds` pass; returns `until()`."""
    deadline = time.monotonic() + seconds
    while not until() and time.monotonic() < deadline:
        QApplication.processEvents()
        time.sleep(0.01)
    return until()


def training_child() -> multiprocessing.Process:
    """The one training process this test process has running."""
    assert spin(lambda: len(training_children()) == 1, 60)
    [child] = training_children()
    return child


def training_children() -> list[Any]:
    """This process's children but the curves' painter (`gui.curve_painter`)."""
    return [c for c in multiprocessing.active_children() if c.name != PAINTER_NAME]


def run_status(win: MainWindow, row: int = 0) -> str:
    """The Status column of the run list's row `row`."""
    item = win.train_view.runs.table.item(row, 5)
    return item.text() if item is not None else ""


def finished_run_report(data: str) -> dict[str, Any]:
    """Train 2 epochs from a fresh MainWindow's Train view (no qtbot: this also runs in a
    subprocess) and say what the window shows, and whether TensorFlow was imported."""
    app = QApplication.instance() or QApplication([])
    assert app is not None
    win = MainWindow()
    win.show()
    view = win.train_view
    start_training(win, data, epochs=2)
    assert spin(lambda: not view.is_running(), TIMEOUT_MS / 1000), view.log.toPlainText()
    # then the window activates the new model (through its LiteRT twin): wait for that too
    assert spin(lambda: not win.tasks.running(), 120), "tasks still running"
    report = {"epochs": [view.epoch_bar.value(), view.epoch_bar.maximum()],
              "points": view.curves.point_count(), "rows": view.runs.table.rowCount(),
              "status": run_status(win),
              "last_line": view.log.toPlainText().splitlines()[-1],
              "children": len(training_children()),
              "tensorflow": "tensorflow" in sys.modules}
    win.close()
    win.deleteLater()
    QApplication.processEvents()
    return report


def test_a_run_in_the_child_shows_what_an_in_process_run_shows(qtbot, ham_dir: Path) -> None:
    if "tensorflow" in sys.modules:  # imported by an earlier test: ask a fresh process
        code = ("import json, sys\nfrom tests.test_training_process import finished_run_report"
                f"\nprint(json.dumps(finished_run_report({str(ham_dir)!r})))\n")
        env = {k: v for k, v in os.environ.items() if k != "SKIN_LESION_TRAIN_IN_PROCESS"}
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                             text=True, timeout=TIMEOUT_MS / 1000 + 120,
                             env={**env, "QT_QPA_PLATFORM": "offscreen"})
        assert out.returncode == 0, out.stderr[-3000:]
        report = json.loads(out.stdout.strip().splitlines()[-1])
    else:
        report = finished_run_report(str(ham_dir))
    assert report["epochs"] == [2, 2]
    assert report["points"] == 12  # 2 epochs x loss, accuracy, balanced accuracy; train, val
    assert report["rows"] == 1 and report["status"] == "finished"
    assert "] Run finished: balanced accuracy " in report["last_line"]
    assert report["children"] == 0  # the child exited with its run
    assert report["tensorflow"] is False  # training never imported it in the GUI process


def test_stop_ends_the_child_run_as_a_resumable_stopped_run(qtbot, window: MainWindow,
                                                           ham_dir: Path) -> None:
    view = window.train_view
    start_training(window, ham_dir, epochs=200)
    child = training_child()
    qtbot.waitUntil(lambda: view.epoch_bar.value() >= 1, timeout=TIMEOUT_MS)
    qtbot.mouseClick(view.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not view.is_running(), timeout=120000)
    assert child.exitcode == 0  # it stopped itself: never terminated
    assert view.epoch_bar.value() < 200
    assert "Run stopped" in view.log.toPlainText(), view.log.toPlainText()
    assert run_status(window) == "stopped, resumable"
    assert training_children() == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SIGKILL of a child: Linux")
def test_a_killed_child_gives_one_clear_line_and_a_resumable_run(qtbot, window: MainWindow,
                                                                 ham_dir: Path) -> None:
    view = window.train_view
    start_training(window, ham_dir, epochs=200)
    child = training_child()
    qtbot.waitUntil(lambda: view.epoch_bar.value() >= 1, timeout=TIMEOUT_MS)
    assert child.pid is not None
    os.kill(child.pid, signal.SIGKILL)
    qtbot.waitUntil(lambda: not view.is_running(), timeout=30000)
    log = view.log.toPlainText()
    assert log.splitlines()[-1].endswith(
        "] Training did not finish: training process ended unexpectedly (exit code -9); the "
        "run folder keeps its last finished epoch, Resume continues it"), log
    assert "Traceback" not in log
    assert view.epoch_bar.format() == "Did not finish (see the log)"
    assert run_status(window) == "unfinished, resumable"
    view.runs.table.selectRow(0)
    assert view.runs.resume_button.isEnabled()
    assert view.start_button.isEnabled()  # not frozen: a new run can start



class Recorder:
    """A training context that keeps what it is told."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def progress(self, done: int, total: int) -> None:
        pass

    def status(self, text: str) -> None:
        self.lines.append(text)

    def event(self, event: object) -> None:
        pass

    def should_stop(self) -> bool:
        return False


def test_an_error_in_the_child_reaches_the_worker_as_the_same_one_line(tmp_path: Path) -> None:
    from core.child_process import run_training, run_training_in_child
    from core.errors import SkinLesionError

    not_a_run = str(tmp_path)  # resuming it fails before TensorFlow is needed: a quick child
    with pytest.raises(SkinLesionError) as here:
        run_training(None, not_a_run, Recorder())
    recorder = Recorder()
    with pytest.raises(SkinLesionError) as there:
        run_training_in_child(None, not_a_run, recorder)
    assert "is not a resumable run" in str(here.value)
    assert str(there.value) == str(here.value)
    assert recorder.lines[:2] == ["Starting the training process…", "Loading TensorFlow…"]
    assert training_children() == []
