"""The Evaluate view's "Subgroups" tab: metrics per sex, age band, site and confirmation."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.subgroups import HEADINGS, METRICS, cell, table_rows

NO_SUBGROUPS = ("These results have no subgroups: the dataset's CSV has no sex, age, "
                "localization or dx_type column (HAM10000's metadata CSV has all four).")
NOTE = ("95% CIs resample whole lesions within each subgroup. A cell saying \"too few\" or "
        "\"one class\" has its reason in a tooltip.")


class SubgroupTable(QWidget):
    """The largest-gap sentence above a table of every subgroup's metrics with CIs."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.gap_label = QLabel()
        self.gap_label.setWordWrap(True)
        self.note_label = QLabel(NOTE)
        self.note_label.setWordWrap(True)
        self.note_label.setStyleSheet("color: #555")
        self.table = QTableWidget(0, len(HEADINGS))
        self.table.setHorizontalHeaderLabels(list(HEADINGS))
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        layout = QVBoxLayout(self)
        layout.addWidget(self.gap_label)
        layout.addWidget(self.note_label)
        layout.addWidget(self.table, 1)

    def set_metrics(self, metrics: dict[str, Any]) -> None:
        """Fill the table from `metrics['subgroups']` (see `core.subgroups`)."""
        rows: list[dict[str, Any]] = metrics.get("subgroups") or []
        gap = metrics.get("largest_subgroup_gap")
        if not rows:
            self.gap_label.setText(NO_SUBGROUPS)
        elif gap:
            self.gap_label.setText(f"<b>Largest gap:</b> {gap}.")
        else:
            self.gap_label.setText("No subgroup is large enough to compare with the overall "
                                   "figures.")
        self.note_label.setVisible(bool(rows))
        self.table.setVisible(bool(rows))
        self.table.setRowCount(len(rows))
        for r, (row, texts) in enumerate(zip(rows, table_rows(rows), strict=True)):
            tips = ["", "", "", "", *(cell(row, key)[1] for key, _, _ in METRICS)]
            for c, (text, tip) in enumerate(zip(texts, tips, strict=True)):
                item = QTableWidgetItem(text)
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                if c >= 2:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                if tip:
                    item.setToolTip(tip)
                    item.setForeground(Qt.GlobalColor.darkGray)
                if row["column"] == "all":
                    font = QFont(item.font())
                    font.setBold(True)
                    item.setFont(font)
                self.table.setItem(r, c, item)

    def cell_text(self, row: int, col: int) -> str:
        """The text shown in one cell (for tests)."""
        item = self.table.item(row, col)
        return item.text() if item is not None else ""

    def cell_tooltip(self, row: int, col: int) -> str:
        """The tooltip of one cell ('' when it has none)."""
        item = self.table.item(row, col)
        return item.toolTip() if item is not None else ""
