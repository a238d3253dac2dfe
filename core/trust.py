"""Fit what makes a model's answers trustworthy: the domain gate and the temperature.

Used when a training run ends and when a model is packaged for shipping. The gate is fitted
on the training part's features and its thresholds set on the validation part; the
temperature is fitted on the validation part. The test part plays no part in either: it is
only evaluated afterwards, with both applied (`evaluate_with_trust`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.calibration import TemperatureChoice, choose_temperature
from core.domain import DomainModel, fit_domain
from core.errors import DatasetError
from core.metrics import compute_metrics, grouped_ci, predictions_table
from core.model_io import LoadedModel, apply_recipe, compiled_call, run_batches

if TYPE_CHECKING:
    import pandas as pd

Status = Callable[[str], None]
SHIFT_SEED = 7  # the device-shifted validation views of a shipped model's gate


@dataclass
class Part:
    """One part of a split: what the model reads, the raw images, the class indices."""

    # images, or cached backbone features for a transfer model's head; a
    # `core.stream.StreamedImages` (read in chunks) when training streams its images
    inputs: Any
    images: Any  # uint8 (n, size, size, 3), for the gate's texture statistics
    labels: np.ndarray


@dataclass
class TrustFit:
    """The fitted gate and temperature, with the validation figures behind them."""

    domain: DomainModel
    temperature: TemperatureChoice
    val_rejected: float  # fraction of validation images the gate refuses


def score_inputs(model: Any, inputs: np.ndarray, tta: bool = False,
                 batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, penultimate features) of `model` on `inputs` (images or features)."""
    call = compiled_call(model, with_features=True)
    proba, features = run_batches(call, inputs, batch_size, tta, int(model.output_shape[-1]))
    if features is None:
        features = np.zeros((0, 0), dtype=np.float32)
    return proba, features


def fit_trust(model: Any, train: Part, val: Part, *, tta: bool = False,
              class_bias: list[float] | None = None, shifted_val: Any = None,
              status: Status | None = None) -> TrustFit:
    """Fit the gate (training features, thresholds from validation) and the temperature.

    `model` maps a part's `inputs` to probabilities: a whole model on images, or a transfer
    model's head on cached backbone features. `shifted_val`, inputs of device-shifted views
    of the validation images, joins the gate's deep threshold (`DomainModel.calibrate`).
    """
    say = status or (lambda _m: None)
    say(f"fitting the out-of-distribution gate on {len(train.inputs)} training images")
    _, train_features = score_inputs(model, train.inputs)
    domain = fit_domain(train_features, train.images, train.labels)
    held_out = val if len(val.inputs) else train  # no validation part: training distances
    say(f"setting its thresholds and the temperature on {len(held_out.inputs)} "
        "validation images")
    val_proba, val_features = score_inputs(model, held_out.inputs, tta=tta)
    shifted = None
    if shifted_val is not None and held_out is val:
        say("and on a device-shifted view of each of them")
        _, shifted = score_inputs(model, shifted_val, tta=tta)
    domain.calibrate(val_features, held_out.images, shifted)
    rejected = float((~domain.in_domain(domain.score(val_features, held_out.images))).mean())
    val_proba = apply_recipe(val_proba, 1.0, class_bias)
    temperature = choose_temperature(held_out.labels, val_proba)
    return TrustFit(domain, temperature, rejected)


def refit_for_shipping(loaded: LoadedModel, data_dir: str | Path, split: pd.DataFrame, *,
                       device_shift: bool = True,
                       status: Status | None = None) -> tuple[TrustFit, list[str]]:
    """Fit the gate and temperature of a saved model on its own training split.

    `split` has `image_id` and `subset` columns (a run's split.csv). Uses the model's stored
    recipe (TTA, class bias). With `device_shift`, the gate's deep threshold also counts a
    device-shifted view of each validation image (fixed seed), so that a shipped model does
    not refuse another clinic's dermatoscope for its optics. Returns the fit and the
    training part's image ids.
    """
    from core.dataset import load_dataset
    from core.images import load_images

    say = status or (lambda _m: None)
    dataset = load_dataset(data_dir)
    subset = dataset.records["image_id"].map(dict(zip(split["image_id"], split["subset"],
                                                      strict=True)))
    if subset.isna().any():
        raise DatasetError(f"{int(subset.isna().sum())} images of {dataset.root} are not in "
                           "the split; is it the data the model was trained on?")
    say(f"decoding {len(dataset.records)} images at {loaded.info.image_size} px")
    images = load_images(dataset, loaded.info.image_size, loaded.info.crop).images
    index = {c: i for i, c in enumerate(loaded.info.classes)}
    labels = dataset.records["dx"].map(index).to_numpy()
    parts = {name: np.flatnonzero(subset.to_numpy() == name) for name in ("train", "val")}
    train, val = (Part(images[p], images[p], labels[p]) for p in parts.values())
    shifted = None
    if device_shift and len(val.images):
        from core.device_shift import shifted_views

        say(f"making a device-shifted view of each of {len(val.images)} validation images")
        shifted = shifted_views(val.images, np.random.default_rng(SHIFT_SEED))
    fit = fit_trust(loaded.model, train, val, tta=loaded.info.tta,
                    class_bias=loaded.info.class_bias, shifted_val=shifted, status=say)
    return fit, list(dataset.records["image_id"].iloc[parts["train"]])


def evaluate_with_trust(fit_model: Any, test: Part, rows: pd.DataFrame, classes: list[str],
                        trust: TrustFit) -> tuple[dict[str, Any], pd.DataFrame]:
    """Test-part metrics and predictions with the fitted temperature and gate applied."""
    raw, features = score_inputs(fit_model, test.inputs)
    proba = apply_recipe(raw, trust.temperature.used)
    scores = trust.domain.score(features, test.images) if len(features) else np.zeros(0)
    accepted = trust.domain.in_domain(scores)
    metrics = compute_metrics(test.labels, proba, classes)
    ci, unit = grouped_ci(test.labels, proba.argmax(axis=1), rows["image_id"].to_numpy(),
                          rows["lesion_id"].to_numpy())
    from core.subgroups import subgroup_metrics

    metrics.update(subgroup_metrics(test.labels, proba, classes, rows["lesion_id"].to_numpy(),
                                    rows))
    metrics.update(
        balanced_accuracy_ci95=ci, ci_unit=unit,
        out_of_domain=int((~accepted).sum()),
        domain={**trust.domain.params(), "val_rejected": trust.val_rejected},
        calibration={"temperature_fitted": trust.temperature.fitted,
                     "temperature": trust.temperature.used,
                     "val_ece_before": trust.temperature.ece_before,
                     "val_ece_after": trust.temperature.ece_after})
    table = predictions_table(list(rows["image_id"]), list(rows["path"]), test.labels, proba,
                              classes, scores, accepted)
    return metrics, table
