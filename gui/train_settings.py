"""The training settings form: model, sizes, balancing, split, augmentation and options."""

from __future__ import annotations

from PySide6.QtCore import Signal
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
    QPushButton,
    QSpinBox,
    QWidget,
)

from core.models import MODELS
from core.training import TrainConfig


def _spin(low: int, high: int, value: int, suffix: str = "") -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(low, high)
    spin.setValue(value)
    spin.setSuffix(suffix)
    return spin


def _combo(items: list[tuple[str, str]]) -> QComboBox:
    box = QComboBox()
    for text, data in items:
        box.addItem(text, data)
    return box


class TrainSettings(QGroupBox):
    """All settings of a run, with the study's values as defaults; `config()` reads them."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Settings (the study's values are the defaults)", parent)
        self.model_box = _combo([(spec.title, key) for key, spec in MODELS.items()])
        self.size_spin = _spin(8, 512, 32, " px")
        self.epochs_spin = _spin(1, 1000, 50)
        self.batch_spin = _spin(1, 1024, 32)
        self.lr_spin = QDoubleSpinBox()
        self.lr_spin.setDecimals(5)
        self.lr_spin.setRange(0.00001, 0.5)
        self.lr_spin.setSingleStep(0.0001)
        self.lr_spin.setValue(0.001)
        self.balance_box = _combo([("Resample each class (training part only)", "resample"),
                                   ("Class weights", "class-weights"), ("None", "none")])
        self.per_class_spin = _spin(1, 100000, 500, " per class")
        self.split_box = _combo([("By lesion: train / val / test (honest)", "lesion"),
                                 ("Study's seed-leaky 80/20 (inflated scores)", "seed-leaky")])
        self.seed_spin = _spin(0, 2**31 - 1, 42)
        self.crop_box = _combo([("Whole frame, squashed (study)", "squash"),
                                ("Centre square crop", "center")])
        self.augment_check = QCheckBox("Flips, rotations, zoom, brightness, contrast")
        self.weights_edit = QLineEdit()
        self.weights_edit.setPlaceholderText("download ImageNet weights (needs internet)")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._choose_weights)
        weights_row = QHBoxLayout()
        weights_row.addWidget(self.weights_edit)
        weights_row.addWidget(browse)
        self.fine_tune_spin = _spin(0, 500, 0, " layers")
        self.fine_tune_spin.setToolTip("Transfer models: how many of the backbone's last "
                                       "layers are trained (0 = frozen)")
        self.smoothing_spin = QDoubleSpinBox()
        self.smoothing_spin.setRange(0.0, 0.5)
        self.smoothing_spin.setSingleStep(0.05)
        self.schedule_box = _combo([("Constant", "constant"), ("Cosine decay", "cosine")])
        self.patience_spin = _spin(0, 1000, 0, " epochs")
        self.patience_spin.setSpecialValueText("off")
        self.monitor_box = _combo([("Lowest validation loss", "val_loss"),
                                   ("Highest validation balanced accuracy",
                                    "val_balanced_accuracy")])
        self.monitor_box.setToolTip("Which epoch's weights the finished model keeps; early "
                                    "stopping waits for this value to improve")
        self.frozen_note = QLabel("Frozen backbone: its features are computed once and cached, "
                                  "so each epoch is fast; augmentation is off in this mode.")
        self.frozen_note.setWordWrap(True)
        self.frozen_note.setStyleSheet("color: #2f5f8a;")
        self.leak_warning = QLabel("⚠ The seed-leaky protocol resamples before splitting: copies "
                                   "of one image sit on both sides and scores are inflated.")
        self.leak_warning.setWordWrap(True)
        self.leak_warning.setStyleSheet("color: #a15c00;")

        form = QFormLayout(self)
        rows = [("Model", self.model_box), ("Image size", self.size_spin),
                ("Epochs", self.epochs_spin), ("Batch size", self.batch_spin),
                ("Learning rate", self.lr_spin), ("Balancing", self.balance_box),
                ("", self.per_class_spin), ("Split", self.split_box), ("", self.leak_warning),
                ("Split seed", self.seed_spin), ("Crop", self.crop_box),
                ("Augmentation", self.augment_check), ("", self.frozen_note)]
        for label, widget in rows:
            form.addRow(label, widget)
        form.addRow("ImageNet weights", weights_row)
        for label, widget in (("Fine-tune", self.fine_tune_spin),
                              ("Label smoothing", self.smoothing_spin),
                              ("LR schedule", self.schedule_box),
                              ("Early stopping", self.patience_spin),
                              ("Keep the epoch with", self.monitor_box)):
            form.addRow(label, widget)
        self.model_box.currentIndexChanged.connect(self._model_changed)
        self.balance_box.currentIndexChanged.connect(self._update)
        self.split_box.currentIndexChanged.connect(self._update)
        self.fine_tune_spin.valueChanged.connect(self._update)
        self.augment_check.toggled.connect(self._update)
        self._model_changed()

    def select(self, box: QComboBox, data: str) -> None:
        """Choose the item of `box` whose data is `data`."""
        box.setCurrentIndex(box.findData(data))

    def _uses_weights(self) -> bool:
        return MODELS[self.model_box.currentData()].uses_imagenet

    def _model_changed(self) -> None:
        self.size_spin.setValue(MODELS[self.model_box.currentData()].image_size)
        self._update()

    def _update(self) -> None:
        self.weights_edit.setEnabled(self._uses_weights())
        self.fine_tune_spin.setEnabled(self._uses_weights())
        self.per_class_spin.setEnabled(self.balance_box.currentData() == "resample")
        self.leak_warning.setVisible(self.split_box.currentData() == "seed-leaky")
        frozen = self._uses_weights() and self.fine_tune_spin.value() == 0
        self.frozen_note.setVisible(frozen)
        self.augment_check.setEnabled(not frozen)
        self.changed.emit()

    def _choose_weights(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "ImageNet weights file", "",
                                              "Keras weights (*.h5 *.weights.h5)")
        if path:
            self.weights_edit.setText(path)

    def config(self, data_dir: str) -> TrainConfig:
        """The settings as a `TrainConfig` for `data_dir`."""
        balance = self.balance_box.currentData()
        if balance == "resample":
            balance = f"resample:{self.per_class_spin.value()}"
        return TrainConfig(
            data_dir=data_dir, model=self.model_box.currentData(),
            image_size=self.size_spin.value(), epochs=self.epochs_spin.value(),
            batch_size=self.batch_spin.value(), learning_rate=self.lr_spin.value(),
            balance=balance, split=self.split_box.currentData(), seed=self.seed_spin.value(),
            crop=self.crop_box.currentData(),
            augment=self.augment_check.isChecked() and self.augment_check.isEnabled(),
            weights=self.weights_edit.text().strip() or "imagenet",
            fine_tune=self.fine_tune_spin.value() if self._uses_weights() else 0,
            label_smoothing=self.smoothing_spin.value(),
            lr_schedule=self.schedule_box.currentData(),
            early_stopping=self.patience_spin.value(),
            monitor=self.monitor_box.currentData())
