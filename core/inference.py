"""Use a saved model: evaluate it on a labelled folder, or classify image files."""

from __future__ import annotations

import os
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
from core.metrics import compute_metrics, grouped_ci, predictions_table
from core.model_io import Classifier, LoadedModel, load_model
from core.refusal import accepted, counts_by_class, reasons

if TYPE_CHECKING:
    import pandas as pd

    from core.modality import ModalityCheck

SHIPPED = "shipped"  # use the app-wide modality check that ships in resources/
CHECK_SWITCH = "SKIN_LESION_MODALITY_CHECK"  # "off": research on other kinds of images


def modality_check(check: ModalityCheck | str | None) -> ModalityCheck | None:
    """`check` itself, or for SHIPPED the shipped check (None when CHECK_SWITCH is "off")."""
    if check != SHIPPED:
        return check  # type: ignore[return-value]
    if os.environ.get(CHECK_SWITCH, "").lower() == "off":
        return None
    from core.modality import default_check

    return default_check()


def model_path(model: str | Path | None) -> Path:
    """`model` as a path, or the bundled default model's when it is None."""
    if model is not None:
        return Path(model)
    if not paths.BUNDLED_MODEL.is_file():
        raise ModelError("no model is available: pass --model MODEL.keras "
                         "(train one with `main.py train`); no default model is bundled yet")
    return paths.BUNDLED_MODEL


def resolve_model(model: str | Path | Classifier | None, runtime: str = "keras",
                  status: Callable[[str], None] | None = None) -> Classifier:
    """The given model, or the bundled default model when `model` is None.

    `runtime` picks the engine (`core.twin.open_model`): "keras", "litert" (the model's
    LiteRT twin, without TensorFlow) or "auto" (the twin when it is current).
    """
    if isinstance(model, Classifier):
        return model
    if runtime == "keras":
        return load_model(model_path(model))
    from core.twin import open_model

    return open_model(model_path(model), runtime, status)


def keras_model(model: str | Path | Classifier | None) -> LoadedModel:
    """The Keras model itself (Grad-CAM and export need it), loading it when `model` is a twin."""
    if isinstance(model, LoadedModel):
        return model
    return load_model(model.path if isinstance(model, Classifier) else model_path(model))


def evaluate(model: str | Path | Classifier | None, data_dir: str | Path, *,
             tta: bool | None = None, on_progress: Callable[[int, int], None] | None = None,
             should_stop: Callable[[], bool] | None = None,
             check: ModalityCheck | str | None = SHIPPED) -> dict[str, Any]:
    """Metrics of `model` on every usable image of `data_dir` (the whole folder is the test set)."""
    return evaluate_with_predictions(model, data_dir, tta=tta, on_progress=on_progress,
                                     should_stop=should_stop, check=check)[0]


def evaluate_with_predictions(model: str | Path | Classifier | None, data_dir: str | Path, *,
                              tta: bool | None = None,
                              on_progress: Callable[[int, int], None] | None = None,
                              should_stop: Callable[[], bool] | None = None,
                              check: ModalityCheck | str | None = SHIPPED
                              ) -> tuple[dict[str, Any], pd.DataFrame]:
    """Like `evaluate`, plus one row per image (see `core.metrics.predictions_table`).

    `tta=None` follows the model's stored recipe. Metrics cover every image, also those a
    check refuses: `out_of_domain` counts the refused images, `refused_by` counts them per
    reason and true class (`core.refusal`); `seen_in_training` counts images the model was
    trained on, by image id (None when the model file does not record them).
    """
    loaded = resolve_model(model)
    modality = modality_check(check)
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
    records = dataset.records
    index = {c: i for i, c in enumerate(loaded.info.classes)}
    labels = records["dx"].map(index).to_numpy()
    use_tta = loaded.uses_tta(tta)
    scores = loaded.classify(images, tta=use_tta)
    proba = scores.probabilities
    answer = None
    if modality is not None:
        answer = modality.assess(load_images(dataset, modality.size, modality.crop,
                                             should_stop=should_stop).images)
    why = reasons(None if answer is None else answer.labels, scores.in_domain, len(records))
    in_domain = accepted(why, scores.in_domain is not None, answer is not None)
    metrics = compute_metrics(labels, proba, loaded.info.classes)
    ci, unit = grouped_ci(labels, proba.argmax(axis=1), records["image_id"].to_numpy(),
                          records["lesion_id"].to_numpy())
    from core.subgroups import subgroup_metrics

    metrics.update(subgroup_metrics(labels, proba, loaded.info.classes,
                                    records["lesion_id"].to_numpy(), records))
    trained_on = loaded.training_ids
    metrics.update(
        model=str(loaded.path), runtime=loaded.runtime, data=str(dataset.root),
        layout=dataset.layout, tta=use_tta,
        problems=[str(p) for p in dataset.problems], balanced_accuracy_ci95=ci, ci_unit=unit,
        out_of_domain=None if in_domain is None else int((~in_domain).sum()),
        refused_by=None if in_domain is None else counts_by_class(why, list(records["dx"])),
        seen_in_training=None if trained_on is None
        else int(records["image_id"].isin(trained_on).sum()))
    table = predictions_table(list(records["image_id"]), list(records["path"]), labels, proba,
                              loaded.info.classes, scores.domain_scores, in_domain)
    if answer is not None:
        table["modality"] = answer.labels
        table["modality_score"] = np.round(answer.scores, 4)
        table["refusal"] = why
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
    in_domain: bool | None = None  # False when either check refuses; None: neither exists
    domain_score: float | None = None  # the model's gate: larger is less like its training
    modality: str | None = None  # dermoscopic / clinical / other (None: no modality check)
    modality_score: float | None = None  # P(dermoscopic) from the modality check
    refusal: str = ""  # why it is refused (`core.refusal.REASONS`), "" when it is not


def predict_files(model: str | Path | Classifier | None, files: Sequence[str | Path],
                  batch_size: int | None = None, tta: bool | None = None,
                  check: ModalityCheck | str | None = SHIPPED) -> list[Prediction]:
    """Classify image files; unreadable ones get `error` set instead of a label.

    `tta=None` follows the model's stored recipe. Each image goes through the modality
    check (`check`: the shipped one by default, None for none) and the model's gate.
    """
    loaded = resolve_model(model)
    modality = modality_check(check)
    size, crop = loaded.info.image_size, loaded.info.crop
    results = [Prediction(str(f)) for f in files]
    good: list[int] = []
    arrays: list[np.ndarray] = []
    views: list[np.ndarray] = []
    for i, f in enumerate(files):
        try:
            image = read_image(f, size, crop)
            view = None if modality is None else read_image(f, modality.size, modality.crop)
        except ImageError as exc:
            results[i].error = str(exc)
            continue
        arrays.append(image)
        if view is not None:
            views.append(view)
        good.append(i)
    if arrays:
        answer = None if modality is None else modality.assess(np.stack(views))
        scores = loaded.classify(np.stack(arrays), batch_size, tta=tta)
        why = reasons(None if answer is None else answer.labels, scores.in_domain, len(good))
        for n, (i, p) in enumerate(zip(good, scores.probabilities, strict=True)):
            top = int(p.argmax())
            label = loaded.info.classes[top]
            results[i].label, results[i].full_name = label, full_name(label)
            results[i].confidence = float(p[top])
            results[i].probabilities = {c: float(v)
                                        for c, v in zip(loaded.info.classes, p, strict=True)}
            if scores.domain_scores is not None:
                results[i].domain_score = round(float(scores.domain_scores[n]), 4)
            if answer is not None:
                results[i].modality = answer.labels[n]
                results[i].modality_score = round(float(answer.scores[n]), 4)
            if answer is not None or scores.in_domain is not None:
                results[i].in_domain, results[i].refusal = not why[n], why[n]
    return results


def expand_paths(paths: Sequence[str | Path]) -> list[str]:
    """Files as given; folders replaced by the images below them, recursively, sorted."""
    from core.dataset import IMAGE_SUFFIXES

    files: list[str] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            files += [str(p) for p in sorted(path.rglob("*"))
                      if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
        else:
            files.append(str(path))
    return files


def predictions_csv(predictions: Sequence[Prediction]) -> str:
    """CSV text, one row per image: path, label, confidence, in_domain, domain_score,
    modality, modality_score, refusal, one probability column per class, then error.

    A refused image keeps its label and probabilities (in_domain says it was refused); an
    unreadable file has only its path and error; without a gate in_domain is empty.
    """
    import csv
    import io

    classes = next((list(p.probabilities) for p in predictions if p.probabilities), [])
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["path", "label", "confidence", "in_domain", "domain_score", "modality",
                     "modality_score", "refusal", *classes, "error"])
    for p in predictions:
        probs = [f"{p.probabilities[c]:.6f}" for c in classes] if p.probabilities else \
            [""] * len(classes)
        in_domain = "" if p.in_domain is None else str(p.in_domain).lower()
        score = "" if p.domain_score is None else f"{p.domain_score:.4f}"
        modality_score = "" if p.modality_score is None else f"{p.modality_score:.4f}"
        writer.writerow([p.path, p.label, "" if p.error else f"{p.confidence:.6f}", in_domain,
                         score, p.modality or "", modality_score, p.refusal, *probs, p.error])
    return buffer.getvalue()
