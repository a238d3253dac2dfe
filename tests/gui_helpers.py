"""Helpers for GUI tests: simulated drops and a window with isolated settings."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QWidget


def drop_files(widget: QWidget, paths: list[Path]) -> None:
    """Deliver a drop of `paths` onto `widget`, as a file manager would."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    widget.dropEvent(event)


def cut_off(window: QWidget) -> list[str]:
    """What a user of `window` cannot read whole: sideways scroll bars, clipped labels,
    buttons and table headers, buttons past the window's right edge."""
    from PySide6.QtWidgets import QAbstractButton, QAbstractScrollArea, QHeaderView, QLabel

    found = []
    for area in window.findChildren(QAbstractScrollArea):
        if area.isVisible() and area.horizontalScrollBar().isVisible():
            found.append(f"scrolls sideways: {type(area).__name__} {area.objectName()}")
    for label in window.findChildren(QLabel):
        if label.isVisible() and label.text() and not label.wordWrap() \
                and label.width() < label.sizeHint().width() - 1:
            found.append(f"label cut: {label.text()[:60]!r}")
    for button in window.findChildren(QAbstractButton):
        if button.isVisible() and button.text():
            if button.width() < button.sizeHint().width() - 1:
                found.append(f"button cut: {button.text()!r}")
            if button.mapTo(window, button.rect().topRight()).x() > window.width():
                found.append(f"button past the right edge: {button.text()!r}")
    for header in window.findChildren(QHeaderView):
        model = header.model()
        if not header.isVisible() or model is None \
                or header.orientation() != Qt.Orientation.Horizontal:
            continue
        for col in range(header.count()):
            text = str(model.headerData(col, Qt.Orientation.Horizontal) or "")
            if not header.isSectionHidden(col) and text \
                    and header.sectionSize(col) < header.fontMetrics().horizontalAdvance(text) + 8:
                found.append(f"header cut: {text!r}")
    return found
