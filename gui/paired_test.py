"""The Compare dialog's "Paired test" tab: is run B really better than run A, or noise?

The comparison (`core.compare.compare_models`) runs in a worker thread; its signal carries
the plain `Comparison.to_dict()`, never a model. Stop sets the worker's event flag.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Slot
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.compare import format_delta, format_value
from gui.task_functions import paired_test_task
from gui.tasks import Task, TaskRunner

TASK = "paired-test"
COLUMNS = ("A", "B", "B − A (95% CI)")


class PairedTestPanel(QWidget):
    """A button that compares two runs on the same test images, then the table and verdict."""

    def __init__(self, run_a: Path, run_b: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.run_a, self.run_b = run_a, run_b
        self.tasks = TaskRunner(self)
        self.task: Task | None = None
        intro = QLabel(f"A = {run_a.name}, B = {run_b.name}. Both models classify the test "
                       "images of A's split; balanced accuracy and melanoma recall get paired "
                       "bootstrap CIs (lesions resampled) and McNemar's exact test compares "
                       "per-image correctness. The difference counts as real only when the "
                       "CI excludes 0 and p < 0.05.")
        intro.setWordWrap(True)
        self.compare_button = QPushButton("Compare on the test images")
        self.compare_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self._fit_table()
        self.mcnemar = QLabel("")
        self.mcnemar.setWordWrap(True)
        self.sentence = QLabel("")
        self.sentence.setWordWrap(True)
        self.sentence.setStyleSheet("font-weight: bold")
        buttons = QHBoxLayout()
        buttons.addWidget(self.compare_button)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.progress, 1)
        buttons.addStretch(0)  # takes the room while the progress bar is hidden
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        layout.addWidget(self.table)
        layout.addWidget(self.mcnemar)
        layout.addWidget(self.sentence)
        layout.addStretch(1)

    @Slot()
    def start(self) -> None:
        """Start the comparison in a worker thread."""
        a, b = self.run_a, self.run_b
        task = self.tasks.start(TASK, lambda ctx: paired_test_task(a, b, ctx))
        task.worker.progress.connect(self.on_progress)
        task.worker.status.connect(self.on_status)
        task.worker.succeeded.connect(self.on_result)
        task.worker.failed.connect(self.on_failed)
        task.worker.cancelled.connect(self.on_failed)
        task.worker.done.connect(self.on_done)
        self.task = task
        self.compare_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        self.sentence.setText("")
        self.mcnemar.setText("")
        self.table.setRowCount(0)
        self._fit_table()
        self.tasks.run(task)

    @Slot()
    def stop(self) -> None:
        """Ask the running comparison to stop (its event flag)."""
        if self.task is not None:
            self.task.stop()
            self.status.setText("Stopping…")

    def shutdown(self, wait_ms: int = 30000) -> None:
        """Stop a running comparison and wait for its thread (the dialog is closing)."""
        self.tasks.stop_all(wait_ms)

    @Slot(int, int)
    def on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)

    @Slot(str)
    def on_status(self, message: str) -> None:
        self.status.setText(message[:1].upper() + message[1:])

    @Slot(str)
    def on_failed(self, message: str) -> None:
        self.status.setText(f"Not compared: {message}")

    @Slot()
    def on_done(self) -> None:
        self.task = None
        self.compare_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        self.progress.setVisible(False)

    @Slot(object)
    def on_result(self, data: dict[str, Any]) -> None:
        """Show the table, the McNemar line and the sentence of a `Comparison.to_dict()`."""
        r = data["result"]
        unit = "lesions" if r["ci_unit"] == "lesion" else "images"
        self.status.setText(f"{r['n_images']} images, {data['part']}; CIs resample "
                            f"{r['n_units']} {unit}.")
        rows = [("balanced accuracy", r["balanced_accuracy"], r["delta_balanced_accuracy"],
                 r["delta_balanced_accuracy_ci95"])]
        if r["melanoma_recall"] is not None:
            rows.append(("melanoma recall", r["melanoma_recall"], r["delta_melanoma_recall"],
                         r["delta_melanoma_recall_ci95"]))
        self.table.setRowCount(len(rows))
        self.table.setVerticalHeaderLabels([name for name, *_ in rows])
        for row, (_, pair, delta, ci) in enumerate(rows):
            texts = (format_value(pair[0]), format_value(pair[1]), format_delta(delta, ci))
            for col, text in enumerate(texts):
                self.table.setItem(row, col, QTableWidgetItem(text))
        warnings = "".join(f" Warning: {seen} of these images were used to train {name}."
                           for name, seen in zip("AB", data["seen_in_training"], strict=True)
                           if seen)
        self.mcnemar.setText(f"McNemar exact test: A right/B wrong {r['a_right_b_wrong']}, "
                             f"A wrong/B right {r['a_wrong_b_right']}, "
                             f"p = {r['mcnemar_p']:.4g}.{warnings}")
        self.sentence.setText(r["sentence"])
        self._fit_table()

    def _fit_table(self) -> None:
        """As tall as its rows (hidden without any): no empty space or scroll bar."""
        height = self.table.horizontalHeader().sizeHint().height() + 2 * self.table.frameWidth()
        height += sum(self.table.rowHeight(row) for row in range(self.table.rowCount()))
        self.table.setFixedHeight(height)
        self.table.setVisible(self.table.rowCount() > 0)
