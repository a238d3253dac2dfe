"""Thumbnails: numpy images to QPixmaps, and a sortable grid of evaluated images."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, QRunnable, QSize, Qt, QThreadPool, Signal, Slot
from PySide6.QtGui import QColor, QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.classes import full_name
from core.errors import ImageError
from core.images import read_image

if TYPE_CHECKING:
    import pandas as pd

THUMBNAIL_PX = 96
MAX_SHOWN = 100
SORT_ORDERS = ("Highest confidence first", "Lowest confidence first")


def array_to_pixmap(image: np.ndarray) -> QPixmap:
    """Turn a (h, w, 3) uint8 RGB array into a QPixmap (call in the GUI thread)."""
    data = np.ascontiguousarray(image, dtype=np.uint8)
    height, width = data.shape[:2]
    qimage = QImage(data.tobytes(), width, height, 3 * width, QImage.Format.Format_RGB888)
    return QPixmap.fromImage(qimage.copy())


def placeholder_pixmap(size: int = THUMBNAIL_PX) -> QPixmap:
    """A grey square shown where an image file cannot be read."""
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(200, 200, 200))
    return pixmap


class ThumbnailSignals(QObject):
    """Carries decoded thumbnails (plain arrays) from a pool thread to the GUI thread."""

    decoded = Signal(int, int, object, str)  # generation, row, array or None, problem


class ThumbnailJob(QRunnable):
    """Decode centre-cropped thumbnails off the GUI thread until `cancelled` is set."""

    def __init__(self, generation: int, paths: list[str], signals: ThumbnailSignals,
                 cancelled: threading.Event) -> None:
        super().__init__()
        self.generation, self.paths, self.signals = generation, paths, signals
        self.cancelled = cancelled

    def run(self) -> None:
        for row, path in enumerate(self.paths):
            if self.cancelled.is_set():
                return  # the grid shows other images now
            try:
                self.signals.decoded.emit(self.generation, row,
                                          read_image(path, THUMBNAIL_PX, "center"), "")
            except ImageError as exc:
                self.signals.decoded.emit(self.generation, row, None, str(exc))


def caption(true: str, predicted: str, confidence: float) -> str:
    """The text under a thumbnail: 'true → predicted (NN%)'."""
    return f"{true} → {predicted} ({confidence:.0%})"


class ImageGrid(QWidget):
    """Thumbnails of evaluated images with 'true → predicted (confidence)' captions."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._rows: pd.DataFrame | None = None
        self._generation = 0  # thumbnails decoded for an earlier fill are dropped
        self._cancel = threading.Event()  # set when the running job's images are replaced
        self._pool = QThreadPool(self)  # created first, so it is deleted (and waits) first
        self._pool.setMaxThreadCount(1)
        self._signals = ThumbnailSignals(self)
        self._signals.decoded.connect(self._set_thumbnail)
        self.heading = QLabel()
        self.heading.setWordWrap(True)
        self.sort_combo = QComboBox()
        self.sort_combo.addItems(list(SORT_ORDERS))
        self.sort_combo.setToolTip("Order the images by the model's confidence in its prediction")
        self.sort_combo.currentIndexChanged.connect(self._refill)
        self.list_widget = QListWidget()
        self.list_widget.setViewMode(QListView.ViewMode.IconMode)
        self.list_widget.setResizeMode(QListView.ResizeMode.Adjust)
        self.list_widget.setMovement(QListView.Movement.Static)
        self.list_widget.setIconSize(QSize(THUMBNAIL_PX, THUMBNAIL_PX))
        self.list_widget.setGridSize(QSize(THUMBNAIL_PX + 48, THUMBNAIL_PX + 34))
        self.list_widget.setWordWrap(True)
        self.list_widget.setUniformItemSizes(True)
        self.more_label = QLabel()
        self.more_label.setVisible(False)

        top = QHBoxLayout()
        top.addWidget(self.heading, 1)
        top.addWidget(QLabel("Sort:"))
        top.addWidget(self.sort_combo)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.list_widget, 1)
        layout.addWidget(self.more_label)
        self.show_message("Click a cell of the confusion matrix to see the images behind it.")

    def show_message(self, text: str) -> None:
        """Clear the grid and show `text` as its heading."""
        self._rows = None
        self._cancel_thumbnails()
        self.list_widget.clear()
        self.more_label.setVisible(False)
        self.heading.setText(text)

    def show_images(self, rows: pd.DataFrame, title: str) -> None:
        """Show the images of `rows` (a predictions table slice) under the heading `title`."""
        self._rows = rows
        self.heading.setText(f"{title}: {len(rows)} image{'s' if len(rows) != 1 else ''}")
        self._refill()

    def item_texts(self) -> list[str]:
        """The captions shown, in display order."""
        return [self.list_widget.item(i).text() for i in range(self.list_widget.count())]

    def _cancel_thumbnails(self) -> None:
        self._generation += 1
        self._cancel.set()
        self._cancel = threading.Event()

    @Slot(int, int, object, str)
    def _set_thumbnail(self, generation: int, row: int, image: np.ndarray | None,
                       problem: str) -> None:
        item = self.list_widget.item(row)
        if generation != self._generation or item is None:
            return
        if image is not None:
            item.setIcon(QIcon(array_to_pixmap(image)))
        else:
            item.setToolTip(f"{item.toolTip()}\nimage not shown: {problem}")

    @Slot()
    def _refill(self) -> None:
        self._cancel_thumbnails()
        self.list_widget.clear()
        rows = self._rows
        if rows is None or rows.empty:
            self.more_label.setVisible(False)
            return
        ascending = self.sort_combo.currentIndex() == 1
        rows = rows.sort_values("confidence", ascending=ascending, kind="stable")
        shown = rows.head(MAX_SHOWN)
        placeholder = QIcon(placeholder_pixmap())
        for row in shown.to_dict("records"):
            path, true, predicted = str(row["path"]), str(row["true"]), str(row["predicted"])
            item = QListWidgetItem(placeholder,
                                   caption(true, predicted, float(row["confidence"])))
            tip = [str(row.get("image_id", "")), f"true: {full_name(true)}",
                   f"predicted: {full_name(predicted)}", path]
            item.setToolTip("\n".join(tip))
            item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
            self.list_widget.addItem(item)
        hidden = len(rows) - len(shown)
        self.more_label.setText(f"… and {hidden} more not shown (change the sort order to see "
                                "the other end)")
        self.more_label.setVisible(hidden > 0)
        self._pool.start(ThumbnailJob(self._generation, [str(p) for p in shown["path"]],
                                      self._signals, self._cancel))
