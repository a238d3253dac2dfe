"""The training settings form, built from `TrainConfig`'s field metadata (as the CLI is).

One editor per field, labelled and ranged by its `core.config.Option`; a field that does not
apply to the chosen model (fine-tuning for VGG16, ImageNet weights for the CNN) is disabled
and sends its default. `config()` returns what `TrainConfig.resolve()` will accept.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, cast

from PySide6.QtCore import Qt, Signal
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

from core.config import TrainConfig, applies, default, field_names, option
from core.models import MODELS

CHOICE_TEXT = {  # short words for some choices (the column stays narrow); the rest as they are
    "lesion": "By lesion (honest)", "seed-leaky": "Study's 80/20 (inflated)",
    "squash": "Squash whole frame", "center": "Centre square",
    "constant": "Constant", "cosine": "Cosine decay",
    "val_loss": "Lowest val. loss", "val_balanced_accuracy": "Best val. bal. acc.",
    "default": "One device", "mirrored": "Every local GPU",
}
CHOICE_TIPS = {  # the whole story, in each item's tooltip
    "lesion": "train / validation / test parts, every image of a lesion in one part",
    "seed-leaky": "the study's protocol: resampled before an 80/20 split, so copies of one "
                  "image sit on both sides and scores are inflated",
    "squash": "the whole frame resized to a square (the study's)",
    "center": "the largest centred square, resized",
    "val_loss": "keep the epoch with the lowest validation loss",
    "val_balanced_accuracy": "keep the epoch with the highest validation balanced accuracy",
    "default": "one device: the GPU if there is one, else the CPU",
    "mirrored": "every local GPU, one copy of the model each",
    "resample": "resample each class to N images, in the training part only",
    "class-weights": "weight the loss by inverse class frequency",
}
BALANCE_MODES = (("Resample", "resample"), ("Class weights", "class-weights"), ("None", "none"))
# the dataset comes from the Dataset view; command-line-only settings (such as splitting the
# CPU, which needs a fresh TensorFlow) are not offered
NOT_IN_FORM = ("data_dir", *(name for name in field_names() if not option(name).gui))
# Decoded pixels above which "Stream images from disk" turns itself on. Measured with
# bench/stream_memory.py (docs/benchmarks.md): in memory a run peaks at about 0.85 GiB plus
# 3.4 times the decoded size (the array, and presumably tf.data's copies of the training
# part), so 1 GiB decoded means a ~4 GiB peak, half of an 8 GiB laptop;
# streamed it stays at ~0.9 GiB whatever the size, and its input pipeline (~2,500 images/s
# from the cache file) is far above the training speed of the models on a CPU (the study's
# CNN: ~100 images/s at 32 px).
STREAM_ABOVE_BYTES = 2**30


def _combo(items: list[tuple[str, str]]) -> QComboBox:
    box = QComboBox()
    # as wide as the longest (short) text, never elided; the tooltips tell the rest
    box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
    for text, data in items:
        box.addItem(text, data)
        if data in CHOICE_TIPS:
            box.setItemData(box.count() - 1, CHOICE_TIPS[data], Qt.ItemDataRole.ToolTipRole)
    return box


class PathEdit(QWidget):
    """A line edit with a Browse… button for a file."""

    def __init__(self, placeholder: str, file_filter: str) -> None:
        super().__init__()
        self.edit = QLineEdit()
        self.edit.setPlaceholderText(placeholder)
        self._filter = file_filter
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.edit, 1)
        row.addWidget(browse)

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a file", "", self._filter)
        if path:
            self.edit.setText(path)


class TrainSettings(QGroupBox):
    """All settings of a run, with the study's values as defaults; `config()` reads them."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Settings (the study's values are the defaults)", parent)
        self.editors: dict[str, QWidget] = {}
        self._rows: dict[str, int] = {}
        self.form = QFormLayout(self)
        for f in fields(TrainConfig):
            if f.name not in NOT_IN_FORM:
                self._add_row(f.name, str(f.type))
        # the names the rest of the app (and its tests and benchmarks) use
        self.model_box = cast(QComboBox, self.editors["model"])
        self.split_box = cast(QComboBox, self.editors["split"])
        self.size_spin = cast(QSpinBox, self.editors["image_size"])
        self.epochs_spin = cast(QSpinBox, self.editors["epochs"])
        self.batch_spin = cast(QSpinBox, self.editors["batch_size"])
        self.augment_check = cast(QCheckBox, self.editors["augment"])
        self.fine_tune_spin = cast(QSpinBox, self.editors["fine_tune"])
        self.weights_edit = self._path("weights")
        self.frozen_note = QLabel()
        self.frozen_note.setWordWrap(True)
        self.frozen_note.setStyleSheet("color: #2f5f8a;")
        self.form.insertRow(self.form.rowCount(), "", self.frozen_note)
        self.stream_check = cast(QCheckBox, self.editors["stream"])
        self.stream_check.toggled.disconnect(self._update)  # it must know who toggled first
        self.stream_check.toggled.connect(self._stream_toggled)
        self.stream_note = QLabel()
        self.stream_note.setWordWrap(True)
        self.stream_note.setStyleSheet("color: #2f5f8a;")
        self.form.insertRow(self._rows["stream"] + 1, "", self.stream_note)
        self.dataset_images: int | None = None
        self._stream_auto = False  # streaming was turned on here, not by the user
        self._stream_user = False  # the user chose, for this dataset: no more suggestions
        self._stream_setting = False
        self.leak_warning = QLabel("⚠ The seed-leaky protocol resamples before splitting: copies "
                                   "of one image sit on both sides and scores are inflated.")
        self.leak_warning.setWordWrap(True)
        self.leak_warning.setStyleSheet("color: #a15c00;")
        self.form.insertRow(self._rows["split"] + 1, "", self.leak_warning)
        self.model_box.currentIndexChanged.connect(self._model_changed)
        self._model_changed()

    # ----- building ----------------------------------------------------------------------
    def _add_row(self, name: str, type_name: str) -> None:
        opt, dflt = option(name), default(name)
        editor: QWidget
        if name == "model":
            editor = _combo([(spec.title, key) for key, spec in MODELS.items()])
        elif opt.choices:
            offered = opt.gui_choices or opt.choices  # e.g. multi-worker: command line only
            box = _combo([(CHOICE_TEXT.get(c, c), c) for c in offered])
            box.setCurrentIndex(list(offered).index(dflt))
            box.currentIndexChanged.connect(self._update)
            editor = box
        elif opt.kind == "balance":
            self.balance_box = _combo(list(BALANCE_MODES))
            self.per_class_spin = QSpinBox()
            self.per_class_spin.setRange(1, 100000)
            self.per_class_spin.setValue(500)
            self.per_class_spin.setSuffix(" per class")
            editor = QWidget()
            row = QHBoxLayout(editor)
            row.setContentsMargins(0, 0, 0, 0)
            row.addWidget(self.balance_box, 1)
            row.addWidget(self.per_class_spin)
            self.balance_box.currentIndexChanged.connect(self._update)
        elif opt.kind == "path":
            editor = PathEdit("download ImageNet weights (needs internet)" if name == "weights"
                              else "none", "Keras files (*.h5 *.weights.h5 *.keras)")
        elif isinstance(dflt, bool):
            check = QCheckBox()
            check.setChecked(dflt)
            check.toggled.connect(self._update)
            editor = check
        elif type_name.startswith("float"):
            real = QDoubleSpinBox()
            real.setDecimals(6 if name == "learning_rate" else 2)
            real.setRange(max(opt.low or 0.0, 1e-6 if name == "learning_rate" else 0.0),
                          opt.high or 1e9)
            real.setSingleStep(0.0001 if name == "learning_rate" else 0.05)
            real.setValue(dflt)
            editor = real
        else:
            spin = QSpinBox()
            spin.setRange(int(opt.low or 0), int(min(opt.high or 2**31 - 1, 2**31 - 1)))
            spin.setValue(int(dflt or opt.low or 0))
            spin.setSuffix({"image_size": " px", "fine_tune": " layers",
                            "folds": " folds"}.get(name, ""))
            if name in ("early_stopping", "folds"):  # folds: 1 is one split
                spin.setSpecialValueText("off")
            spin.valueChanged.connect(self._update)
            editor = spin
        editor.setToolTip(opt.help)
        self.editors[name] = editor
        self._rows[name] = self.form.rowCount()
        self.form.addRow(opt.label, editor)

    def _path(self, name: str) -> QLineEdit:
        editor = self.editors[name]
        assert isinstance(editor, PathEdit)
        return editor.edit

    def select(self, box: QComboBox, data: str) -> None:
        """Choose the item of `box` whose data is `data`."""
        box.setCurrentIndex(box.findData(data))

    # ----- rules -------------------------------------------------------------------------
    def _model(self) -> str:
        return str(self.model_box.currentData())

    def _model_changed(self) -> None:
        self.size_spin.setValue(MODELS[self._model()].image_size)
        self._update()

    def _update(self) -> None:
        model = self._model()
        for name, editor in self.editors.items():
            editor.setEnabled(applies(name, model))
        self.per_class_spin.setEnabled(self.balance_box.currentData() == "resample")
        self.leak_warning.setVisible(self.split_box.currentData() == "seed-leaky")
        frozen = self._preview().uses_feature_cache()
        self.frozen_note.setText(
            "Frozen backbone: its features are computed once and cached, so each epoch is "
            "fast." if frozen else "Augmentation with a frozen backbone runs the backbone on "
            "every batch (slower than cached features)." if applies("cache_features", model)
            and self.augment_check.isChecked() and self.fine_tune_spin.value() == 0
            else "")
        self.frozen_note.setVisible(bool(self.frozen_note.text()))
        if hasattr(self, "stream_note"):  # built after the editors, whose signals call this
            self._suggest_stream()
        self.changed.emit()

    def set_dataset_size(self, n_images: int | None) -> None:
        """The loaded dataset's image count: above `STREAM_ABOVE_BYTES` of decoded pixels at
        the chosen size, streaming turns itself on (with a note why)."""
        if self._stream_auto:
            self._set_stream(False)
        self.dataset_images = n_images
        self._stream_auto = self._stream_user = False
        self._update()

    def _stream_toggled(self) -> None:
        if not self._stream_setting:  # the user's choice wins until the next dataset
            self._stream_auto, self._stream_user = False, True
        self._update()

    def _suggest_stream(self) -> None:
        n = self.dataset_images
        decoded = (n or 0) * self.size_spin.value() ** 2 * 3
        large = decoded > STREAM_ABOVE_BYTES
        if large and not self._stream_user and not self.stream_check.isChecked():
            self._stream_auto = True
            self._set_stream(True)
        elif not large and self._stream_auto:
            self._stream_auto = False
            self._set_stream(False)
        self.stream_note.setText(
            f"{n:,} images at {self.size_spin.value()} px decode to {decoded / 2**30:.1f} GiB, "
            f"more than the {STREAM_ABOVE_BYTES / 2**30:.0f} GiB kept in memory: they are "
            "streamed from disk." if self._stream_auto else "")
        self.stream_note.setVisible(self._stream_auto)

    def _set_stream(self, on: bool) -> None:
        before, self._stream_setting = self._stream_setting, True  # its signal re-enters
        try:
            self.stream_check.setChecked(on)
        finally:
            self._stream_setting = before

    def _preview(self) -> TrainConfig:
        return self.config("")

    # ----- reading -----------------------------------------------------------------------
    def value(self, name: str) -> Any:
        """The editor's value for field `name` (the default when it does not apply)."""
        if not applies(name, self._model()):
            return default(name)
        editor = self.editors[name]
        if isinstance(editor, QComboBox):
            return editor.currentData()
        if isinstance(editor, QCheckBox):
            return editor.isChecked()
        if isinstance(editor, QSpinBox | QDoubleSpinBox):
            return editor.value()
        if isinstance(editor, PathEdit):
            text = editor.edit.text().strip()
            return text or default(name)
        mode = self.balance_box.currentData()  # the balance editor
        return f"resample:{self.per_class_spin.value()}" if mode == "resample" else mode

    def config(self, data_dir: str) -> TrainConfig:
        """The settings as a `TrainConfig` for `data_dir`."""
        values = {name: self.value(name) for name in field_names() if name not in NOT_IN_FORM}
        return TrainConfig(data_dir=data_dir, **values)
