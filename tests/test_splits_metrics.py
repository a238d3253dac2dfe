"""Splits never put a lesion on two sides; balancing touches training rows only; metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.errors import DatasetError
from core.metrics import compute_metrics
from core.splits import (
    class_weights,
    parse_balance,
    resample_training,
    split_lesion,
    split_seed_leaky,
    stratified_group_folds,
)


def records(n_lesions: int = 60, per_lesion: int = 3) -> pd.DataFrame:
    classes = ["mel", "nv", "bkl"]
    rows = [{"image_id": f"img{les}_{k}", "lesion_id": f"L{les}", "dx": classes[les % 3]}
            for les in range(n_lesions) for k in range(per_lesion)]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("seed", [0, 1, 42])
def test_lesion_split_keeps_each_lesion_on_one_side(seed: int) -> None:
    recs = records()
    subset = split_lesion(recs, seed=seed)
    sides = recs.assign(subset=subset).groupby("lesion_id")["subset"].nunique()
    assert (sides == 1).all()
    counts = subset.value_counts(normalize=True)
    assert set(counts.index) == {"train", "val", "test"}
    assert 0.6 < counts["train"] < 0.8
    # every class is on every side (stratified)
    assert (recs.assign(subset=subset).groupby("subset")["dx"].nunique() == 3).all()


def test_lesion_split_is_reproducible_and_depends_on_seed() -> None:
    recs = records()
    assert split_lesion(recs, seed=3).equals(split_lesion(recs, seed=3))
    assert not split_lesion(recs, seed=3).equals(split_lesion(recs, seed=4))


@pytest.mark.parametrize("case", range(40))
def test_stratified_group_folds_are_scikit_learns_bit_for_bit(case: int) -> None:
    """The fast greedy gives StratifiedGroupKFold's folds exactly, ties included (many
    groups of one image of one class score the same), from 2 to 20 folds and 2 to 10
    classes; its errors are scikit-learn's."""
    import warnings

    from sklearn.model_selection import StratifiedGroupKFold

    rng = np.random.default_rng(case)
    n, n_classes, k = int(rng.integers(20, 500)), int(rng.integers(2, 11)), int(rng.integers(2, 21))
    labels = np.array([f"c{x}" for x in rng.integers(0, n_classes, n)], dtype=object)
    groups = np.array([f"g{x}" for x in rng.integers(0, int(rng.integers(n // 6, n + 1)), n)],
                      dtype=object)
    seed = int(rng.integers(0, 1000))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            expected = list(StratifiedGroupKFold(k, shuffle=True, random_state=seed).split(
                np.zeros(n), labels, groups))
    except ValueError as exc:
        with pytest.raises(ValueError, match=r"^" + str(exc).replace("(", r"\(")
                           .replace(")", r"\)") + "$"):
            stratified_group_folds(labels, groups, k, seed)
        return
    got = stratified_group_folds(labels, groups, k, seed)
    assert len(got) == k
    for (train, test), (train_, test_) in zip(expected, got, strict=True):
        np.testing.assert_array_equal(train, train_)
        np.testing.assert_array_equal(test, test_)


def test_stratified_group_folds_refuse_more_folds_than_groups() -> None:
    labels = np.array(["a", "b"] * 10, dtype=object)
    groups = np.array([f"g{i % 3}" for i in range(20)], dtype=object)
    with pytest.raises(ValueError, match="n_splits=4 greater than the number of groups: 3"):
        stratified_group_folds(labels, groups, 4, 0)


def test_lesion_split_needs_a_few_lesions() -> None:
    with pytest.raises(DatasetError, match="at least 3 distinct lesions"):
        split_lesion(records(n_lesions=2))


def test_seed_leaky_resamples_before_splitting_and_so_leaks() -> None:
    recs = records()
    balanced, subset = split_seed_leaky(recs, per_class=50, seed=0)
    assert len(balanced) == 150 and (subset == "val").sum() == 30
    train_ids = set(balanced.loc[(subset == "train").to_numpy(), "image_id"])
    val_ids = set(balanced.loc[(subset == "val").to_numpy(), "image_id"])
    assert train_ids & val_ids  # copies of one image on both sides: the study's flaw


def test_resampling_uses_only_training_rows() -> None:
    labels = np.array([0] * 30 + [1] * 10 + [2] * 5)
    train = np.arange(0, 45, 2)
    chosen = resample_training(train, labels, per_class=20, seed=0)
    assert set(chosen) <= set(train)
    assert np.bincount(labels[chosen]).tolist() == [20, 20, 20]


@pytest.mark.parametrize(("text", "expected"), [
    ("resample:500", ("resample", 500)), ("class-weights", ("class-weights", 0)),
    ("none", ("none", 0)),
])
def test_parse_balance(text: str, expected: tuple[str, int]) -> None:
    assert parse_balance(text) == expected


@pytest.mark.parametrize("text", ["resample:", "resample:-1", "resample:x", "oversample"])
def test_parse_balance_rejects_bad_values(text: str) -> None:
    with pytest.raises(DatasetError, match="balance must be"):
        parse_balance(text)


def test_class_weights_favour_rare_classes() -> None:
    weights = class_weights(np.array([0, 0, 0, 1]), 3)
    assert weights[1] > weights[0] and weights[2] == 1.0


def test_metrics_on_a_known_confusion() -> None:
    classes = ["akiec", "mel", "nv"]
    y_true = np.array([0, 1, 1, 2, 2, 2, 2, 2])
    y_pred = np.array([0, 1, 2, 2, 2, 2, 2, 1])
    proba = np.eye(3)[y_pred] * 0.8 + 0.2 / 3
    m = compute_metrics(y_true, proba, classes)
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert m["balanced_accuracy"] == pytest.approx((1 + 0.5 + 0.8) / 3)
    assert m["melanoma_recall"] == pytest.approx(0.5)
    assert m["majority_class"] == "nv" and m["majority_baseline_accuracy"] == pytest.approx(5 / 8)
    assert m["confusion_matrix"] == [[1, 0, 0], [0, 1, 1], [0, 1, 4]]
    assert m["per_class"]["nv"]["fraction_misclassified"] == pytest.approx(0.2)
    assert m["per_class"]["mel"]["specificity"] == pytest.approx(5 / 6)
    from sklearn.metrics import roc_auc_score

    per_class = [roc_auc_score(y_true == c, proba[:, c]) for c in range(3)]
    assert m["macro_auc"] == pytest.approx(sum(per_class) / 3)
    assert m["per_class"]["nv"]["auc"] == pytest.approx(per_class[2])


def test_metrics_with_an_absent_class_stay_defined() -> None:
    proba = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0]])
    m = compute_metrics(np.array([0, 1]), proba, ["bcc", "nv", "vasc"])
    assert m["per_class"]["vasc"]["auc"] is None
    assert m["macro_auc"] == pytest.approx(1.0)
    assert m["melanoma_recall"] is None


def test_balanced_accuracy_ci_brackets_the_estimate_and_narrows_with_data() -> None:
    from core.metrics import balanced_accuracy_ci

    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 3, 300)
    y_pred = np.where(rng.random(300) < 0.7, y_true, (y_true + 1) % 3)
    point = compute_metrics(y_true, np.eye(3)[y_pred], ["a", "b", "c"])["balanced_accuracy"]
    low, high = balanced_accuracy_ci(y_true, y_pred)
    assert low < point < high and 0.05 < high - low < 0.2
    big_low, big_high = balanced_accuracy_ci(np.tile(y_true, 10), np.tile(y_pred, 10))
    assert big_high - big_low < (high - low) / 2


def test_keras_balanced_accuracy_metric_matches_scikit_learn() -> None:
    from core.keras_metrics import balanced_accuracy

    rng = np.random.default_rng(1)
    y_true = rng.integers(0, 4, 200)
    y_pred = np.where(rng.random(200) < 0.6, y_true, rng.integers(0, 4, 200))
    metric = balanced_accuracy(4)
    metric.update_state(np.eye(4)[y_true[:120]], np.eye(4)[y_pred[:120]])
    metric.update_state(np.eye(4)[y_true[120:]], np.eye(4)[y_pred[120:]])
    expected = compute_metrics(y_true, np.eye(4)[y_pred], list("abcd"))["balanced_accuracy"]
    assert float(metric.result()) == pytest.approx(expected, abs=1e-6)
    metric.reset_state()
    assert float(metric.result()) == 0.0
