"""Every function the GUI runs in a worker thread, in one place.

Each takes its inputs and a `TaskContext` last (progress, status, events, stop poll), makes
no Qt calls, and returns plain data. `gui.main_window.MainWindow` is the one place that
starts them, through `gui.tasks.TaskRunner` (at most one task of each kind).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.config import TrainConfig
from core.dataset import load_dataset, summarize
from core.errors import CancelledError, ImageError, ModelError
from core.images import load_images, read_image
from core.inference import Prediction, predict_files
from core.model_io import Classifier
from core.paths import BUNDLED_MODEL
from gui.model_library import ModelLibrary
from gui.tasks import TaskContext

SAMPLES_PER_CLASS = 6
SAMPLE_PX = 96
CHECK_PX = 32  # every image is decoded once at this size so unreadable ones are found
CHUNK = 64  # images classified between stop checks and progress reports


@dataclass
class DatasetOverview:
    """What the view shows: the `summarize` dict and a few thumbnails per class."""

    summary: dict
    samples: dict[str, list[tuple[str, np.ndarray]]] = field(default_factory=dict)


def load_overview(folder: str, ctx: TaskContext) -> DatasetOverview:
    """Read, check and summarise the dataset in `folder` (worker thread: no Qt calls)."""
    ctx.status(f"Reading {folder}")
    dataset = load_dataset(folder)
    ctx.status(f"Checking {len(dataset.records)} images")
    load_images(dataset, CHECK_PX, on_progress=ctx.progress, should_stop=ctx.should_stop)
    summary = summarize(dataset)
    samples: dict[str, list[tuple[str, np.ndarray]]] = {}
    records = dataset.records
    for code in dataset.classes:
        picked: list[tuple[str, np.ndarray]] = []
        rows = records[records["dx"] == code]
        for image_id, path in zip(rows["image_id"], rows["path"], strict=True):
            if len(picked) >= SAMPLES_PER_CLASS or ctx.should_stop():
                break
            try:
                picked.append((str(image_id), read_image(path, SAMPLE_PX, "center")))
            except ImageError:
                continue
        samples[code] = picked
    return DatasetOverview(summary, samples)


def check_dataset_modality(folder: str, ctx: TaskContext) -> list[dict[str, Any]] | None:
    """The images of the dataset in `folder` that do not look dermoscopic (None: the
    modality check is switched off)."""
    from core.inference import SHIPPED, modality_check
    from core.modality import not_dermoscopic

    check = modality_check(SHIPPED)
    if check is None:
        return None
    return not_dermoscopic(load_dataset(folder), check, on_progress=ctx.progress,
                           should_stop=ctx.should_stop)


def classify_task(model: Classifier, files: list[str], tta: bool | None,
                  ctx: TaskContext) -> list[Prediction]:
    """Classify `files` in chunks (runs in a worker), reporting progress."""
    results: list[Prediction] = []
    for start in range(0, len(files), CHUNK):
        if ctx.should_stop():
            raise CancelledError("classification was stopped")
        results += predict_files(model, files[start:start + CHUNK], tta=tta)
        ctx.progress(len(results), len(files))
    return results


@dataclass
class SimilarResult:
    """The training images nearest to the image at `path`, with thumbnails where the
    dataset folder is known (None per case otherwise)."""

    path: str
    cases: list[Any]  # core.similar.SimilarCase, best first
    thumbnails: list[np.ndarray | None]
    folder_known: bool


def similar_task(model: Classifier, path: str, data_dir: str, ctx: TaskContext,
                 k: int = 6) -> SimilarResult:
    """`core.similar` for one image file (a run's index is built on first use, with
    progress), and thumbnails of the cases whose files are known."""
    from core.similar import similar_to_files

    [cases] = similar_to_files(model, [path], k, data_dir=data_dir or None,
                               on_progress=ctx.progress, should_stop=ctx.should_stop,
                               status=ctx.status)
    thumbnails: list[np.ndarray | None] = []
    for case in cases:
        try:
            thumbnails.append(read_image(case.path, SAMPLE_PX, "center") if case.path else None)
        except ImageError:
            thumbnails.append(None)
    return SimilarResult(path, cases, thumbnails, any(c.path for c in cases))


def training_task(config: TrainConfig | None, resume_dir: str | None,
                  ctx: TaskContext) -> dict[str, Any]:
    """Train (or resume) in a child process that the worker relays
    (`core.child_process`), so the GUI process never imports TensorFlow for training; in
    this process when `SKIN_LESION_TRAIN_IN_PROCESS=1`. Same events and result either way."""
    from core import child_process

    if child_process.in_process():
        return child_process.run_training(config, resume_dir, ctx)
    return child_process.run_training_in_child(config, resume_dir, ctx)


@dataclass
class ModelReady:
    """Reported by `load_startup` as soon as the bundled model can classify."""

    path: str
    runtime: str


def load_startup(library: ModelLibrary, ctx: TaskContext) -> str:
    """Make the bundled model ready, through LiteRT when it can (no TensorFlow); return its
    path."""
    ready = ""
    if BUNDLED_MODEL.is_file():
        try:
            ctx.status("Loading the bundled model…")
            library.load(BUNDLED_MODEL, "litert")
        except ModelError:  # no current twin or no LiteRT: Keras, and the twin is rebuilt
            ctx.status("Loading TensorFlow and the bundled model…")
            library.load(BUNDLED_MODEL, "auto", ctx.status)
        library.activate(BUNDLED_MODEL)
        model = library.active()
        ready = str(BUNDLED_MODEL)
        ctx.event(ModelReady(ready, model.runtime if model else ""))
    return ready


def preload_plotting(ctx: TaskContext) -> None:
    """Import matplotlib's Qt backend while the model loads: the first answer's chart needs
    it. (pandas is left to the views that read tables: importing it too would hold the
    interpreter while that first answer is drawn.)"""
    import matplotlib.backends.backend_qtagg  # noqa: F401


def evaluate_folder(library: ModelLibrary, folder: str, ctx: TaskContext) -> dict[str, Any]:
    from core.inference import evaluate_with_predictions

    model = library.active()
    if model is None:
        raise ModelError("no active model: choose one in the Models view first")
    metrics, table = evaluate_with_predictions(model, folder, on_progress=ctx.progress,
                                               should_stop=ctx.should_stop)
    return {"title": f"{model.path.name} on {Path(folder).name}", "metrics": metrics,
            "predictions": table, "card": model.info.card}


def export_report_task(source: Any, target: str, ctx: TaskContext) -> str:
    """Write a report of `source`: a run folder (read here) or an evaluation's `ReportData`."""
    from core.report import export_report, run_report_data

    ctx.status(f"Writing the report to {target}…")
    data = run_report_data(source) if isinstance(source, Path) else source
    return str(export_report(data, Path(target)))


def gradcam_task(library: ModelLibrary, model_path: Path, path: str,
                 ctx: TaskContext) -> dict[str, Any]:
    """Grad-CAM of `path` with the Keras model of `model_path` (loading TensorFlow once)."""
    from core.gradcam import display_image, gradcam

    if "tensorflow" not in sys.modules:
        ctx.status("Loading TensorFlow for Grad-CAM (once)…")
    cam = gradcam(library.keras_model(model_path), path)
    return {"path": path, "image": display_image(path), "heatmap": cam.heatmap,
            "class_name": cam.class_name}


def load_model_task(library: ModelLibrary, path: Path, activate: bool, ctx: TaskContext) -> str:
    ctx.status(f"Loading {path.name}…")
    library.load(path, "auto", ctx.status)
    if activate:
        library.activate(path)
    return str(path)


def import_model_task(library: ModelLibrary, source: Path, ctx: TaskContext) -> str:
    ctx.status(f"Checking {source.name} (safe mode)…")
    return str(library.import_file(source))


def export_model_task(path: Path, fmt: str, target: Path, ctx: TaskContext) -> str:
    """Load a model file and export it (`core.export_model`)."""
    from core.export_model import export_model
    from core.model_io import load_model

    ctx.status(f"Loading {path.name} to export it…")
    return str(export_model(load_model(path), fmt, target, status=ctx.status))


def paired_test_task(run_a: Path, run_b: Path, ctx: TaskContext) -> dict[str, Any]:
    """The Compare dialog's paired test of two runs on the first one's test part."""
    from core.compare import compare_models

    ctx.status("Loading the models…")
    return compare_models(run_a, run_b, on_progress=ctx.progress, status=ctx.status,
                          should_stop=ctx.should_stop).to_dict()
