"""The modality check's verdict on a dataset: a health line, and the images it flags.

A clinical photo, a slide or a screenshot in a dermoscopic training set is a data error;
the line says how many there are, its link opens the list, and a double-click on a row
shows that image in the Classify view.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from core import refusal
from gui.theme import themed

OK_STYLE = "color: #1b5e20;"
WARN_STYLE = "color: #8a4b00; background: #fff4d6; padding: 4px;"


def flagged_line(f: dict[str, Any]) -> str:
    """One list row: the image, its class and what the check took it for."""
    return (f"{f['image_id']} ({f['dx']}): {refusal.SHORT[f['modality']]}, "
            f"P(dermoscopic) {f['score']:.2f}")


class DatasetHealth(QWidget):
    """A tab page listing the flagged images; `line` goes above the view's tabs."""

    show_requested = Signal()  # the line's link: bring this page forward
    image_requested = Signal(str)  # a row was double-clicked: show that image
    title_changed = Signal(str)  # the tab's title, with the count

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.flagged: list[dict[str, Any]] = []
        self.line = QLabel()
        self.line.setWordWrap(True)
        self.line.setTextFormat(Qt.TextFormat.RichText)
        self.line.linkActivated.connect(lambda _link: self.show_requested.emit())
        self.line.hide()
        self.heading = QLabel()
        self.heading.setWordWrap(True)
        self.list = QListWidget()
        self.list.itemDoubleClicked.connect(self._open)
        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addWidget(self.list, 1)

    @Slot()
    def show_checking(self) -> None:
        """Say that the check is running (its progress follows)."""
        self.flagged = []
        self.list.clear()
        self.line.setStyleSheet("")
        self.line.setText("Checking that every image looks dermoscopic…")
        self.heading.setText("The modality check is running.")
        self.line.show()

    @Slot(int, int)
    def set_progress(self, done: int, total: int) -> None:
        """Show how far the check has got."""
        self.line.setText(f"Checking that every image looks dermoscopic… {done} / {total}")

    @Slot(object)
    def show_result(self, flagged: list[dict[str, Any]] | None) -> None:
        """The check's verdict; None when the check is switched off."""
        self.list.clear()
        self.flagged = flagged or []
        self.title_changed.emit("Not dermoscopic" if flagged is None
                                else f"Not dermoscopic ({len(flagged)})")
        if flagged is None:
            self.line.hide()
            self.heading.setText("The modality check is switched off.")
            return
        self.line.show()
        if not flagged:
            self.line.setStyleSheet(themed(OK_STYLE))
            self.line.setText("Dataset health: every image looks dermoscopic.")
            self.heading.setText("Every image looks dermoscopic.")
            return
        n = len(flagged)
        self.line.setStyleSheet(WARN_STYLE)
        count = f"{n} image does not" if n == 1 else f"{n} images do not"
        self.line.setText(f"⚠ Dataset health: {count} look dermoscopic (a data error in a "
                          "dermoscopic training set). <a href='show'>Show them</a>")
        self.heading.setText(f"<b>{count} look dermoscopic.</b> Double-click one to see it "
                             "in the Classify view.")
        for f in flagged:
            item = QListWidgetItem(flagged_line(f))
            item.setData(Qt.ItemDataRole.UserRole, f["path"])
            item.setToolTip(f["path"])
            self.list.addItem(item)

    @Slot(str)
    def show_error(self, message: str) -> None:
        """The check could not run: say why, in the line."""
        self.line.setStyleSheet(WARN_STYLE)
        self.line.setText(f"The modality check could not run: {message}")
        self.line.show()

    def _open(self, item: QListWidgetItem) -> None:
        self.image_requested.emit(str(item.data(Qt.ItemDataRole.UserRole)))
