"""Paired comparison of two models on the same images: is B really better than A?

Both models classify the same images. Their balanced accuracy (BMCA) and melanoma recall
are compared with a paired bootstrap (each draw resamples lesions once and scores both models
on it, `core.metrics.bootstrap_recalls`) and McNemar's exact test on per-image correctness.
"Distinguishable from noise" means: the ΔBMCA 95% CI excludes 0 AND McNemar p < 0.05.

SciPy, pandas and the models are imported inside the functions: the GUI imports this module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.classes import MELANOMA
from core.errors import CancelledError, DatasetError, ModelError
from core.metrics import bootstrap_recalls, lesions_known, percentile_ci
from core.runs import RunFolder

if TYPE_CHECKING:
    from core.dataset import Dataset
    from core.model_io import Classifier

ALPHA = 0.05  # McNemar's threshold
N_BOOT = 1000
ProgressFn = Callable[[int, int], None]


@dataclass
class PairedResult:
    """The statistics of A against B on one set of images (B − A for every Δ)."""

    n_images: int
    n_units: int  # lesions (or images, when lesion ids say nothing more)
    ci_unit: str  # "lesion" or "image"
    balanced_accuracy: tuple[float, float]  # (A, B)
    balanced_accuracy_ci95: tuple[tuple[float, float], tuple[float, float]]
    delta_balanced_accuracy: float
    delta_balanced_accuracy_ci95: tuple[float, float]
    melanoma_recall: tuple[float, float] | None  # None: no melanoma among the images
    melanoma_recall_ci95: tuple[tuple[float, float], tuple[float, float]] | None
    delta_melanoma_recall: float | None
    delta_melanoma_recall_ci95: tuple[float, float] | None
    a_right_b_wrong: int
    a_wrong_b_right: int
    both_right: int
    both_wrong: int
    mcnemar_p: float
    distinguishable: bool
    sentence: str


@dataclass
class Comparison:
    """A paired comparison of two models, with where the models and images came from."""

    a: str  # the run folder's or model file's name
    b: str
    model_a: str  # model file paths
    model_b: str
    data: str  # the images' folder
    part: str  # "test part of RUN" or "every image of the folder"
    classes: list[str]
    runtimes: tuple[str, str]
    result: PairedResult
    seen_in_training: tuple[int | None, int | None] = (None, None)
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return asdict(self)


def format_value(value: float | None, signed: bool = False) -> str:
    """A comparison figure as the CLI and the Compare dialog print it ("n/a" when undefined)."""
    if value is None:
        return "n/a"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def format_delta(value: float | None, ci: Any) -> str:
    """A difference B - A with its 95% CI, e.g. "+0.052 (+0.021 to +0.083)"."""
    if value is None or ci is None:
        return "n/a"
    return f"{format_value(value, True)} ({ci[0]:+.3f} to {ci[1]:+.3f})"


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> tuple[int, int, float]:
    """(A right/B wrong, A wrong/B right, two-sided exact McNemar p) on per-image correctness."""
    from scipy.stats import binomtest

    a, b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    p = 1.0 if only_a + only_b == 0 else float(binomtest(only_b, only_a + only_b, 0.5).pvalue)
    return only_a, only_b, min(1.0, p)


def p_text(p: float) -> str:
    """'p = 0.041', 'p < 0.001': two significant figures, never rounded across ALPHA."""
    if p < 0.001:
        return "p < 0.001"
    text = f"{p:.2g}"
    if (float(text) < ALPHA) != (p < ALPHA):
        text = f"{p:.3g}"
    return f"p = {text}"


def verdict(delta: float, ci: tuple[float, float], p: float) -> tuple[bool, str]:
    """Whether the difference is distinguishable from noise, and the sentence that says so."""
    low, high = ci
    size = "the same as A's" if round(delta, 3) == 0 else \
        f"{abs(delta):.3f} {'higher' if delta > 0 else 'lower'}"
    head = f"B's balanced accuracy is {size} (95% CI {low:.3f} to {high:.3f})"
    ci_ok, p_ok = low > 0 or high < 0, p < ALPHA
    if ci_ok and p_ok:
        return True, (f"{head}; McNemar {p_text(p)}: "
                      "the difference is distinguishable from noise.")
    if not ci_ok and not p_ok:
        why = f"the CI includes 0 and {p_text(p)}"
    elif not ci_ok:
        why = f"the CI includes 0 (though McNemar {p_text(p)})"
    else:
        why = f"McNemar {p_text(p)} is not below {ALPHA} (though the CI excludes 0)"
    return False, f"{head}, but {why}: not distinguishable from noise on these images."


def _pair(values: np.ndarray) -> tuple[float, float]:
    return float(values[0]), float(values[1])


def paired_comparison(y_true: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray,
                      classes: list[str], lesion_ids: np.ndarray | None = None, *,
                      n_boot: int = N_BOOT, seed: int = 0) -> PairedResult:
    """Compare predictions `pred_a` and `pred_b` (class indices) of the same images.

    With `lesion_ids` that group images, lesions are resampled; otherwise images are.
    """
    y_true = np.asarray(y_true, dtype=int)
    if len(y_true) == 0:
        raise DatasetError("no images to compare the models on")
    correct = np.stack([np.asarray(pred_a) == y_true, np.asarray(pred_b) == y_true])
    ids = np.arange(len(y_true)).astype(str)
    by_lesion = lesion_ids is not None and lesions_known(ids, np.asarray(lesion_ids))
    groups = np.asarray(lesion_ids) if by_lesion else None
    full = _recalls(y_true, correct, int(y_true.max()) + 1)  # k as `bootstrap_recalls` has it
    draws = bootstrap_recalls(y_true, correct, n_boot, seed, groups)
    bmca, bmca_draws = np.nanmean(full, axis=1), np.nanmean(draws, axis=2)
    delta_draws = bmca_draws[:, 1] - bmca_draws[:, 0]
    delta = float(bmca[1] - bmca[0])
    delta_ci = percentile_ci(delta_draws)
    mel = classes.index(MELANOMA) if MELANOMA in classes else None
    mel_recall = mel_ci = delta_mel = delta_mel_ci = None
    if mel is not None and mel < full.shape[1] and not np.isnan(full[0, mel]):
        mel_recall = _pair(full[:, mel])
        mel_draws = draws[:, :, mel]
        mel_ci = (percentile_ci(mel_draws[:, 0]), percentile_ci(mel_draws[:, 1]))
        delta_mel = mel_recall[1] - mel_recall[0]
        delta_mel_ci = percentile_ci(mel_draws[:, 1] - mel_draws[:, 0])
    only_a, only_b, p = mcnemar_exact(correct[0], correct[1])
    distinguishable, sentence = verdict(delta, delta_ci, p)
    both = correct[0] & correct[1]
    return PairedResult(
        n_images=len(y_true),
        n_units=len(set(groups.tolist())) if groups is not None else len(y_true),
        ci_unit="lesion" if by_lesion else "image",
        balanced_accuracy=_pair(bmca),
        balanced_accuracy_ci95=(percentile_ci(bmca_draws[:, 0]),
                                percentile_ci(bmca_draws[:, 1])),
        delta_balanced_accuracy=delta, delta_balanced_accuracy_ci95=delta_ci,
        melanoma_recall=mel_recall, melanoma_recall_ci95=mel_ci,
        delta_melanoma_recall=delta_mel, delta_melanoma_recall_ci95=delta_mel_ci,
        a_right_b_wrong=only_a, a_wrong_b_right=only_b, both_right=int(both.sum()),
        both_wrong=int((~correct[0] & ~correct[1]).sum()), mcnemar_p=p,
        distinguishable=distinguishable, sentence=sentence)


def _recalls(y_true: np.ndarray, correct: np.ndarray, k: int) -> np.ndarray:
    """(m, k) recall of each row of `correct` on every image (NaN for absent classes)."""
    support = np.bincount(y_true, minlength=k).astype(float)
    hits = np.stack([np.bincount(y_true, row.astype(float), minlength=k) for row in correct])
    return np.divide(hits, support, out=np.full(hits.shape, np.nan), where=support > 0)


# ----- models, runs and images -------------------------------------------------------------
def model_file(source: str | Path) -> tuple[Path, RunFolder | None]:
    """The model file of `source` (a run folder or a model file) and its run, if it is one."""
    path = Path(source)
    if path.is_dir():
        run = RunFolder(path)
        if not run.model_path.is_file():
            raise ModelError(f"{path} has no {RunFolder.MODEL}: not a finished training run")
        return run.model_path, run
    if path.is_file():
        return path, None
    raise ModelError(f"{path}: no such run folder or model file")


def run_test_part(run: RunFolder) -> tuple[str, list[str]]:
    """The data folder and image ids of a run's test part; DatasetError when it cannot be
    rebuilt."""
    def fail(why: str) -> DatasetError:
        return DatasetError(f"the test part of run {run.name} cannot be rebuilt ({why}): "
                            "name the labelled folder to compare on (--data FOLDER)")

    if not run.file(run.SPLIT).is_file():
        raise fail("it has no split.csv")
    split = run.read_split()
    ids = list(split.loc[split["subset"] == "test", "image_id"])
    if not ids:
        raise fail("its split has no test part")
    try:
        data_dir = str(run.read_config_json().get("data_dir") or "")
    except DatasetError as exc:
        raise fail("config.json is unreadable") from exc
    if not data_dir or not Path(data_dir).is_dir():
        raise fail(f"its data folder {data_dir or '(none recorded)'} is not there")
    return data_dir, ids


def _test_dataset(data_dir: str, ids: list[str], run: RunFolder) -> Dataset:
    from core.dataset import load_dataset

    dataset = load_dataset(data_dir)
    records = dataset.records
    missing = sorted(set(ids) - set(records["image_id"]))
    if missing:
        raise DatasetError(f"the test part of run {run.name} cannot be rebuilt ({len(missing)} "
                           f"of its images are not in {data_dir}, e.g. {missing[0]}): name the "
                           "labelled folder to compare on (--data FOLDER)")
    dataset.records = records[records["image_id"].isin(set(ids))].reset_index(drop=True)
    return dataset


def compare_models(source_a: str | Path, source_b: str | Path,
                   data: str | Path | None = None, *, runtime: str = "auto",
                   on_progress: ProgressFn | None = None,
                   status: Callable[[str], None] | None = None,
                   should_stop: Callable[[], bool] | None = None,
                   n_boot: int = N_BOOT) -> Comparison:
    """Classify the same images with both models and compare them (`paired_comparison`).

    Each source is a run folder or a model file. Without `data` the images are the test
    part of the first run's split. Images are decoded once per (size, crop); every image
    counts, as in `core.inference.evaluate` (the modality check plays no part here).
    """
    from core.dataset import load_dataset
    from core.inference import resolve_model

    say = status or (lambda _message: None)
    path_a, run_a = model_file(source_a)
    path_b, run_b = model_file(source_b)
    if data is None:
        run = run_a or run_b
        if run is None:
            raise DatasetError("two model files have no test part: name the labelled folder "
                               "to compare on (--data FOLDER)")
        data_dir, ids = run_test_part(run)
        dataset = _test_dataset(data_dir, ids, run)
        part = f"test part of run {run.name}"
    else:
        dataset = load_dataset(data)
        part = "every image of the folder"
    models: list[Classifier] = []
    for path in (path_a, path_b):
        say(f"loading {path.parent.name if path.name == RunFolder.MODEL else path.name}")
        models.append(resolve_model(path, runtime, status))
    classes = list(models[0].info.classes)
    if set(classes) != set(models[1].info.classes):
        raise ModelError(f"the models have different classes (A: {', '.join(classes)}; B: "
                         f"{', '.join(models[1].info.classes)}): a paired comparison needs "
                         "the same classes")
    known = dataset.records["dx"].isin(classes)
    if not known.any():
        raise DatasetError(f"none of the labels in {dataset.root} are classes of the models")
    dataset.records = dataset.records[known].reset_index(drop=True)
    predictions = _predict(models, dataset, on_progress, should_stop, say)
    records = dataset.records
    index = {c: i for i, c in enumerate(classes)}
    result = paired_comparison(records["dx"].map(index).to_numpy(), predictions[0],
                               predictions[1], classes, records["lesion_id"].to_numpy(),
                               n_boot=n_boot)
    seen = tuple(None if m.training_ids is None
                 else int(records["image_id"].isin(m.training_ids).sum()) for m in models)
    return Comparison(
        a=_name(path_a, run_a), b=_name(path_b, run_b), model_a=str(path_a),
        model_b=str(path_b), data=str(dataset.root), part=part, classes=classes,
        runtimes=(models[0].runtime, models[1].runtime), result=result,
        seen_in_training=(seen[0], seen[1]), problems=[str(p) for p in dataset.problems])


def _name(path: Path, run: RunFolder | None) -> str:
    return run.name if run is not None else path.name


def _predict(models: list[Classifier], dataset: Dataset, on_progress: ProgressFn | None,
             should_stop: Callable[[], bool] | None,
             say: Callable[[str], None]) -> list[np.ndarray]:
    """Each model's predicted class names mapped to A's indices, on the images that every
    decode could read; images are decoded once per (size, crop)."""
    from core.images import load_images

    decoded: dict[tuple[int, str], tuple[list[str], np.ndarray]] = {}
    for model in models:
        key = (model.info.image_size, model.info.crop)
        if key not in decoded:
            say(f"decoding images at {key[0]} px ({key[1]})")
            images = load_images(dataset, key[0], key[1], on_progress=on_progress,
                                 should_stop=should_stop).images
            decoded[key] = (list(dataset.records["image_id"]), images)
    final = list(dataset.records["image_id"])  # a later decode may have dropped images
    if not final:
        raise DatasetError(f"no readable images in {dataset.root}")
    index = {c: i for i, c in enumerate(models[0].info.classes)}
    predictions = []
    for model in models:
        if should_stop is not None and should_stop():
            raise CancelledError("the comparison was stopped")
        ids, images = decoded[(model.info.image_size, model.info.crop)]
        if ids != final:
            where = {image_id: i for i, image_id in enumerate(ids)}
            images = images[[where[i] for i in final]]
        proba = model.classify(images, tta=model.uses_tta(None)).probabilities
        mapping = np.array([index[c] for c in model.info.classes])
        predictions.append(mapping[proba.argmax(axis=1)])
    return predictions
