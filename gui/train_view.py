"""The Train view: settings, Start/Stop, progress with ETA, live curves, log and run list."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from core.checkpoints import BatchProgress, EpochResult
from core.config import TrainConfig
from core.cross_validation import FoldStarted, group_of, summary_text
from core.errors import SkinLesionError
from core.models import MODELS
from core.runs import RunFolder
from gui.run_list import RunListWidget
from gui.train_settings import TrainSettings
from gui.training_curves import TrainingCurves

DEVICE_PREFIX = "device: "  # the status line core.training sends with the devices in use
BATCH_EVENT_INTERVAL_S = 0.05  # enough for a smooth bar without flooding the GUI thread


def _clock(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class TrainView(QWidget):
    """Configure and run a training; finished runs appear in the run list."""

    run_open_requested = Signal(str)
    run_finished = Signal(str)
    message = Signal(str)
    train_requested = Signal(object)  # a TrainConfig
    resume_requested = Signal(str)  # a run folder
    stop_requested = Signal()
    device_changed = Signal(str)  # the devices a run trains on ("" when it ends)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.running = False
        self.dataset = ""
        self._fit_started: float | None = None
        self._run_started = 0.0
        self._phase = "Decoding images"
        self._cv: tuple[int, int, int] | None = None  # fold, folds, epochs of a fold
        self._done_before = 0  # batches done before this session (a resumed run)

        self.dataset_label = QLabel("No dataset: open one in the Dataset view first.")
        self.dataset_label.setWordWrap(True)
        self.settings = TrainSettings()
        self.settings.changed.connect(self._update_enabled)

        self.start_button = QPushButton("Start training")
        self.stop_button = QPushButton("Stop")
        self.start_button.clicked.connect(self.start_clicked)
        self.stop_button.clicked.connect(self.stop_clicked)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)

        self.epoch_bar = QProgressBar()
        self.epoch_bar.setFormat("Epoch %v / %m")
        self.batch_bar = QProgressBar()
        self.batch_bar.setFormat("Batch %v / %m")
        self.time_label = QLabel("")
        self.curves = TrainingCurves()
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(5000)
        self.runs = RunListWidget()
        self.runs.open_requested.connect(self.run_open_requested)
        self.runs.resume_requested.connect(self.resume_run)

        scroll = QScrollArea()  # ~20 settings: they scroll rather than squeeze the curves
        scroll.setWidget(self.settings)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        # never sideways: the column is as wide as the settings' widest row plus the scroll bar
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(self.settings.minimumSizeHint().width()
                               + scroll.verticalScrollBar().sizeHint().width() + 4)
        left = QVBoxLayout()
        left.addWidget(self.dataset_label)
        left.addWidget(scroll, 1)
        left.addLayout(buttons)
        left_widget = QWidget()
        left_widget.setLayout(left)
        progress = QVBoxLayout()
        progress.addWidget(self.epoch_bar)
        progress.addWidget(self.batch_bar)
        progress.addWidget(self.time_label)
        progress.addWidget(self.curves, 1)
        progress_widget = QWidget()
        progress_widget.setLayout(progress)
        # runs and log share the space under the curves (side by side they made the window
        # wider than a 1024 px screen)
        below = QTabWidget()
        below.addTab(self.runs, "Runs")
        below.addTab(self.log, "Log")
        self.below = below
        right = QSplitter(Qt.Orientation.Vertical)  # the curves get the whole width
        right.addWidget(progress_widget)
        right.addWidget(below)
        right.setSizes([520, 300])
        splitter = QSplitter()
        splitter.addWidget(left_widget)
        splitter.addWidget(right)
        splitter.setSizes([self.settings.sizeHint().width() + 24, 1000])
        splitter.setCollapsible(0, False)
        splitter.setStretchFactor(1, 1)  # a wider window widens the curves, not the settings
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)

        self._update_enabled()

    def _update_enabled(self) -> None:
        running = self.running
        self.settings.setEnabled(not running)
        self.start_button.setEnabled(bool(self.dataset) and not running)
        self.stop_button.setEnabled(running)

    def set_dataset(self, folder: str, n_images: int | None = None) -> None:
        """Use `folder` (of `n_images` images, when known) for the next training run."""
        self.dataset = folder
        # the folder's name (and size) reads at a glance; the whole path is in the tooltip
        count = f" ({n_images:,} images)" if n_images else ""
        self.dataset_label.setText(f"Dataset: {Path(folder).name or folder}{count}")
        self.dataset_label.setToolTip(folder)
        self.settings.set_dataset_size(n_images)
        self._update_enabled()

    def config(self) -> TrainConfig:
        """The settings as a `TrainConfig` for the current dataset."""
        return self.settings.config(self.dataset)

    @Slot()
    def start_clicked(self) -> None:
        """Start a run with the current settings (ignored while one runs)."""
        if self.running or not self.dataset:
            return
        config = self.config()
        cv = f"{config.folds}-fold cross-validation of " if config.folds > 1 else ""
        self._begin(config.epochs * config.folds,
                    f"Starting {cv}{MODELS[config.model].title} on {config.data_dir}")
        self.train_requested.emit(config)

    @Slot(str)
    def resume_run(self, run_dir: str) -> None:
        """Continue a stopped or killed run from its last completed epoch."""
        if self.running:
            return
        run = RunFolder(run_dir)
        try:
            problem = run.resume_problem()
            if problem:
                raise SkinLesionError(problem)
            config = run.read_config()
            epochs = config.epochs * (config.folds if group_of(run_dir) else 1)
            history = run.read_history(run.read_state().epochs_completed)
        except (SkinLesionError, OSError, ValueError, KeyError) as exc:
            self._log(f"Cannot resume {run.name}: {exc}")
            self.below.setCurrentWidget(self.log)
            return
        self._begin(epochs, f"Resuming {run.name}")
        for row in history:
            self.curves.add_epoch(int(row["epoch"]), row)
        self.epoch_bar.setValue(len(history))
        self.resume_requested.emit(run_dir)

    def _begin(self, epochs: int, message: str) -> None:
        self.curves.start_run(epochs)
        self.log.clear()
        self.epoch_bar.setRange(0, epochs)
        self.epoch_bar.setValue(0)
        self.epoch_bar.setFormat("Epoch %v / %m")
        self.batch_bar.setValue(0)
        self.batch_bar.setFormat("Batch %v / %m")
        self._fit_started, self._run_started = None, time.monotonic()
        self._cv, self._done_before = None, 0
        self._log(message)

    def _fold_started(self, event: FoldStarted) -> None:
        """A fold of a cross-validation starts: the bar counts every fold's epochs."""
        self._cv = (event.fold, event.folds, event.epochs)
        self.curves.start_run(event.epochs)
        for row in RunFolder(event.run_dir).read_history(event.epochs_done):
            self.curves.add_epoch(int(row["epoch"]), row)
        self.epoch_bar.setRange(0, event.folds * event.epochs)
        self.epoch_bar.setValue((event.fold - 1) * event.epochs + event.epochs_done)
        self.epoch_bar.setFormat(f"Fold {event.fold}/{event.folds} · all folds: epoch %v / %m")
        self._log(f"Fold {event.fold}/{event.folds}: {event.run_dir}")

    def set_running(self, running: bool) -> None:
        """Called by whoever runs the training: the form locks while a run is in progress."""
        self.running = running
        self._update_enabled()

    @Slot()
    def stop_clicked(self) -> None:
        """Ask the running training to stop after the current batch."""
        if self.running:
            self.stop_requested.emit()
            self.stop_button.setEnabled(False)
            self._log("Stopping after this batch; the best epoch so far is kept…")

    @Slot(int, int)
    def on_load_progress(self, done: int, total: int) -> None:
        self.batch_bar.setFormat(f"{self._phase} %v / %m")
        self.batch_bar.setRange(0, total)
        self.batch_bar.setValue(done)

    @Slot(object)
    def on_event(self, event: object) -> None:
        fold, folds, epochs = self._cv or (1, 1, 0)
        offset = (fold - 1) * epochs  # epochs of the folds before this one
        if isinstance(event, FoldStarted):
            self._fold_started(event)
        elif isinstance(event, BatchProgress):
            done = (offset + event.epoch - 1) * event.batches + event.batch
            if self._fit_started is None:
                self._fit_started, self._done_before = time.monotonic(), done - 1
                self.batch_bar.setFormat("Batch %v / %m")
            self.batch_bar.setRange(0, event.batches)
            self.batch_bar.setValue(event.batch)
            elapsed = time.monotonic() - self._fit_started
            total = (folds * epochs if self._cv else event.epochs) * event.batches
            remaining = elapsed / max(1, done - self._done_before) * (total - done)
            self.time_label.setText(f"Elapsed {_clock(time.monotonic() - self._run_started)}"
                                    f" · ETA {_clock(remaining)}")
        elif isinstance(event, EpochResult):
            self.epoch_bar.setValue(offset + event.epoch)
            self.curves.add_epoch(event.epoch, event.logs)
            shown = "  ".join(f"{k} {v:.4f}" for k, v in event.logs.items() if k != "epoch")
            where = f"Fold {fold}/{folds} · " if self._cv else ""
            self._log(f"{where}Epoch {event.epoch}/{event.epochs} ({event.seconds:.1f} s)  "
                      f"{shown}")

    @Slot(object)
    def on_finished(self, result: dict[str, Any]) -> None:
        metrics = result["metrics"]
        self._end_busy()
        if "cv" in result:
            self._cv_finished(result)
            return
        if metrics.get("unfinished"):
            self._log("Stopped before the first epoch ended: nothing was evaluated and no "
                      "model was saved. The run is listed as unfinished; Resume starts it "
                      "again with the same settings.")
            self.epoch_bar.setFormat("Stopped before the first epoch ended")
            self.batch_bar.setFormat("Not evaluated: no epoch completed")
            self.time_label.setText(f"Stopped after {_clock(time.monotonic() - self._run_started)}")
            self.runs.refresh()
            self.below.setCurrentWidget(self.runs)
            self.message.emit("Training stopped before its first epoch; kept unfinished as "
                              f"run {Path(result['run_dir']).name}")
            return
        state = "stopped" if result["stopped"] else "finished"
        self._log(f"Run {state}: balanced accuracy {metrics['balanced_accuracy']:.3f}, "
                  f"accuracy {metrics['accuracy']:.3f} (always "
                  f"'{metrics['majority_class']}': {metrics['majority_baseline_accuracy']:.3f})"
                  f" on {metrics['n_images']} {metrics['evaluated_on']} images")
        if result["stopped"]:
            done = int(metrics.get("epochs_completed", self.epoch_bar.value()))
            self.epoch_bar.setFormat(f"Stopped after epoch {done} of %m" if done else
                                     "Stopped before the first epoch ended")
            self.batch_bar.setFormat("Stopped: the best epoch was kept and evaluated" if done
                                     else "Stopped: no epoch completed")
        else:
            self.epoch_bar.setValue(self.epoch_bar.maximum())
            self.batch_bar.setValue(self.batch_bar.maximum())
            done = int(metrics.get("epochs_completed", self.epoch_bar.value()))
            self.epoch_bar.setFormat(f"Finished: {done} epoch{'s' * (done != 1)}"
                                     if not metrics.get("early_stopped")
                                     else f"Stopped early (no better epoch) after "
                                     f"{metrics.get('epochs_completed')} epochs")
            self.batch_bar.setFormat("Done")
        # the ETA is over: say how long the whole run took instead of a stale estimate
        self.time_label.setText(f"Took {_clock(time.monotonic() - self._run_started)}")
        self.runs.refresh()
        self.below.setCurrentWidget(self.runs)
        self.run_finished.emit(result["run_dir"])
        self.message.emit(f"Training {state}; saved as run {Path(result['run_dir']).name} "
                          "(Runs list below)")

    def _cv_finished(self, result: dict[str, Any]) -> None:
        """A cross-validation ended: its summary, or where it stopped."""
        group, took = Path(result["group_dir"]), _clock(time.monotonic() - self._run_started)
        summary = result["cv"]
        if summary is None:
            self._log(f"Cross-validation {group.name} stopped in {Path(result['run_dir']).name}"
                      "; Resume on that fold continues it, then trains the remaining folds.")
            self.epoch_bar.setFormat(f"Stopped in fold {self._cv[0] if self._cv else '?'}")
            self.batch_bar.setFormat("Stopped: finished folds are kept")
            message = f"Cross-validation stopped; resumable in {group.name}"
        else:
            self._log(summary_text(summary))
            self.epoch_bar.setValue(self.epoch_bar.maximum())
            self.epoch_bar.setFormat(f"Finished: {summary['folds']} folds")
            self.batch_bar.setValue(self.batch_bar.maximum())
            self.batch_bar.setFormat("Done")
            ba = summary["mean_sd"]["balanced_accuracy"]
            spread = f" ± {ba['sd']:.3f}" if ba["sd"] is not None else ""
            message = (f"Cross-validation finished: balanced accuracy {ba['mean']:.3f}{spread} "
                       f"over {summary['folds']} folds ({group.name}, Runs list below)")
        self.time_label.setText(f"Took {took}")
        self.runs.refresh()
        self.below.setCurrentWidget(self.runs)
        if RunFolder(result["run_dir"]).model_path.is_file():
            self.run_finished.emit(result["run_dir"])
        self.message.emit(message)

    @Slot(str)
    def on_failed(self, message: str) -> None:
        self._end_busy()
        self.epoch_bar.setFormat("Did not finish (see the log)")
        self.batch_bar.setFormat(message[:80])
        self._log(f"Training did not finish: {message}")
        self.time_label.setText(f"Stopped after {_clock(time.monotonic() - self._run_started)}")
        self.runs.refresh()  # a run that died keeps its last epoch: listed as resumable
        self.below.setCurrentWidget(self.log)
        self.message.emit(f"Training did not finish: {message}")

    def _end_busy(self) -> None:
        if self.batch_bar.maximum() == 0:  # the finishing phases' busy bar ends full
            self.batch_bar.setRange(0, 1)
            self.batch_bar.setValue(1)

    @Slot()
    def on_done(self) -> None:
        self.set_running(False)
        self.device_changed.emit("")

    @Slot(str)
    def on_status(self, text: str) -> None:
        """A phase message from the run: logged, and it names what the bar counts."""
        if text.startswith(DEVICE_PREFIX):
            self.device_changed.emit(text[len(DEVICE_PREFIX):])
        if self._fit_started is not None and not text.startswith(DEVICE_PREFIX):
            # after the epochs: gate, temperature, test part, twin; say which, and that the
            # run is alive, instead of full bars with a frozen ETA
            self.batch_bar.setRange(0, 0)
            self.batch_bar.setFormat(text[:1].upper() + text[1:80])
            self.time_label.setText(f"Elapsed {_clock(time.monotonic() - self._run_started)}"
                                    f" · finishing: {text}")
        if "features" in text:
            self._phase = "Backbone features"
        elif text.startswith("decoding"):
            self._phase = "Decoding images"
        self._log(text)

    @Slot(str)
    def _log(self, text: str) -> None:
        self.log.appendPlainText(f"[{time.strftime('%H:%M:%S')}] {text}")

    def is_running(self) -> bool:
        """Whether a training run is in progress."""
        return self.running
