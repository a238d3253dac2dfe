"""Drawing functions shared by the app's plot tabs and the run report (matplotlib axes in).

They draw on an axes they are given, so the GUI draws into its Qt canvas and the report
into an off-screen figure, with the same look.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from core.calibration import Reliability

if TYPE_CHECKING:
    import pandas as pd


def _fmt(value: Any) -> str:
    return "—" if value is None else f"{float(value):.2f}"


def draw_roc(ax: Any, curves: dict[str, tuple[np.ndarray, np.ndarray]],
             per_class: dict[str, dict[str, Any]]) -> None:
    """One-vs-rest ROC curves, one line per class, with their AUCs in the legend."""
    ax.clear()
    ax.set_axis_on()
    for name, (fpr, tpr) in curves.items():
        ax.plot(fpr, tpr, label=f"{name} (AUC {_fmt(per_class.get(name, {}).get('auc'))})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="0.6", linewidth=1)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.legend(loc="lower right", fontsize=8)


def draw_reliability(ax: Any, rel: Reliability) -> None:
    """Reliability diagram: accuracy per confidence bin against the diagonal, with counts."""
    ax.clear()
    ax.set_axis_on()
    centres = (rel.edges[:-1] + rel.edges[1:]) / 2
    width = rel.edges[1] - rel.edges[0]
    filled = rel.counts > 0
    ax.bar(centres[filled], rel.accuracy[filled], width=width * 0.9, color="#6d8fb3",
           edgecolor="#2f4f73", label="accuracy in bin")
    ax.bar(centres[filled], (rel.confidence - rel.accuracy)[filled], width=width * 0.9,
           bottom=rel.accuracy[filled], color="none", edgecolor="#c62828", hatch="//",
           label="gap to confidence")
    ax.plot([0, 1], [0, 1], linestyle="--", color="0.4", linewidth=1, label="perfect")
    tops = np.maximum(rel.accuracy, rel.confidence)[filled]  # above both bars
    for x, y, n in zip(centres[filled], tops, rel.counts[filled], strict=True):
        ax.text(x, min(y + 0.015, 0.95), f"{int(n)}", ha="center", fontsize=6, color="0.3")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (top-class probability)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"ECE {rel.ece:.3f} ({len(rel.counts)} bins; numbers are images per bin)",
                 fontsize=9)
    ax.legend(loc="upper left", fontsize=7)


def draw_confusion(ax: Any, matrix: list[list[int]], classes: list[str]) -> None:
    """Confusion matrix (rows true, columns predicted), shaded by row fraction, with counts."""
    cm = np.asarray(matrix, dtype=float)
    rows = cm.sum(axis=1, keepdims=True)
    fraction = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    ax.clear()
    ax.imshow(fraction, cmap="Blues", vmin=0, vmax=1)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", fontsize=8,
                    color="white" if fraction[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(classes)), classes, fontsize=8)
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")


def draw_curves(loss_ax: Any, accuracy_ax: Any, history: pd.DataFrame) -> None:
    """Training and validation loss and accuracy per epoch, from a run's history table."""
    from matplotlib.ticker import MaxNLocator

    epochs = history["epoch"] if "epoch" in history else np.arange(1, len(history) + 1)
    for ax, keys, title in ((loss_ax, ("loss", "val_loss"), "Loss"),
                            (accuracy_ax, ("accuracy", "val_accuracy", "balanced_accuracy",
                                           "val_balanced_accuracy"), "Accuracy")):
        ax.clear()
        for key in keys:
            if key in history:
                ax.plot(epochs, history[key], "--" if key.startswith("val") else "-",
                        marker="o", markersize=3, label=key.replace("_", " "))
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
