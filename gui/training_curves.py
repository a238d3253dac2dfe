"""Live loss and accuracy curves for training and validation, updated in place each epoch."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QWidget

from gui.plot_canvas import PlotCanvas

# (history key, panel, legend label, line style)
SERIES = (("loss", "loss", "train", "-o"), ("val_loss", "loss", "val", "--s"),
          ("accuracy", "accuracy", "train", "-o"),
          ("val_accuracy", "accuracy", "val", "--s"),
          ("balanced_accuracy", "accuracy", "train, balanced", ":^"),
          ("val_balanced_accuracy", "accuracy", "val, balanced", "-.v"))


class TrainingCurves(PlotCanvas):
    """Two panels (loss, accuracy), each with a training and a validation line."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, width=6, height=3, nrows=1, ncols=2)
        self.points: dict[str, list[tuple[float, float]]] = {key: [] for key, *_ in SERIES}
        self.lines: dict[str, Any] = {}
        self.when_created(self._draw_panels)

    def _draw_panels(self) -> None:
        from matplotlib.ticker import MaxNLocator

        panels = {"loss": self.axes[0], "accuracy": self.axes[1]}
        for key, panel, label, style in SERIES:
            (self.lines[key],) = panels[panel].plot([], [], style, markersize=3, label=label)
        for name, ax in panels.items():
            ax.set_title("Accuracy" if name == "accuracy" else "Loss")
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
            ax.legend(loc="best", fontsize="x-small", framealpha=0.6)
        self.keep_layout()  # redrawn in the GUI thread every epoch
        self.draw_idle()

    def clear_curves(self) -> None:
        """Forget all points (a new run starts)."""
        self.points = {key: [] for key, *_ in SERIES}
        if not self.is_created():  # no lines yet: they start empty
            return
        for line in self.lines.values():
            line.set_data([], [])
        self.draw_idle()

    def add_epoch(self, epoch: int, logs: dict[str, float]) -> None:
        """Append one epoch's values and redraw."""
        axes = self.axes  # makes the figure and its (empty) lines on first use
        for key, *_ in SERIES:
            if key in logs:
                self.points[key].append((epoch, logs[key]))
                xs, ys = zip(*self.points[key], strict=True)
                self.lines[key].set_data(xs, ys)
        for ax in axes:
            ax.relim()
            ax.autoscale_view()
        self.draw_idle()

    def point_count(self) -> int:
        """How many points the curves hold in total."""
        return sum(len(v) for v in self.points.values())
