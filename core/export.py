"""Export one part of a run's split as an ISIC 2018 Task 3 folder, for external-style tests.

A run on ISIC 2019 or ISIC 2020 is exported in its own dataset's layout instead (2019's
one-hot columns, 2020's `target`), so it reads back with the same classes.

A run's `split.csv` says which images were its validation and test parts. Writing one part in
the ISIC 2018 layout (`<name>_Input/` images plus a one-hot `<name>_GroundTruth.csv`) lets any
model be evaluated on exactly those images with `evaluate`, as on a downloaded test set.
With `center_crop` each image is saved as its square centre crop, the form dermatoscope exports
and other test sets often have; comparing both exports measures a model's crop policy.
"""

from __future__ import annotations

import csv
import io
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from core.classes import MELANOMA
from core.dataset import load_dataset
from core.errors import DatasetError
from core.images import center_square, open_image
from core.runs import RunFolder

PARTS = ("train", "val", "test")


def export_part(run_dir: str | Path, part: str, out_dir: str | Path, *,
                data_dir: str | Path | None = None, center_crop: bool = False,
                on_progress: Callable[[int, int], None] | None = None) -> Path:
    """Write the `part` images of the run in `run_dir` to `out_dir` (ISIC 2018 layout, or
    the ISIC 2019 or 2020 layout for a run on one of those).

    `data_dir` defaults to the dataset the run was trained on. Returns the ground-truth CSV.
    """

    if part not in PARTS:
        raise DatasetError(f"unknown part {part!r}; choose from {', '.join(PARTS)}")
    run, out_dir = RunFolder(run_dir), Path(out_dir)
    split = run.read_split()
    if data_dir is None:
        if not run.file(run.CONFIG).is_file():
            raise DatasetError(f"{run_dir} has no config.json: pass the dataset folder")
        data_dir = str(run.read_config_json()["data_dir"])
    dataset = load_dataset(data_dir)
    wanted = split[split["subset"] == part]
    if wanted.empty:
        raise DatasetError(f"the run's split has no {part} part")
    paths_by_id = dict(zip(dataset.records["image_id"], dataset.records["path"], strict=True))
    missing = [i for i in wanted["image_id"] if i not in paths_by_id]
    if missing:
        raise DatasetError(f"{len(missing)} {part} images are not in {dataset.root}, "
                           f"e.g. {missing[0]}")
    name = f"{part}-center-crop" if center_crop else part
    prefix = PREFIXES.get(dataset.layout, PREFIXES["isic2018"])
    images = out_dir / f"{prefix}_{name}_Input"
    if images.exists():
        shutil.rmtree(images)
    images.mkdir(parents=True)
    for done, image_id in enumerate(wanted["image_id"], 1):
        source = Path(paths_by_id[image_id])
        if center_crop:  # lossless, so the crop is the only difference from the original
            center_square(open_image(source)).save(images / f"{image_id}.png")
        else:
            shutil.copyfile(source, images / f"{image_id}{source.suffix.lower()}")
        if on_progress:
            on_progress(done, len(wanted))
    truth = out_dir / f"{prefix}_{name}_GroundTruth.csv"
    with truth.open("w", newline="") as handle:
        csv.writer(handle).writerows(_truth_rows(dataset.layout, dataset.classes, wanted,
                                                 dataset.records))
    return truth


PREFIXES = {"isic2018": "ISIC2018_Task3", "isic2019": "ISIC_2019", "isic2020": "ISIC_2020"}


def _truth_rows(layout: str, classes: list[str], wanted: Any, records: Any) -> list[list[str]]:
    """The ground-truth CSV, header first: ISIC 2020's `target` (with the patient ids the
    split grouped by) for a 2020 dataset, else one-hot columns of the dataset's classes."""
    triples = list(zip(wanted["image_id"], wanted["dx"], wanted["lesion_id"], strict=True))
    if layout == "isic2020":
        patients = dict(zip(records["image_id"], records["patient_id"], strict=True))
        return [["image_name", "patient_id", "lesion_id", "target"],
                *([i, patients.get(i, ""), lesion, str(int(dx == MELANOMA))]
                  for i, dx, lesion in triples)]
    extra = [c for c in METADATA if c in records.columns]  # for evaluate's subgroup table
    meta = records.set_index("image_id")[extra] if extra else None
    return [["image", *(c.upper() for c in classes), "lesion_id", *extra],
            *([i, *(("1.0" if dx == c else "0.0") for c in classes), lesion,
               *(_cell(meta.at[i, c]) for c in extra)]  # type: ignore[union-attr]
              for i, dx, lesion in triples)]


METADATA = ("dx_type", "age", "sex", "localization")


def _cell(value: Any) -> str:
    """A metadata value as the CSV holds it: empty when missing, ages without a stray .0."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


ISIC_COLUMNS = ("MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC")  # the challenge's order


def isic_submission_csv(predictions: Sequence[Any]) -> str:
    """The ISIC 2018 Task 3 submission format: `image,MEL,NV,BCC,AKIEC,BKL,DF,VASC`.

    One row per classified image (its file name without extension); a refused image keeps
    its probabilities, as the challenge scores every image; unreadable files have no row.
    Raises `DatasetError` when the model's classes are not HAM10000's seven.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["image", *ISIC_COLUMNS])
    for p in predictions:
        if not p.probabilities:
            continue
        codes = {c.upper(): v for c, v in p.probabilities.items()}
        if set(codes) != set(ISIC_COLUMNS):
            raise DatasetError("--isic-csv needs a model of the seven HAM10000 classes; this "
                               f"one has {', '.join(p.probabilities)}")
        writer.writerow([Path(p.path).stem, *(f"{codes[c]:.6f}" for c in ISIC_COLUMNS)])
    return buffer.getvalue()
