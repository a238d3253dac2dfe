"""Live loss and accuracy curves for training and validation, drawn off the GUI thread.

The widget only paints the newest drawing, scaled while a resized one is on its way; the
figure itself is drawn by the painter process (`gui.curve_painter`, `gui.curves_picture`).
Drawn in the GUI thread, or even in a thread of the app's process, a whole figure with its
layout stalled the window by up to 300 ms when the Train tab first showed, at Start and at
the end of the first epoch (`bench/gui_stall.py`).
"""

from __future__ import annotations

import itertools
from typing import Any

from PySide6.QtCore import QEvent, QSize, Qt, Slot
from PySide6.QtGui import QGuiApplication, QImage, QPainter, QPaintEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from gui.curve_painter import curve_painter
from gui.curves_picture import EMPTY_TEXT, SERIES, CurvesPicture
from gui.theme import figure_colours

_keys = itertools.count(1)


class TrainingCurves(QWidget):
    """Two panels (loss, accuracy), each with training and validation lines."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.points: dict[str, list[tuple[float, float]]] = {key: [] for key, *_ in SERIES}
        self.epochs = 1
        self.drawings = 0  # drawings received from the painter
        self._image: QImage | None = None
        self._key = next(_keys)
        self._wanted = 0  # the newest request's number
        self._shown = 0  # the number of the drawing on screen
        self._stale = True  # the points changed while hidden
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumHeight(180)
        curve_painter().signals.drawn.connect(self._on_drawn)

    # ----- what the Train view calls -------------------------------------------------------
    def start_run(self, epochs: int) -> None:
        """Forget all points and size the x axis for a run of `epochs` epochs."""
        self.points = {key: [] for key, *_ in SERIES}
        self.epochs = max(1, epochs)
        self._redraw()

    def add_epoch(self, epoch: int, logs: dict[str, float]) -> None:
        """Append one epoch's values and ask for a new drawing."""
        for key, *_ in SERIES:
            if key in logs:
                self.points[key].append((epoch, float(logs[key])))
        self.epochs = max(self.epochs, epoch)
        self._redraw()

    def point_count(self) -> int:
        """How many points the curves hold in total."""
        return sum(len(v) for v in self.points.values())

    def image(self) -> QImage | None:
        """The drawing on screen (None before the first one arrives)."""
        return self._image

    def is_current(self) -> bool:
        """Whether the drawing on screen shows the newest points, size and colours."""
        return self._image is not None and self._shown == self._wanted

    # ----- drawing -------------------------------------------------------------------------
    def _redraw(self) -> None:
        self._stale = not self.isVisible()
        if self._stale:  # drawn when it shows
            return
        self._wanted += 1
        picture = CurvesPicture(
            points={k: tuple(v) for k, v in self.points.items()}, epochs=self.epochs,
            width=self.width(), height=self.height(), pixel_ratio=self.devicePixelRatioF(),
            colours=figure_colours(QGuiApplication.palette()))
        curve_painter().submit(self._key, self._wanted, picture)

    @Slot(int, int, QImage)
    def _on_drawn(self, key: int, number: int, image: QImage) -> None:
        if key != self._key or number < self._shown:
            return
        self.drawings += 1
        self._image, self._shown = image, number
        self.update()

    # ----- Qt events -----------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), self.palette().window())
        if self._image is not None:
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawImage(self.rect(), self._image)
        else:
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, EMPTY_TEXT)
        painter.end()

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._redraw()

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if self._stale or self._image is None:
            self._redraw()

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self._redraw()  # the theme changed

    def sizeHint(self) -> QSize:
        return QSize(600, 300)
