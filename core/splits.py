"""Train/validation/test splits and training-set balancing.

`lesion` (default) keeps every lesion's images on one side and stratifies by class: the
honest protocol. `seed-leaky` reproduces the study: resample every class to 500 first, then
split 80/20 at random, so copies of one image land on both sides and the score is inflated.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from core.errors import DatasetError

if TYPE_CHECKING:
    import pandas as pd

SPLITS = ("lesion", "seed-leaky")
LEAKY_WARNING = ("seed-leaky reproduces the study's protocol: classes are resampled before the "
                 "80/20 split, so copies of one image sit on both sides and scores are inflated")


def stratified_group_folds(labels: np.ndarray, groups: np.ndarray, n_splits: int,
                           seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (train, test) positions of `StratifiedGroupKFold(n_splits, shuffle=True,
    random_state=seed).split(X, labels, groups)`, fold by fold: the same folds, bit for bit.

    scikit-learn (1.9) assigns the groups greedily, each to the fold that keeps the class
    shares most even, trying every fold with its own `np.std` call: on HAM10000's 7,470
    lesions that took 4.5 s of a 6.4 s warm start to the first batch (docs/benchmarks.md).
    Here one `np.std` over the stacked candidates scores them all at once (the same floating-
    point operations in the same order, so the same scores) and the tie rule's `np.isclose`
    is written out for Python floats; tests/test_splits_metrics.py compares the two.
    Raises ValueError as scikit-learn does when no class has `n_splits` members or there are
    fewer groups than folds.
    """
    rng = np.random.RandomState(seed)
    _, y_inv, y_cnt = np.unique(np.asarray(labels), return_inverse=True, return_counts=True)
    if np.all(n_splits > y_cnt):
        raise ValueError(f"n_splits={n_splits} cannot be greater than the number of members "
                         "in each class.")
    _, groups_inv, groups_cnt = np.unique(np.asarray(groups), return_inverse=True,
                                          return_counts=True)
    y_inv, groups_inv = y_inv.reshape(-1), groups_inv.reshape(-1)
    if n_splits > len(groups_cnt):
        raise ValueError(f"Cannot have number of splits n_splits={n_splits} greater than the "
                         f"number of groups: {len(groups_cnt)}.")
    n_classes = len(y_cnt)
    per_group = np.zeros((len(groups_cnt), n_classes))
    np.add.at(per_group, (groups_inv, y_inv), 1)
    perm = np.arange(len(groups_cnt))
    rng.shuffle(perm)
    per_group = per_group[perm]
    inv_perm = np.empty_like(perm)
    inv_perm[perm] = np.arange(perm.size)
    groups_inv = inv_perm[groups_inv]
    order = np.argsort(-np.std(per_group, axis=1), kind="stable")
    per_fold = np.zeros((n_splits, n_classes))
    fold_of_group = np.empty(len(groups_cnt), dtype=np.int64)
    diagonal = np.arange(n_splits)
    shares = y_cnt.reshape(1, 1, -1)
    candidates = np.empty((n_splits, n_splits, n_classes))
    for group in order:
        counts = per_group[group]
        candidates[:] = per_fold  # candidate i: the folds with this group added to fold i
        candidates[diagonal, diagonal] += counts
        scores = np.mean(np.std(candidates / shares, axis=1), axis=1).tolist()
        sizes = per_fold.sum(axis=1).tolist()
        best, min_eval, min_size = 0, math.inf, math.inf
        for i, (score, size) in enumerate(zip(scores, sizes, strict=True)):
            close = (abs(score - min_eval) <= 1e-08 + 1e-05 * abs(min_eval)
                     and math.isfinite(min_eval)) or score == min_eval  # np.isclose
            if score < min_eval or (close and size < min_size):
                best, min_eval, min_size = i, score, size
        per_fold[best] += counts
        fold_of_group[group] = best
    folds = fold_of_group[groups_inv]
    return [(np.flatnonzero(folds != i), np.flatnonzero(folds == i)) for i in range(n_splits)]


def _hold_out(frame: pd.DataFrame, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split row positions of `frame` into (rest, held-out), grouped by lesion."""
    from sklearn.model_selection import GroupShuffleSplit

    n_splits = max(2, round(1 / fraction))
    groups, labels = frame["lesion_id"].to_numpy(), frame["dx"].to_numpy()
    smallest = frame.groupby("dx")["lesion_id"].nunique().min()
    if smallest >= n_splits:
        rest, held = stratified_group_folds(labels, groups, n_splits, seed)[0]
    else:  # too few lesions in some class to stratify: still grouped, not stratified
        splitter = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
        rest, held = next(splitter.split(frame, labels, groups))
    return rest, held


def split_lesion(records: pd.DataFrame, *, val_fraction: float = 0.15,
                 test_fraction: float = 0.15, seed: int = 42) -> pd.Series:
    """Label each row 'train', 'val' or 'test'; no lesion sits on two sides.

    With a non-empty `patient_id` column (ISIC 2020) no patient does either: the groups
    are `fold_groups`', a patient's lesions as one (a lesion without one: its own).
    """
    import pandas as pd

    if "patient_id" in records.columns:
        records = records.assign(lesion_id=fold_groups(records)[0])
    if records["lesion_id"].nunique() < 3:
        raise DatasetError("a lesion-grouped split needs at least 3 distinct lesions")
    subset = pd.Series("train", index=records.index)
    frame = records.reset_index(drop=True)
    rest, test = _hold_out(frame, test_fraction, seed)
    subset.iloc[test] = "test"
    rest_frame = frame.iloc[rest].reset_index(drop=True)
    _, val = _hold_out(rest_frame, val_fraction / (1 - test_fraction), seed + 1)
    subset.iloc[rest[val]] = "val"
    return subset


def split_seed_leaky(records: pd.DataFrame, *, per_class: int = 500,
                     seed: int = 42) -> tuple[pd.DataFrame, pd.Series]:
    """The study's protocol: resample to `per_class` per class, then split 80/20 at random.

    Returns the resampled rows (with repeats) and their subset ('train' or 'val').
    """
    import pandas as pd
    from sklearn.model_selection import train_test_split
    from sklearn.utils import resample

    parts = [resample(group, replace=True, n_samples=per_class, random_state=seed)
             for _, group in records.groupby("dx", sort=True)]
    balanced = pd.concat(parts)
    positions = np.arange(len(balanced))
    train, val = train_test_split(positions, test_size=0.2, random_state=seed)
    subset = pd.Series("train", index=range(len(balanced)))
    subset.iloc[val] = "val"
    return balanced, subset.set_axis(balanced.index)


def parse_balance(text: str) -> tuple[str, int]:
    """Parse 'resample:N', 'class-weights' or 'none' into (mode, N)."""
    if text in ("class-weights", "none"):
        return text, 0
    if text.startswith("resample:"):
        try:
            n = int(text.split(":", 1)[1])
        except ValueError:
            n = 0
        if n > 0:
            return "resample", n
    raise DatasetError(f"balance must be resample:N (N > 0), class-weights or none, not {text!r}")


def resample_training(train_positions: np.ndarray, labels: np.ndarray, per_class: int,
                      seed: int) -> np.ndarray:
    """Resample training positions (only) to `per_class` rows per class, with replacement."""
    rng = np.random.default_rng(seed)
    chosen = [rng.choice(train_positions[labels[train_positions] == c], per_class, replace=True)
              for c in np.unique(labels[train_positions])]
    return rng.permutation(np.concatenate(chosen))


def class_weights(labels: np.ndarray, n_classes: int) -> dict[int, float]:
    """'balanced' class weights for the classes present in `labels` (1.0 for absent ones)."""
    from sklearn.utils.class_weight import compute_class_weight

    present = np.unique(labels)
    weights = compute_class_weight("balanced", classes=present, y=labels)
    result = {c: 1.0 for c in range(n_classes)}
    result.update({int(c): float(w) for c, w in zip(present, weights, strict=True)})
    return result


# ----- k-fold cross-validation (core.cross_validation) --------------------------------------
def fold_groups(records: pd.DataFrame) -> tuple[np.ndarray, str]:
    """The ids no fold may split, and their kind: patients where a `patient_id` column is
    filled (every row of a lesion goes with its first patient id; a lesion without one
    stays a group of its own), else lesions."""
    lesion_id = records["lesion_id"].astype(str)
    lesion = "lesion:" + lesion_id
    if "patient_id" in records.columns:
        patient = records["patient_id"].fillna("").astype(str).str.strip()
        known = patient != ""
        if known.any():
            first = ("patient:" + patient[known]).groupby(lesion_id[known]).first()
            return lesion_id.map(first).fillna(lesion).to_numpy(), "patient"
    return lesion.to_numpy(), "lesion"


def grouped_folds(records: pd.DataFrame, k: int,
                  seed: int = 42) -> list[tuple[np.ndarray, np.ndarray]]:
    """K (train, test) row positions, stratified by dx and grouped by `fold_groups`: no
    lesion (or patient) is in two test parts, and every row is in exactly one."""
    groups, kind = fold_groups(records)
    if len(np.unique(groups)) < max(k, 3):
        raise DatasetError(f"{k}-fold cross-validation needs at least {max(k, 3)} distinct "
                           f"{kind}s; this dataset has {len(np.unique(groups))}")
    try:  # a class with fewer than k images misses some folds (no warning, unlike sklearn)
        return stratified_group_folds(records["dx"].to_numpy(), groups, k, seed)
    except ValueError as exc:
        raise DatasetError(f"{k}-fold cross-validation: {exc}") from exc


def split_fold(records: pd.DataFrame, k: int, fold: int, *, val_fraction: float = 0.15,
               seed: int = 42) -> pd.Series:
    """Label each row 'train', 'val' or 'test' for fold `fold` (1..k) of `grouped_folds`:
    the fold's held-out part is the test part, and `val_fraction` of all groups is held
    out of the rest (grouped, and stratified where each class has enough groups)."""
    import pandas as pd
    from sklearn.model_selection import GroupShuffleSplit

    if not 1 <= fold <= k:
        raise DatasetError(f"fold must be between 1 and {k}, not {fold}")
    rest, test = grouped_folds(records, k, seed)[fold - 1]
    subset = pd.Series("train", index=records.index)
    subset.iloc[test] = "test"
    groups, labels = fold_groups(records)[0][rest], records["dx"].to_numpy()[rest]
    fraction = min(0.5, val_fraction / (1 - 1 / k))
    n_splits = max(2, round(1 / fraction))
    per_class = pd.Series(groups).groupby(labels).nunique()
    if per_class.min() >= n_splits:
        _, val = stratified_group_folds(labels, groups, n_splits, seed + 1)[0]
    else:  # too few groups in some class to stratify: still grouped
        splitter = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed + 1)
        _, val = next(splitter.split(np.zeros(len(rest)), labels, groups))
    subset.iloc[rest[val]] = "val"
    return subset
