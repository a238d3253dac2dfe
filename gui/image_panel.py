"""The Classify view's image, with an optional Grad-CAM overlay and its opacity slider."""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QImage, QImageReader, QPixmap
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget

PREVIEW = (380, 320)


def _pixmap(rgb: np.ndarray) -> QPixmap:
    rgb = np.ascontiguousarray(rgb)
    height, width = rgb.shape[:2]
    image = QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()
    return QPixmap.fromImage(image)


class ImagePanel(QWidget):
    """Shows one image; with Grad-CAM on, asks for a heatmap and blends it in."""

    gradcam_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.path = ""
        self.image: np.ndarray | None = None
        self.heatmap: np.ndarray | None = None
        self.label = QLabel()
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.label.setMinimumSize(260, 220)
        self.gradcam_check = QCheckBox("Grad-CAM")
        self.gradcam_check.setToolTip("Highlight the regions that drove the predicted class")
        self.gradcam_check.toggled.connect(self._toggled)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(45)
        self.opacity.setEnabled(False)
        self.opacity.valueChanged.connect(self._render)
        self.caption = QLabel("")
        self.caption.setStyleSheet("color: #555;")
        controls = QHBoxLayout()
        controls.addWidget(self.gradcam_check)
        controls.addWidget(QLabel("opacity"))
        controls.addWidget(self.opacity, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.label, 1)
        layout.addLayout(controls)
        layout.addWidget(self.caption)

    def show_file(self, path: str) -> None:
        """Display the image at `path` (EXIF orientation applied)."""
        self.path, self.image, self.heatmap = path, None, None
        reader = QImageReader(path)
        reader.setAutoTransform(True)
        image = reader.read()
        if not image.isNull():
            self.label.setPixmap(QPixmap.fromImage(image).scaled(
                *PREVIEW, Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation))
        self.caption.setText("")
        if self.gradcam_check.isChecked():
            self.gradcam_requested.emit(path)

    def _toggled(self, on: bool) -> None:
        self.opacity.setEnabled(on)
        if on and self.path and self.heatmap is None:
            self.caption.setText("Computing Grad-CAM…")
            self.gradcam_requested.emit(self.path)
        else:
            self._render()

    @Slot(object)
    def show_gradcam(self, result: dict[str, Any]) -> None:
        """Receive a heatmap (from a worker) for the image on display."""
        if result.get("path") != self.path:
            return  # the user moved on to another image
        self.image, self.heatmap = result["image"], result["heatmap"]
        self.caption.setText(f"Grad-CAM of '{result['class_name']}': red = most influential")
        self._render()

    @Slot(str)
    def show_note(self, text: str) -> None:
        """Say what the Grad-CAM worker is doing (e.g. loading TensorFlow the first time)."""
        self.caption.setText(text)

    @Slot(str)
    def show_gradcam_error(self, message: str) -> None:
        """Say why no heatmap could be made."""
        self.caption.setText(f"No Grad-CAM: {message}")

    def _render(self) -> None:
        if self.image is None or self.heatmap is None:
            return
        if self.gradcam_check.isChecked():
            from core.gradcam import overlay

            shown = overlay(self.image, self.heatmap, self.opacity.value() / 100)
        else:
            shown = self.image
        self.label.setPixmap(_pixmap(shown).scaled(
            *PREVIEW, Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation))

    def shown_pixmap(self) -> QPixmap:
        """The pixmap on display (for tests and screenshots)."""
        return self.label.pixmap()
