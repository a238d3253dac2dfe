"""TensorBoard event files in RUN/tensorboard/: the scalars of every epoch and, at the end,
the test part's confusion matrix as an image.

Events are written with `tf.summary.write` and the metadata TensorBoard's scalar and image
plugins read, because `tf.summary.scalar`/`image` need the `tensorboard` package installed
(TF 2.21 no longer depends on it). So the package (`pip install .[tensorboard]`) is needed only
to look at the events: `tensorboard --logdir <runs folder>`.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from core.backend import tf

SCALAR_DATA_CLASS, BLOB_SEQUENCE_DATA_CLASS = 1, 3  # tensorboard's summary.proto DataClass


def _metadata(plugin: str, data_class: int) -> Any:
    metadata = tf().compat.v1.SummaryMetadata()
    metadata.plugin_data.plugin_name = plugin
    metadata.data_class = data_class
    return metadata


class RunBoard:
    """One run's TensorBoard writer (a resumed run appends a new event file)."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self._writer = tf().summary.create_file_writer(str(folder))

    def epoch(self, epoch: int, logs: dict[str, float]) -> None:
        """The epoch's training and validation values, as scalars at step `epoch`."""
        tf_ = tf()
        metadata = _metadata("scalars", SCALAR_DATA_CLASS)
        with self._writer.as_default():
            for name, value in logs.items():
                if name != "epoch":
                    tf_.summary.write(name, tf_.constant(float(value), tf_.float32),
                                      step=epoch, metadata=metadata)
        self._writer.flush()

    def confusion(self, matrix: list[list[int]], classes: list[str], step: int) -> None:
        """The confusion matrix, drawn as in the app, as the image "confusion_matrix"."""
        tf_ = tf()
        png = confusion_png(matrix, classes)
        height, width = tf_.image.decode_png(png).shape[:2]
        # the image plugin's layout: [width, height, encoded image...] as strings
        tensor = tf_.constant([str(width).encode(), str(height).encode(), png])
        with self._writer.as_default():
            tf_.summary.write("confusion_matrix", tensor, step=step,
                              metadata=_metadata("images", BLOB_SEQUENCE_DATA_CLASS))
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


def confusion_png(matrix: list[list[int]], classes: list[str]) -> bytes:
    """The confusion matrix as PNG bytes (matplotlib, off screen)."""
    from matplotlib.figure import Figure

    from core.plots import draw_confusion

    size = 1.0 + 0.55 * max(len(classes), 2)
    figure = Figure(figsize=(size, size), dpi=100)
    ax = figure.add_subplot()
    draw_confusion(ax, matrix, classes)
    ax.set_title("test part: rows true, columns predicted", fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def read_events(folder: Path) -> dict[str, list[tuple[int, Any]]]:
    """Every value in a run's event files by tag: scalars as floats, images as PNG bytes
    (for tests and checks; TensorBoard itself is not needed)."""
    tf_ = tf()
    found: dict[str, list[tuple[int, Any]]] = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        for record in tf_.data.TFRecordDataset(str(path)):
            event = tf_.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                tensor = tf_.make_ndarray(value.tensor)
                item: Any = (bytes(tensor[2]) if value.metadata.plugin_data.plugin_name
                             == "images" else float(np.asarray(tensor)))
                found.setdefault(value.tag, []).append((int(event.step), item))
    return found
