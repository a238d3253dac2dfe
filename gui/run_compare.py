"""Side-by-side comparison of runs: their settings, test metrics and validation curves."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from core.errors import SkinLesionError
from core.runs import RunDetails, read_run
from gui.paired_test import PairedTestPanel
from gui.plot_canvas import PlotCanvas

ROWS = (("model", "config"), ("image_size", "config"), ("split", "config"),
        ("balance", "config"), ("epochs", "config"), ("epochs_completed", "metrics"),
        ("best_epoch", "metrics"), ("n_images", "metrics"), ("accuracy", "metrics"),
        ("balanced_accuracy", "metrics"), ("macro_auc", "metrics"),
        ("melanoma_recall", "metrics"), ("majority_baseline_accuracy", "metrics"),
        ("seconds", "metrics"))


def _text(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return "" if value is None else str(value)


class RunCompareDialog(QDialog):
    """A table with one column per run, and their validation curves overlaid; for exactly
    two runs also a "Paired test" tab (`gui.paired_test`)."""

    def __init__(self, run_dirs: list[Path], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Compare runs")
        self.resize(900, 650)
        runs: list[RunDetails] = []
        for folder in run_dirs:
            try:
                runs.append(read_run(folder))
            except (SkinLesionError, OSError, ValueError):
                continue
        self.table = QTableWidget(len(ROWS), len(runs))
        self.table.setVerticalHeaderLabels([name.replace("_", " ") for name, _ in ROWS])
        self.table.setHorizontalHeaderLabels([r.summary.name for r in runs])
        for col, run in enumerate(runs):
            for row, (name, source) in enumerate(ROWS):
                data = run.config if source == "config" else run.metrics
                self.table.setItem(row, col, QTableWidgetItem(_text(data.get(name))))
        self.table.resizeColumnsToContents()
        self.curves = PlotCanvas(self, width=8, height=3, nrows=1, ncols=2)
        for run in runs:
            history = run.history
            for ax, key in zip(self.curves.axes, ("val_loss", "val_accuracy"), strict=True):
                if key in history:
                    ax.plot(history["epoch"], history[key], label=run.summary.name)
        for ax, title in zip(self.curves.axes, ("Validation loss", "Validation accuracy"),
                             strict=True):
            ax.set_title(title)
            ax.set_xlabel("epoch")
            if runs:
                ax.legend(fontsize="small")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        self.paired: PairedTestPanel | None = None
        if len(runs) == 2:
            overview = QWidget()
            inner = QVBoxLayout(overview)
            inner.setContentsMargins(0, 0, 0, 0)
            inner.addWidget(self.table, 1)
            inner.addWidget(self.curves, 1)
            self.paired = PairedTestPanel(runs[0].summary.path, runs[1].summary.path)
            self.tabs = QTabWidget()
            self.tabs.addTab(overview, "Runs")
            self.tabs.addTab(self.paired, "Paired test")
            layout.addWidget(self.tabs, 1)
        else:
            layout.addWidget(self.table, 1)
            layout.addWidget(self.curves, 1)
        layout.addWidget(buttons)

    def done(self, result: int) -> None:
        """Close, first stopping a paired test that still runs."""
        if self.paired is not None:
            self.paired.shutdown()
        super().done(result)
