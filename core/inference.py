"""Use a saved model: evaluate it on a labelled folder, or classify image files."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core import paths
from core.classes import full_name
from core.dataset import Problem, load_dataset
from core.errors import DatasetError, ImageError, ModelError
from core.images import load_images, read_image
from core.metrics import balanced_accuracy_ci, compute_metrics, predictions_table
from core.model_io import LoadedModel, load_model

if TYPE_CHECKING:
    import pandas as pd


def resolve_model(model: str | Path | LoadedModel | None) -> LoadedModel:
    """The given model, or the bundled default model when `model` is None."""
    if isinstance(model, LoadedModel):
        return model
    if model is None:
        if not paths.BUNDLED_MODEL.is_file():
            raise ModelError("no model is available: pass --model MODEL.keras "
                             "(train one with `main.py train`); no default model is bundled yet")
        model = paths.BUNDLED_MODEL
    return load_model(model)


def evaluate(model: str | Path | LoadedModel | None, data_dir: str | Path, *,
             tta: bool = False, on_progress: Callable[[int, int], None] | None = None,
             should_stop: Callable[[], bool] | None = None) -> dict[str, Any]:
    """Metrics of `model` on every usable image of `data_dir` (the whole folder is the test set)."""
    return evaluate_with_predictions(model, data_dir, tta=tta, on_progress=on_progress,
                                     should_stop=should_stop)[0]


def evaluate_with_predictions(model: str | Path | LoadedModel | None, data_dir: str | Path, *,
                              tta: bool = False,
                              on_progress: Callable[[int, int], None] | None = None,
                              should_stop: Callable[[], bool] | None = None
                              ) -> tuple[dict[str, Any], pd.DataFrame]:
    """Like `evaluate`, plus one row per image (see `core.metrics.predictions_table`)."""
    loaded = resolve_model(model)
    dataset = load_dataset(data_dir)
    known = dataset.records["dx"].isin(loaded.info.classes)
    if not known.any():
        raise DatasetError(f"none of the labels in {dataset.root} ({', '.join(dataset.classes)}) "
                           f"are classes of the model ({', '.join(loaded.info.classes)})")
    if not known.all():
        for dx in sorted(set(dataset.records.loc[~known, "dx"])):
            dataset.problems.append(Problem("unknown-label", dx, "not a class of the model"))
        dataset.records = dataset.records[known].reset_index(drop=True)
    images = load_images(dataset, loaded.info.image_size, loaded.info.crop,
                         on_progress=on_progress, should_stop=should_stop).images
    index = {c: i for i, c in enumerate(loaded.info.classes)}
    labels = dataset.records["dx"].map(index).to_numpy()
    proba = loaded.predict(images, tta=tta)
    metrics = compute_metrics(labels, proba, loaded.info.classes)
    metrics.update(model=str(loaded.path), data=str(dataset.root), layout=dataset.layout,
                   tta=tta, problems=[str(p) for p in dataset.problems],
                   balanced_accuracy_ci95=list(balanced_accuracy_ci(labels,
                                                                    proba.argmax(axis=1))))
    table = predictions_table(list(dataset.records["image_id"]), list(dataset.records["path"]),
                              labels, proba, loaded.info.classes)
    return metrics, table


@dataclass
class Prediction:
    """One image's classification, or the reason it could not be classified."""

    path: str
    label: str = ""
    full_name: str = ""
    confidence: float = 0.0
    probabilities: dict[str, float] | None = None
    error: str = ""


def predict_files(model: str | Path | LoadedModel | None, files: Sequence[str | Path],
                  batch_size: int = 64, tta: bool = False) -> list[Prediction]:
    """Classify image files; unreadable ones get `error` set instead of a label."""
    loaded = resolve_model(model)
    size, crop = loaded.info.image_size, loaded.info.crop
    results = [Prediction(str(f)) for f in files]
    good: list[int] = []
    arrays: list[np.ndarray] = []
    for i, f in enumerate(files):
        try:
            arrays.append(read_image(f, size, crop))
            good.append(i)
        except ImageError as exc:
            results[i].error = str(exc)
    if arrays:
        proba = loaded.predict(np.stack(arrays), batch_size, tta=tta)
        for i, p in zip(good, proba, strict=True):
            top = int(p.argmax())
            label = loaded.info.classes[top]
            results[i].label, results[i].full_name = label, full_name(label)
            results[i].confidence = float(p[top])
            results[i].probabilities = {c: float(v)
                                        for c, v in zip(loaded.info.classes, p, strict=True)}
    return results
