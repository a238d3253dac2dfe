"""Collect Python garbage only in the GUI thread.

Python's cyclic garbage collector runs in whichever thread happens to allocate when a
threshold is crossed. If that is a worker thread (loading a model, training), it may destroy
Qt objects that belong to the GUI thread, which crashes Qt. So automatic collection is turned
off and a timer in the GUI thread collects instead, the pattern PyQt/PySide apps use.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer, Slot

INTERVAL_MS = 500


class GuiThreadCollector(QObject):
    """While it lives, garbage is collected by a GUI-thread timer, never by a worker."""

    def __init__(self, parent: QObject | None = None, interval_ms: int = INTERVAL_MS) -> None:
        super().__init__(parent)
        gc.disable()
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.check)
        self._timer.start(interval_ms)

    @Slot()
    def check(self) -> None:
        """Collect each generation whose threshold has been crossed (cheap when nothing is)."""
        thresholds, counts = gc.get_threshold(), gc.get_count()
        for generation in (2, 1, 0):
            if counts[generation] > thresholds[generation]:
                gc.collect(generation)
                return

    def stop(self) -> None:
        """Hand collection back to Python."""
        self._timer.stop()
        gc.enable()
