"""The run list: every finished run with its balanced accuracy; open, compare, delete."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.errors import SkinLesionError
from core.runs import RunSummary, delete_run, list_runs
from gui.run_compare import RunCompareDialog
from gui.theme import themed

COLUMNS = ("Name", "Model", "Split", "Date", "Bal. acc.", "Status")


class RunListWidget(QWidget):
    """A table of runs from the per-user runs folder."""

    open_requested = Signal(str)
    resume_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSortingEnabled(True)
        self.table.verticalHeader().setVisible(False)
        # every column stays in view: the name takes what is left (elided, whole in its
        # tooltip) and the others fit their contents
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setMinimumSectionSize(40)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.doubleClicked.connect(self.open_selected)
        self.runs: list[RunSummary] = []

        self.open_button = QPushButton("Open")
        self.compare_button = QPushButton("Compare")
        self.delete_button = QPushButton("Delete")
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Continue a stopped or interrupted run from its last "
                                      "completed epoch")
        refresh = QPushButton("Refresh")
        self.open_button.clicked.connect(self.open_selected)
        self.compare_button.clicked.connect(self.compare_selected)
        self.delete_button.clicked.connect(self.delete_selected)
        self.resume_button.clicked.connect(self.resume_selected)
        refresh.clicked.connect(self.refresh)
        buttons = QHBoxLayout()
        for button in (self.open_button, self.compare_button, self.resume_button,
                       self.delete_button, refresh):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("<b>Runs</b> (select several to compare)"))
        layout.addWidget(self.table)
        layout.addLayout(buttons)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.refresh()

    @Slot()
    def refresh(self) -> None:
        """Re-read the runs folder."""
        self.runs = list_runs()
        self.table.setSortingEnabled(False)
        self.table.setRowCount(len(self.runs))
        for row, run in enumerate(self.runs):
            score = "" if run.balanced_accuracy is None else f"{run.balanced_accuracy:.3f}"
            if run.damaged:
                status, detail = ("unfinished, resumable", run.damaged) if run.resumable else (
                    "damaged", f"damaged: {run.damaged}")
            elif run.resumable:
                status, detail = "stopped, resumable", "stopped; Resume continues it"
            else:
                status = detail = "stopped" if run.stopped else "finished"
            date = run.created.strftime("%m-%d %H:%M") if run.created else ""
            for col, text in enumerate((run.name, run.model, run.split, date, score, status)):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, str(run.path))
                item.setToolTip({0: run.name, 5: detail}.get(col, text))
                if run.damaged and not run.resumable:
                    item.setForeground(QColor(themed("#b00020")))
                self.table.setItem(row, col, item)
        self.table.setSortingEnabled(True)
        self._update_buttons()

    def selected_paths(self) -> list[Path]:
        """Run folders of the selected rows."""
        rows = sorted({index.row() for index in self.table.selectionModel().selectedRows()})
        items = [self.table.item(r, 0) for r in rows]
        return [Path(item.data(Qt.ItemDataRole.UserRole)) for item in items if item is not None]

    def _damaged(self, path: Path) -> bool:
        return any(r.path == path and r.damaged for r in self.runs)

    def _resumable(self, path: Path) -> bool:
        return any(r.path == path and r.resumable for r in self.runs)

    def _update_buttons(self) -> None:
        selected = self.selected_paths()
        usable = [p for p in selected if not self._damaged(p)]
        self.open_button.setEnabled(len(usable) == 1)
        self.compare_button.setEnabled(len(usable) >= 2)
        self.delete_button.setEnabled(bool(selected))
        self.resume_button.setEnabled(len(selected) == 1 and self._resumable(selected[0]))

    @Slot()
    def resume_selected(self) -> None:
        selected = self.selected_paths()
        if len(selected) == 1 and self._resumable(selected[0]):
            self.resume_requested.emit(str(selected[0]))

    @Slot()
    def open_selected(self) -> None:
        selected = [p for p in self.selected_paths() if not self._damaged(p)]
        if selected:
            self.open_requested.emit(str(selected[0]))

    @Slot()
    def compare_selected(self) -> None:
        selected = [p for p in self.selected_paths() if not self._damaged(p)]
        if len(selected) >= 2:
            RunCompareDialog(selected, self).exec()

    @Slot()
    def delete_selected(self) -> None:
        selected = self.selected_paths()
        if not selected:
            return
        names = ", ".join(p.name for p in selected)
        answer = QMessageBox.question(self, "Delete runs",
                                      f"Delete {len(selected)} run(s) and their models?\n{names}")
        if answer != QMessageBox.StandardButton.Yes:
            return
        for path in selected:
            try:
                delete_run(path)
            except (SkinLesionError, OSError) as exc:
                QMessageBox.warning(self, "Could not delete", str(exc))
        self.refresh()
