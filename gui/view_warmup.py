"""Lay out and paint a hidden view once while the app is idle.

A view's first show polishes, lays out and paints all its widgets in one turn of the event
loop: for the Train view (about 300 widgets) 30-75 ms on 2 cores, a visible hitch when the
user opens its tab (`bench/gui_stall.py`, phase train-tab). Painting it once into a
throw-away image before anyone clicks pays that cost while nobody waits; its show then costs
a few ms. (The other views' first shows measured under 30 ms: they are left alone.)
"""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QWidget


def paint_once_when_idle(page: QWidget, like: QWidget) -> None:
    """In the event loop's next turn, paint the hidden `page` once at `like`'s size."""

    def paint() -> None:
        if not page.isVisible():
            page.resize(like.size())
            page.grab()

    QTimer.singleShot(0, page, paint)
