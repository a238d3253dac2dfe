"""The Train view: settings, Start/Stop, progress with ETA, live curves, log and run list."""

from __future__ import annotations

import json
import time
from functools import partial
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from core.checkpoints import read_history, read_state
from core.models import MODELS
from core.training import BatchProgress, EpochResult, TrainConfig
from gui.run_list import RunListWidget
from gui.tasks import Task, TaskContext, TaskRunner
from gui.training_curves import TrainingCurves

BATCH_EVENT_INTERVAL_S = 0.05  # enough for a smooth bar without flooding the GUI thread


def training_task(config: TrainConfig | None, resume_dir: str | None,
                  ctx: TaskContext) -> dict[str, Any]:
    """Run `core.training.train` (or `resume`) in a worker, forwarding hooks as events."""
    from core.training import resume, train

    last = 0.0

    def on_batch(progress: BatchProgress) -> None:
        nonlocal last
        now = time.monotonic()
        if progress.batch == progress.batches or now - last >= BATCH_EVENT_INTERVAL_S:
            last = now
            ctx.event(progress)

    hooks: dict[str, Any] = dict(on_epoch=ctx.event, on_batch=on_batch,
                                 should_stop=ctx.should_stop, on_status=ctx.status,
                                 on_load_progress=ctx.progress)
    if resume_dir:
        result = resume(resume_dir, **hooks)
    elif config is not None:
        result = train(config, **hooks)
    else:
        raise ValueError("training_task needs a config or a run folder to resume")
    return {"run_dir": str(result.run_dir), "metrics": result.metrics,
            "stopped": result.stopped, "best_epoch": result.best_epoch}


def _clock(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class TrainView(QWidget):
    """Configure and run a training; finished runs appear in the run list."""

    run_open_requested = Signal(str)
    run_finished = Signal(str)
    message = Signal(str)

    def __init__(self, tasks: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tasks = tasks
        self.task: Task | None = None
        self.dataset = ""
        self._fit_started: float | None = None
        self._run_started = 0.0

        self.dataset_label = QLabel("No dataset: open one in the Dataset view first.")
        self.dataset_label.setWordWrap(True)
        self.model_box = QComboBox()
        for key, spec in MODELS.items():
            self.model_box.addItem(spec.title, key)
        self.size_spin = self._spin(8, 512, 32, " px")
        self.epochs_spin = self._spin(1, 1000, 50)
        self.batch_spin = self._spin(1, 1024, 32)
        self.lr_spin = QDoubleSpinBox()
        self.lr_spin.setDecimals(5)
        self.lr_spin.setRange(0.00001, 0.5)
        self.lr_spin.setSingleStep(0.0001)
        self.lr_spin.setValue(0.001)
        self.balance_box = QComboBox()
        self.balance_box.addItem("Resample each class (training part only)", "resample")
        self.balance_box.addItem("Class weights", "class-weights")
        self.balance_box.addItem("None", "none")
        self.per_class_spin = self._spin(1, 100000, 500, " per class")
        self.split_box = QComboBox()
        self.split_box.addItem("By lesion: train / val / test (honest)", "lesion")
        self.split_box.addItem("Study's seed-leaky 80/20 (inflated scores)", "seed-leaky")
        self.seed_spin = self._spin(0, 2**31 - 1, 42)
        self.crop_box = QComboBox()
        self.crop_box.addItem("Whole frame, squashed (study)", "squash")
        self.crop_box.addItem("Centre square crop", "center")
        self.augment_check = QCheckBox("Random flips and rotations")
        self.weights_edit = QLineEdit()
        self.weights_edit.setPlaceholderText("download ImageNet weights (needs internet)")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._choose_weights)
        weights_row = QHBoxLayout()
        weights_row.addWidget(self.weights_edit)
        weights_row.addWidget(browse)
        self.leak_warning = QLabel("⚠ The seed-leaky protocol resamples before splitting: copies "
                                   "of one image sit on both sides and scores are inflated.")
        self.leak_warning.setWordWrap(True)
        self.leak_warning.setStyleSheet("color: #a15c00;")

        form = QFormLayout()
        form.addRow("Model", self.model_box)
        form.addRow("Image size", self.size_spin)
        form.addRow("Epochs", self.epochs_spin)
        form.addRow("Batch size", self.batch_spin)
        form.addRow("Learning rate", self.lr_spin)
        form.addRow("Balancing", self.balance_box)
        form.addRow("", self.per_class_spin)
        form.addRow("Split", self.split_box)
        form.addRow("", self.leak_warning)
        form.addRow("Split seed", self.seed_spin)
        form.addRow("Crop", self.crop_box)
        form.addRow("Augmentation", self.augment_check)
        form.addRow("ImageNet weights", weights_row)
        settings = QGroupBox("Settings (the study's values are the defaults)")
        settings.setLayout(form)

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

        left = QVBoxLayout()
        left.addWidget(self.dataset_label)
        left.addWidget(settings)
        left.addLayout(buttons)
        left.addStretch(1)
        left_widget = QWidget()
        left_widget.setLayout(left)
        middle = QVBoxLayout()
        middle.addWidget(self.epoch_bar)
        middle.addWidget(self.batch_bar)
        middle.addWidget(self.time_label)
        middle.addWidget(self.curves, 3)
        middle.addWidget(self.log, 1)
        middle_widget = QWidget()
        middle_widget.setLayout(middle)
        splitter = QSplitter()
        for widget in (left_widget, middle_widget, self.runs):
            splitter.addWidget(widget)
        splitter.setSizes([340, 560, 440])
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)

        self.model_box.currentIndexChanged.connect(self._model_changed)
        self.balance_box.currentIndexChanged.connect(self._update_enabled)
        self.split_box.currentIndexChanged.connect(self._update_enabled)
        self._model_changed()

    @staticmethod
    def _spin(low: int, high: int, value: int, suffix: str = "") -> QSpinBox:
        spin = QSpinBox()
        spin.setRange(low, high)
        spin.setValue(value)
        spin.setSuffix(suffix)
        return spin

    def _model_changed(self) -> None:
        self.size_spin.setValue(MODELS[self.model_box.currentData()].image_size)
        self._update_enabled()

    def _update_enabled(self) -> None:
        running = self.task is not None
        uses_weights = MODELS[self.model_box.currentData()].uses_imagenet
        self.weights_edit.setEnabled(uses_weights and not running)
        self.per_class_spin.setEnabled(self.balance_box.currentData() == "resample")
        self.leak_warning.setVisible(self.split_box.currentData() == "seed-leaky")
        self.start_button.setEnabled(bool(self.dataset) and not running)
        self.stop_button.setEnabled(running)

    def _choose_weights(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "ImageNet weights file", "",
                                              "Keras weights (*.h5 *.weights.h5)")
        if path:
            self.weights_edit.setText(path)

    def set_dataset(self, folder: str) -> None:
        """Use `folder` for the next training run."""
        self.dataset = folder
        self.dataset_label.setText(f"Dataset: {folder}")
        self._update_enabled()

    def config(self) -> TrainConfig:
        """The settings as a `TrainConfig`."""
        balance = self.balance_box.currentData()
        if balance == "resample":
            balance = f"resample:{self.per_class_spin.value()}"
        return TrainConfig(
            data_dir=self.dataset, model=self.model_box.currentData(),
            image_size=self.size_spin.value(), epochs=self.epochs_spin.value(),
            batch_size=self.batch_spin.value(), learning_rate=self.lr_spin.value(),
            balance=balance, split=self.split_box.currentData(), seed=self.seed_spin.value(),
            crop=self.crop_box.currentData(), augment=self.augment_check.isChecked(),
            weights=self.weights_edit.text().strip() or "imagenet")

    @Slot()
    def start_clicked(self) -> None:
        """Start a run with the current settings (ignored while one runs)."""
        if self.task is not None or not self.dataset:
            return
        config = self.config()
        self._begin(config.epochs, f"Starting {MODELS[config.model].title} on {config.data_dir}")
        self._run(partial(training_task, config, None))

    @Slot(str)
    def resume_run(self, run_dir: str) -> None:
        """Continue a stopped or killed run from its last completed epoch."""
        if self.task is not None:
            return
        try:
            epochs = int(json.loads((Path(run_dir) / "config.json").read_text())["epochs"])
            history = read_history(Path(run_dir), read_state(Path(run_dir)).epochs_completed)
        except (OSError, ValueError, KeyError) as exc:
            self._log(f"Cannot resume {Path(run_dir).name}: {exc}")
            return
        self._begin(epochs, f"Resuming {Path(run_dir).name}")
        for row in history:
            self.curves.add_epoch(int(row["epoch"]), row)
        self.epoch_bar.setValue(len(history))
        self._run(partial(training_task, None, run_dir))

    def _begin(self, epochs: int, message: str) -> None:
        self.curves.clear_curves()
        self.log.clear()
        self.epoch_bar.setRange(0, epochs)
        self.epoch_bar.setValue(0)
        self.batch_bar.setValue(0)
        self._fit_started, self._run_started = None, time.monotonic()
        self._log(message)

    def _run(self, fn: Any) -> None:
        task = self.tasks.start("train", fn)
        task.worker.report.connect(self.on_event)
        task.worker.status.connect(self._log)
        task.worker.progress.connect(self.on_load_progress)
        task.worker.succeeded.connect(self.on_finished)
        task.worker.failed.connect(self.on_failed)
        task.worker.cancelled.connect(self.on_failed)
        task.worker.done.connect(self.on_done)
        self.task = task
        self._update_enabled()
        self.tasks.run(task)

    @Slot()
    def stop_clicked(self) -> None:
        """Ask the running training to stop after the current batch."""
        if self.task is not None:
            self.task.stop()
            self.stop_button.setEnabled(False)
            self._log("Stopping after this batch; the best epoch so far is kept…")

    @Slot(int, int)
    def on_load_progress(self, done: int, total: int) -> None:
        self.batch_bar.setFormat("Decoding images %v / %m")
        self.batch_bar.setRange(0, total)
        self.batch_bar.setValue(done)

    @Slot(object)
    def on_event(self, event: object) -> None:
        if isinstance(event, BatchProgress):
            if self._fit_started is None:
                self._fit_started = time.monotonic()
                self.batch_bar.setFormat("Batch %v / %m")
            self.batch_bar.setRange(0, event.batches)
            self.batch_bar.setValue(event.batch)
            done = (event.epoch - 1) * event.batches + event.batch
            elapsed = time.monotonic() - self._fit_started
            remaining = elapsed / done * (event.epochs * event.batches - done)
            self.time_label.setText(f"Elapsed {_clock(time.monotonic() - self._run_started)}"
                                    f" · ETA {_clock(remaining)}")
        elif isinstance(event, EpochResult):
            self.epoch_bar.setValue(event.epoch)
            self.curves.add_epoch(event.epoch, event.logs)
            shown = "  ".join(f"{k} {v:.4f}" for k, v in event.logs.items() if k != "epoch")
            self._log(f"Epoch {event.epoch}/{event.epochs} ({event.seconds:.1f} s)  {shown}")

    @Slot(object)
    def on_finished(self, result: dict[str, Any]) -> None:
        metrics = result["metrics"]
        state = "stopped" if result["stopped"] else "finished"
        self._log(f"Run {state}: balanced accuracy {metrics['balanced_accuracy']:.3f}, "
                  f"accuracy {metrics['accuracy']:.3f} (always "
                  f"'{metrics['majority_class']}': {metrics['majority_baseline_accuracy']:.3f})"
                  f" on {metrics['n_images']} {metrics['evaluated_on']} images")
        if not result["stopped"]:
            self.epoch_bar.setValue(self.epoch_bar.maximum())
            self.batch_bar.setValue(self.batch_bar.maximum())
        self.runs.refresh()
        self.run_finished.emit(result["run_dir"])
        self.message.emit(f"Training {state}; saved to {result['run_dir']}")

    @Slot(str)
    def on_failed(self, message: str) -> None:
        self._log(f"Training did not finish: {message}")
        self.message.emit(f"Training did not finish: {message}")

    @Slot()
    def on_done(self) -> None:
        self.task = None
        self._update_enabled()

    @Slot(str)
    def _log(self, text: str) -> None:
        self.log.appendPlainText(f"[{time.strftime('%H:%M:%S')}] {text}")

    def is_running(self) -> bool:
        """Whether a training run is in progress."""
        return self.task is not None
