"""Train/validation/test splits and training-set balancing.

`lesion` (default) keeps every lesion's images on one side and stratifies by class: the
honest protocol. `seed-leaky` reproduces the study: resample every class to 500 first, then
split 80/20 at random, so copies of one image land on both sides and the score is inflated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from core.errors import DatasetError

if TYPE_CHECKING:
    import pandas as pd

SPLITS = ("lesion", "seed-leaky")
LEAKY_WARNING = ("seed-leaky reproduces the study's protocol: classes are resampled before the "
                 "80/20 split, so copies of one image sit on both sides and scores are inflated")


def _hold_out(frame: pd.DataFrame, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split row positions of `frame` into (rest, held-out), grouped by lesion."""
    from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold

    n_splits = max(2, round(1 / fraction))
    groups, labels = frame["lesion_id"].to_numpy(), frame["dx"].to_numpy()
    smallest = frame.groupby("dx")["lesion_id"].nunique().min()
    if smallest >= n_splits:
        folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        rest, held = next(folds.split(frame, labels, groups))
    else:  # too few lesions in some class to stratify: still grouped, not stratified
        splitter = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
        rest, held = next(splitter.split(frame, labels, groups))
    return rest, held


def split_lesion(records: pd.DataFrame, *, val_fraction: float = 0.15,
                 test_fraction: float = 0.15, seed: int = 42) -> pd.Series:
    """Label each row 'train', 'val' or 'test'; no lesion sits on two sides."""
    import pandas as pd

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
