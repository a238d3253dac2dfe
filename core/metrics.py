"""Honest metrics for a multi-class classifier, computed with scikit-learn.

scikit-learn is imported inside the functions: it takes seconds to import, and the GUI
imports this module before its window shows.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from core.classes import MELANOMA

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pandas as pd


def _macro_auc(y_true: np.ndarray, proba: np.ndarray) -> tuple[float | None, list[float | None]]:
    """One-vs-rest ROC AUC per class (None where a class is absent or alone) and their mean."""
    from sklearn.metrics import roc_auc_score

    per_class: list[float | None] = []
    for c in range(proba.shape[1]):
        positives = y_true == c
        if positives.all() or not positives.any():
            per_class.append(None)
        else:
            per_class.append(float(roc_auc_score(positives, proba[:, c])))
    known = [a for a in per_class if a is not None]
    return (float(np.mean(known)) if known else None), per_class


def _finite(value: float) -> float | None:
    """JSON has no NaN: undefined scores (e.g. kappa with one class) become None."""
    return float(value) if np.isfinite(value) else None


def compute_metrics(y_true: np.ndarray, proba: np.ndarray, classes: list[str]) -> dict[str, Any]:
    """Accuracy, balanced accuracy (ISIC 2018 metric), macro AUC, melanoma recall and more.

    `y_true` holds class indices into `classes`; `proba` is (n, len(classes)).
    Balanced accuracy averages recall over the classes present in `y_true`.
    """
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        cohen_kappa_score,
        confusion_matrix,
        matthews_corrcoef,
        precision_recall_fscore_support,
    )

    y_true = np.asarray(y_true, dtype=int)
    y_pred = proba.argmax(axis=1)
    k = len(classes)
    labels = list(range(k))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0)
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    negatives = cm.sum() - cm.sum(axis=1)
    true_negatives = negatives - (cm.sum(axis=0) - np.diag(cm))
    specificity = np.divide(true_negatives, negatives, out=np.zeros(k), where=negatives > 0)
    macro_auc, auc_per_class = _macro_auc(y_true, proba)
    counts = np.bincount(y_true, minlength=k)
    misclassified = np.divide(counts - np.diag(cm), counts, out=np.zeros(k), where=counts > 0)
    mel = classes.index(MELANOMA) if MELANOMA in classes else None
    majority = int(counts.argmax())
    with warnings.catch_warnings():  # a class predicted but absent from y_true is expected
        warnings.simplefilter("ignore", UserWarning)
        balanced = float(balanced_accuracy_score(y_true, y_pred))
    from core.calibration import expected_calibration_error

    return {
        "n_images": int(len(y_true)),
        "classes": list(classes),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": balanced,
        "macro_auc": macro_auc,
        "melanoma_recall": float(recall[mel]) if mel is not None and counts[mel] else None,
        "cohen_kappa": _finite(cohen_kappa_score(y_true, y_pred, labels=labels)),
        "matthews_corrcoef": float(matthews_corrcoef(y_true, y_pred)),
        "ece": expected_calibration_error(y_true, proba),
        "majority_class": classes[majority],
        "majority_baseline_accuracy": float(counts[majority] / max(1, len(y_true))),
        "per_class": {
            name: {"precision": float(precision[i]), "recall": float(recall[i]),
                   "specificity": float(specificity[i]), "f1": float(f1[i]),
                   "support": int(support[i]), "auc": auc_per_class[i],
                   "fraction_misclassified": float(misclassified[i])}
            for i, name in enumerate(classes)
        },
        "confusion_matrix": cm.tolist(),
    }


def roc_curves(y_true: np.ndarray, proba: np.ndarray,
               classes: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """One-vs-rest ROC curve (fpr, tpr) for each class present with both outcomes."""
    from sklearn.metrics import roc_curve

    curves = {}
    for c, name in enumerate(classes):
        positives = np.asarray(y_true) == c
        if positives.any() and not positives.all():
            fpr, tpr, _ = roc_curve(positives, proba[:, c])
            curves[name] = (fpr, tpr)
    return curves


def predictions_table(image_ids: list[str], paths: list[str], y_true: np.ndarray,
                      proba: np.ndarray, classes: list[str],
                      domain_scores: np.ndarray | None = None,
                      in_domain: np.ndarray | None = None) -> pd.DataFrame:
    """One row per evaluated image: ids, true and predicted class, confidence, probabilities.

    With a domain gate, also `domain_score` and `in_domain`.
    """
    import pandas as pd

    y_pred = proba.argmax(axis=1)
    table = pd.DataFrame({
        "image_id": image_ids, "path": paths,
        "true": [classes[i] for i in y_true], "predicted": [classes[i] for i in y_pred],
        "confidence": proba.max(axis=1).round(6),
    })
    if domain_scores is not None and in_domain is not None:
        table["domain_score"] = np.round(domain_scores, 4)
        table["in_domain"] = np.asarray(in_domain, dtype=bool)
    for c, name in enumerate(classes):
        table[f"p_{name}"] = proba[:, c].round(6)
    return table


def table_arrays(table: pd.DataFrame, classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(y_true indices, probabilities) back from a `predictions_table`."""
    index = {name: i for i, name in enumerate(classes)}
    y_true = table["true"].map(index).to_numpy(dtype=int)
    proba = table[[f"p_{name}" for name in classes]].to_numpy(dtype=float)
    return y_true, proba


def lesions_known(image_ids: list[str] | np.ndarray, lesion_ids: list[str] | np.ndarray) -> bool:
    """True when the lesion ids say more than the image ids (some lesion has two images)."""
    return len(set(lesion_ids)) < len(set(image_ids))


def grouped_ci(y_true: np.ndarray, y_pred: np.ndarray, image_ids: np.ndarray,
               lesion_ids: np.ndarray) -> tuple[list[float], str]:
    """The balanced-accuracy CI, resampling lesions when they are known, and its unit."""
    by_lesion = lesions_known(image_ids, lesion_ids)
    ci = balanced_accuracy_ci(y_true, y_pred, groups=lesion_ids if by_lesion else None)
    return list(ci), "lesion" if by_lesion else "image"


def bootstrap_weights(n: int, n_boot: int = 1000, seed: int = 0,
                      groups: list[str] | np.ndarray | None = None) -> Iterator[np.ndarray]:
    """`n_boot` bootstrap draws of `n` images, each as how often every image is drawn.

    Without `groups` images are drawn with replacement; with `groups` (lesion ids) whole
    lesions are, and an image counts as often as its lesion. Every bootstrap here uses it.
    """
    _, unit = np.unique(np.asarray(groups) if groups is not None else np.arange(n),
                        return_inverse=True)
    n_units = int(unit.max(initial=-1)) + 1
    rng = np.random.default_rng(seed)
    for _ in range(n_boot):
        yield np.bincount(rng.integers(0, n_units, n_units), minlength=n_units)[unit]


def bootstrap_recalls(y_true: np.ndarray, correct: np.ndarray, n_boot: int = 1000,
                      seed: int = 0, groups: list[str] | np.ndarray | None = None
                      ) -> np.ndarray:
    """Per-class recall of each row of `correct` on `n_boot` bootstrap resamples.

    `correct` is (n,) or (m, n): whether each of m classifiers got each image right. Every
    draw resamples images (or, with `groups`, whole lesions) once and scores every row on
    that same draw, so differences between rows are paired. Returns (n_boot, m, k) recalls,
    NaN for a class absent from a draw.
    """
    y_true = np.asarray(y_true, dtype=int)
    hits_of = np.atleast_2d(np.asarray(correct, dtype=float))
    n, k = len(y_true), int(y_true.max(initial=0)) + 1
    recalls = np.full((n_boot, len(hits_of), k), np.nan)
    for b, weight in enumerate(bootstrap_weights(n, n_boot, seed, groups)):
        support = np.bincount(y_true, weight, minlength=k)
        present = support > 0
        for row, hit in enumerate(hits_of):
            hits = np.bincount(y_true, weight * hit, minlength=k)
            recalls[b, row, present] = hits[present] / support[present]
    return recalls


def percentile_ci(scores: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The central `level` interval of bootstrap `scores` (NaN draws left out)."""
    tail = (1 - level) / 2 * 100
    low, high = np.nanpercentile(scores, [tail, 100 - tail])
    return float(low), float(high)


def balanced_accuracy_ci(y_true: np.ndarray, y_pred: np.ndarray, n_boot: int = 1000,
                         seed: int = 0, level: float = 0.95,
                         groups: list[str] | np.ndarray | None = None) -> tuple[float, float]:
    """Bootstrap confidence interval of balanced accuracy.

    Without `groups` images are resampled with replacement. With `groups` (lesion ids) whole
    lesions are resampled, so images of one lesion, which are not independent, come and go
    together. Balanced accuracy of each resample averages recall over the classes present.
    """
    y_true, y_pred = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)
    recalls = bootstrap_recalls(y_true, y_true == y_pred, n_boot, seed, groups)[:, 0]
    return percentile_ci(np.nanmean(recalls, axis=1), level)
