"""How well a model does for each subgroup of patients and lesions (issue #21).

For every metadata column a dataset has (sex, age in bands, anatomical site, how the
diagnosis was confirmed) and each of its groups: images, lesions, balanced accuracy,
melanoma recall and macro AUC, each with a 95% bootstrap CI that resamples whole lesions
(`core.metrics.bootstrap_weights`). A metric a group is too small for is None, with the
reason. `largest_gap` names the group furthest from the overall figure. Plain numpy and
pandas: no Qt, no scikit-learn import needed.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from itertools import islice
from typing import TYPE_CHECKING, Any

import numpy as np

from core.classes import MELANOMA
from core.metrics import bootstrap_weights, percentile_ci

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = ("sex", "age", "localization", "dx_type")  # metadata columns, in table order
COLUMN_NAMES = {"all": "all", "sex": "sex", "age": "age", "localization": "site",
                "dx_type": "confirmation"}
METRICS = (("balanced_accuracy", "balanced accuracy", "BMCA"),
           ("melanoma_recall", "melanoma recall", "Mel recall"),
           ("macro_auc", "macro AUC", "AUC"))  # key, in a sentence, column heading
AGE_BANDS = ("<30", "30-49", "50-69", "70+")
UNKNOWN = "unknown"
OVERALL = "all images"
MIN_IMAGES = 10  # every metric needs this many images in a group
MIN_MELANOMAS = 5  # melanoma recall needs this many melanoma images
N_BOOT = 400  # resamples per subgroup
N_BOOT_OVERALL = 1000  # as many as the headline CI uses
CHUNK_CELLS = 1_000_000  # resamples are scored in chunks of about this many weights
SITES = {"acral": "on acral skin", "genital": "on the genitals"}
CONFIRMED = {"histo": "histopathology", "follow_up": "follow-up",
             "consensus": "expert consensus", "confocal": "confocal microscopy"}


def age_band(age: float | None) -> str:
    """The band of an age in years: <30, 30-49, 50-69, 70+, or unknown (missing)."""
    if age is None or not math.isfinite(float(age)):
        return UNKNOWN
    bounds = (30, 50, 70)
    return AGE_BANDS[sum(float(age) >= b for b in bounds)]


def group_labels(records: pd.DataFrame) -> dict[str, np.ndarray]:
    """Each metadata column the records have, as one group label per image."""
    import pandas as pd

    labels: dict[str, np.ndarray] = {}
    for column in COLUMNS:
        if column not in records.columns:
            continue
        if column == "age":
            ages = pd.to_numeric(records["age"], errors="coerce")
            values = np.array([age_band(a) for a in ages], dtype=object)
        else:
            text = records[column].fillna("").astype(str).str.strip().str.lower()
            values = text.where(text != "", UNKNOWN).to_numpy(dtype=object)
        if (values != UNKNOWN).any():  # a column with nothing in it says nothing
            labels[column] = values
    return labels


def _ordered(column: str, values: np.ndarray) -> list[str]:
    """The groups of a column: age bands in order, others largest first; unknown last."""
    names, counts = np.unique(values.astype(str), return_counts=True)
    if column == "age":
        order = [b for b in AGE_BANDS if b in names]
    else:
        order = [str(n) for _, n in sorted(zip(-counts, names, strict=True))]
    return [g for g in order if g != UNKNOWN] + ([UNKNOWN] if UNKNOWN in names else [])


def _statistic(y: np.ndarray, proba: np.ndarray, k: int,
               mel: int | None) -> Callable[[np.ndarray], np.ndarray]:
    """Balanced accuracy, melanoma recall and macro AUC of weighted images.

    The returned function maps weights (b, n) (how often each image is drawn) to (b, 3)
    scores, NaN where undefined; unit weights give the plain scores.
    """
    onehot = np.eye(k)[y]
    hit = onehot * (proba.argmax(axis=1) == y)[:, None]
    ranked = []  # per class with both outcomes: score order, tie-group starts, positives
    for c in range(k):
        positive = y == c
        if positive.any() and not positive.all():
            order = np.argsort(proba[:, c], kind="stable")
            s = proba[order, c]
            starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
            ranked.append((order, starts, positive[order].astype(float)))

    def scores(weights: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN means: undefined
            recall = (weights @ hit) / (weights @ onehot)
            aucs = np.full((len(weights), max(len(ranked), 1)), np.nan)
            for i, (order, starts, positive) in enumerate(ranked):
                w = weights[:, order]
                pos = np.add.reduceat(w * positive, starts, axis=1)
                neg = np.add.reduceat(w * (1 - positive), starts, axis=1)
                below = np.cumsum(neg, axis=1) - neg  # negatives scored lower; ties count half
                pairs = pos.sum(axis=1) * neg.sum(axis=1)
                aucs[:, i] = (pos * (below + 0.5 * neg)).sum(axis=1) / pairs
            melanoma = recall[:, mel] if mel is not None else np.full(len(weights), np.nan)
            return np.column_stack([np.nanmean(recall, axis=1), melanoma,
                                    np.nanmean(aucs, axis=1)])

    return scores


def bootstrap_scores(statistic: Callable[[np.ndarray], np.ndarray], n: int,
                     groups: np.ndarray | None, n_boot: int, seed: int = 0) -> np.ndarray:
    """`statistic` (weights (b, n) -> (b, m)) on `n_boot` lesion resamples: (n_boot, m)."""
    draws = bootstrap_weights(n, n_boot, seed, groups)
    size = max(1, CHUNK_CELLS // max(n, 1))
    parts = []
    while chunk := list(islice(draws, size)):
        parts.append(statistic(np.array(chunk, dtype=float)))
    return np.concatenate(parts)


def _reasons(y: np.ndarray, classes: list[str], mel: int | None) -> dict[str, str | None]:
    """Why a group is too small for each metric (None: it is not)."""
    n, present = len(y), np.unique(y)
    few = f"too few images ({n}; needs {MIN_IMAGES})" if n < MIN_IMAGES else None
    one = f"one class only ({classes[int(present[0])]})" if len(present) < 2 else None
    if mel is None:
        mel_reason: str | None = f"the model has no '{MELANOMA}' class"
    else:
        m = int((y == mel).sum())
        mel_reason = few or (f"too few melanomas ({m}; needs {MIN_MELANOMAS})"
                             if m < MIN_MELANOMAS else None)
    return {"balanced_accuracy": few or one, "melanoma_recall": mel_reason,
            "macro_auc": few or one}


def _row(column: str, group: str, y: np.ndarray, proba: np.ndarray, classes: list[str],
         lesions: np.ndarray, n_boot: int, seed: int) -> dict[str, Any]:
    mel = classes.index(MELANOMA) if MELANOMA in classes else None
    row: dict[str, Any] = {"column": column, "group": group, "n_images": int(len(y)),
                           "n_lesions": int(len(np.unique(lesions))),
                           "n_melanomas": int((y == mel).sum()) if mel is not None else 0}
    reasons = _reasons(y, classes, mel)
    statistic = _statistic(y, proba, len(classes), mel)
    point = statistic(np.ones((1, len(y))))[0]
    boot = None
    if any(r is None for r in reasons.values()):
        boot = bootstrap_scores(statistic, len(y), lesions, n_boot, seed)
    for i, (key, _, _) in enumerate(METRICS):
        value = None if reasons[key] else _number(point[i])
        ci = None
        if value is not None and boot is not None and np.isfinite(boot[:, i]).any():
            ci = [round(v, 4) for v in percentile_ci(boot[:, i])]
        row[key] = value
        row[f"{key}_ci95"] = ci
        row[f"{key}_reason"] = reasons[key] or (None if value is not None else "undefined")
    return row


def _number(value: float) -> float | None:
    return round(float(value), 4) if np.isfinite(value) else None


def subgroup_table(y_true: np.ndarray, proba: np.ndarray, classes: list[str],
                   lesion_ids: np.ndarray | list[str], records: pd.DataFrame, *,
                   n_boot: int = N_BOOT, seed: int = 0) -> list[dict[str, Any]]:
    """One row for all images, then one per group of every metadata column `records` has.

    `records` is aligned with `y_true` and `proba` (one row per image). Each row has
    column, group, n_images, n_lesions, n_melanomas and, per metric of `METRICS`, the
    value, `<metric>_ci95` ([low, high] or None) and `<metric>_reason` (None when defined).
    Empty when the records carry no metadata.
    """
    y = np.asarray(y_true, dtype=int)
    proba = np.asarray(proba, dtype=float)
    lesions = np.asarray(lesion_ids).astype(str)
    labels = group_labels(records)
    if not labels:
        return []
    rows = [_row("all", OVERALL, y, proba, classes, lesions, max(n_boot, N_BOOT_OVERALL),
                 seed)]
    for column, values in labels.items():
        for group in _ordered(column, values):
            inside = values == group
            rows.append(_row(column, group, y[inside], proba[inside], classes,
                             lesions[inside], n_boot, seed))
    return rows


def _where(column: str, group: str) -> str:
    if group == UNKNOWN:
        return f"where the {COLUMN_NAMES.get(column, column)} is unknown"
    if column == "sex":
        return f"in {group} patients"
    if column == "age":
        return {"<30": "in patients under 30", "70+": "in patients aged 70 and over"}.get(
            group, f"in patients aged {group}")
    if column == "localization":
        return SITES.get(group, f"on the {group}")
    if column == "dx_type":
        return f"for lesions confirmed by {CONFIRMED.get(group, group)}"
    return f"for {column} {group}"


def largest_gap(rows: list[dict[str, Any]]) -> str | None:
    """One sentence naming the subgroup whose metric is furthest from the overall figure,
    among subgroups where that metric is defined (None when there is none)."""
    overall = next((r for r in rows if r["column"] == "all"), None)
    if overall is None:
        return None
    best: tuple[float, dict[str, Any], str, str] | None = None
    for key, words, _ in METRICS:
        if overall.get(key) is None:
            continue
        for row in rows:
            if row["column"] != "all" and row.get(key) is not None:
                gap = abs(row[key] - overall[key])
                if best is None or gap > best[0]:
                    best = (gap, row, key, words)
    if best is None:
        return None
    _, row, key, words = best
    ci = row.get(f"{key}_ci95")
    count = (f"{row['n_melanomas']} melanomas" if key == "melanoma_recall"
             else f"{row['n_images']} images")
    detail = f"95% CI {ci[0]:.2f}-{ci[1]:.2f}, {count}" if ci else count
    chance = "; the overall figure lies inside its CI, so this may be chance" \
        if ci and ci[0] <= overall[key] <= ci[1] else ""
    return (f"{words} {row[key]:.2f} {_where(row['column'], row['group'])} ({detail}) "
            f"against {overall[key]:.2f} overall{chance}")


def subgroup_metrics(y_true: np.ndarray, proba: np.ndarray, classes: list[str],
                     lesion_ids: np.ndarray | list[str], records: pd.DataFrame, *,
                     n_boot: int = N_BOOT, seed: int = 0) -> dict[str, Any]:
    """{'subgroups': `subgroup_table` rows, 'largest_subgroup_gap': `largest_gap`}."""
    rows = subgroup_table(y_true, proba, classes, lesion_ids, records, n_boot=n_boot,
                          seed=seed)
    return {"subgroups": rows, "largest_subgroup_gap": largest_gap(rows)}


def short_reason(reason: str) -> str:
    """A reason cut to fit a table cell: 'too few melanomas (2; needs 5)' -> 'too few'."""
    for prefix in ("too few", "one class"):
        if reason.startswith(prefix):
            return prefix
    return "n/a"


def cell(row: dict[str, Any], key: str, dash: str = "–") -> tuple[str, str]:
    """(text, tooltip) of one metric of a row: '0.61 [0.52–0.70]', or a short reason
    with the whole reason as its tooltip."""
    value = row.get(key)
    if value is None:
        reason = str(row.get(f"{key}_reason") or "undefined")
        return short_reason(reason), reason
    ci = row.get(f"{key}_ci95")
    text = f"{value:.2f} [{ci[0]:.2f}{dash}{ci[1]:.2f}]" if ci else f"{value:.2f}"
    return text, ""


def table_rows(rows: list[dict[str, Any]], dash: str = "–") -> list[list[str]]:
    """The table as text: column, group, images, lesions, then each metric's cell."""
    return [[COLUMN_NAMES.get(r["column"], r["column"]), str(r["group"]), str(r["n_images"]),
             str(r["n_lesions"]), *(cell(r, key, dash)[0] for key, _, _ in METRICS)]
            for r in rows]


HEADINGS = ("Column", "Group", "Images", "Lesions",
            *(f"{heading} [95% CI]" for _, _, heading in METRICS))


def subgroup_lines(metrics: dict[str, Any]) -> list[str]:
    """A compact fixed-width table with the largest-gap sentence ([] without subgroups)."""
    rows = metrics.get("subgroups") or []
    if not rows:
        return []
    table = [list(HEADINGS), *table_rows(rows, dash="-")]
    widths = [max(len(r[i]) for r in table) for i in range(len(HEADINGS))]
    lines = [f"subgroups (95% CI, lesions resampled; 'too few': under {MIN_IMAGES} images or "
             f"{MIN_MELANOMAS} melanomas; 'one class': one diagnosis only):"]
    lines += ["  " + "  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(r, widths, strict=True)))
              for r in table]
    if metrics.get("largest_subgroup_gap"):
        lines.append(f"largest gap: {metrics['largest_subgroup_gap']}")
    return lines


def subgroup_text(metrics: dict[str, Any]) -> str:
    """`subgroup_lines` as text after a blank line ('' without subgroups), for the CLI."""
    lines = subgroup_lines(metrics)
    return "\n\n" + "\n".join(lines) if lines else ""
