"""The ISIC 2019 and ISIC 2020 training-set layouts, the next datasets after HAM10000.

* ``isic2019``: ``ISIC_2019_Training_GroundTruth.csv`` (``image`` plus one-hot columns
  ``MEL,NV,BCC,AK,BKL,DF,VASC,SCC,UNK``) beside ``ISIC_2019_Training_Metadata.csv``
  (``image,age_approx,anatom_site_general,lesion_id,sex``), images anywhere below (the
  download's ``ISIC_2019_Training_Input/``). Eight classes: 2019's own ``ak`` and ``scc`` stay
  apart (HAM10000's ``akiec`` holds both). ``UNK`` has no training images: a row labelled so
  is reported and left out.
* ``isic2020``: ``train.csv`` (or ``ISIC_2020_Training_GroundTruth_v2.csv``) with
  ``image_name, patient_id, lesion_id, sex, age_approx, anatom_site_general_challenge,
  diagnosis, benign_malignant, target``, images ``train/<image_name>.jpg``. Binary: target 1
  is exactly ``diagnosis == melanoma`` in ISIC 2020, so it is the class ``mel`` (as in every
  other dataset here, and melanoma recall is reported for it) against ``benign``.

Metadata take the HAM loader's column names (``age``, ``sex``, ``localization``), so the
subgroup table (`core.subgroups`) reads them; ``dx_type`` stays absent, as neither says how a
diagnosis was confirmed. 2020's ``patient_id`` is kept: the split then groups by patient.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from core.classes import HAM10000_CLASSES, ISIC2019_CLASSES, ISIC2020_CLASSES, MELANOMA

if TYPE_CHECKING:
    import pandas as pd

    from core.dataset import Dataset, Problem

ISIC2019_COLUMNS = {c.upper(): c for c in ISIC2019_CLASSES}
UNKNOWN_COLUMN = "UNK"
ONE_HOT_COLUMNS = ISIC2019_COLUMNS.keys() | {c.upper() for c in HAM10000_CLASSES} | {"UNK"}
METADATA_2019 = {"age_approx": "age", "sex": "sex", "anatom_site_general": "localization"}
METADATA_2020 = {"age_approx": "age", "sex": "sex",
                 "anatom_site_general_challenge": "localization"}
REQUIRED_2020 = frozenset({"image_name", "patient_id", "target"})
TARGETS_2020 = {"0": ISIC2020_CLASSES[0], "1": MELANOMA}


def layout_of(columns: set[str]) -> str | None:
    """The layout a CSV with these columns belongs to, if one of this module's.

    'isic2019-metadata' is 2019's companion CSV: read beside its ground truth, not alone.
    """
    if columns >= REQUIRED_2020:  # test.csv lacks target, sample_submission.csv patient_id
        return "isic2020"
    if "image" in columns and {"AK", "SCC", UNKNOWN_COLUMN} & columns:
        return "isic2019"
    if "image" in columns and not ONE_HOT_COLUMNS & columns \
            and ({"lesion_id", *METADATA_2019} & columns):
        return "isic2019-metadata"
    return None


def _rows(frame: pd.DataFrame, mask: pd.Series, column: str) -> list[str]:
    return [f"row {int(i) + 2}: '{frame.at[i, column]!s}'" for i in frame.index[mask]]


def _metadata_2019(csvs: list[Path], images: pd.Series,
                   problems: list[Problem]) -> pd.DataFrame:
    """2019's metadata CSV as rows in the order of `images` (no columns when there is none)."""
    import pandas as pd

    from core.dataset import Problem, _listed, _read_csv

    found = [p for p in csvs if layout_of(set(_read_csv(p).columns)) == "isic2019-metadata"]
    if not found:
        problems.append(Problem("missing-metadata", "ISIC_2019_Training_Metadata.csv",
                                "no lesion ids: each image counts as its own lesion, the split "
                                "cannot group; no age, sex or site"))
        return pd.DataFrame(index=images.index)
    meta = _read_csv(found[0])
    meta["image"] = meta["image"].str.strip()
    meta = meta.drop_duplicates("image").set_index("image")
    absent = ~images.isin(meta.index)
    _listed(problems, "missing-metadata", images[absent],
            f"not in {found[0].name}: its own lesion, no age, sex or site")
    return meta.reindex(images.to_numpy()).fillna("").set_axis(images.index)


def load_isic2019(root: Path, csv: Path, csvs: list[Path]) -> Dataset:
    """Read an ISIC 2019 ground-truth CSV and its metadata CSV (one of `csvs`)."""
    import pandas as pd

    from core.dataset import OPTIONAL_COLUMNS, _finish, _listed, _read_csv

    frame = _read_csv(csv)
    frame["image"] = frame["image"].str.strip()
    columns = [c for c in (*ISIC2019_COLUMNS, UNKNOWN_COLUMN) if c in frame.columns]
    onehot = frame[columns].apply(pd.to_numeric, errors="coerce").fillna(0.0)
    problems: list[Problem] = []
    unset = onehot.max(axis=1) <= 0
    top = onehot.idxmax(axis=1)
    unknown = ~unset & (top == UNKNOWN_COLUMN)
    _listed(problems, "unknown-label", _rows(frame, unset, "image"), "no class column is set")
    _listed(problems, "unknown-label", _rows(frame, unknown, "image"),
            "UNK: the unknown class has no training images; left out")
    left_out = unset | unknown
    kept = frame[~left_out]
    records = pd.DataFrame({"image_id": kept["image"], "dx": top[~left_out].map(ISIC2019_COLUMNS)})
    if "lesion_id" in kept.columns:  # our own exports carry them in the ground truth
        records["lesion_id"] = kept["lesion_id"].str.strip()
        for column in OPTIONAL_COLUMNS:
            if column in kept.columns:
                records[column] = kept[column]
    else:
        meta = _metadata_2019([p for p in csvs if p != csv], records["image_id"], problems)
        records["lesion_id"] = meta["lesion_id"].str.strip() if "lesion_id" in meta else ""
        for source, column in METADATA_2019.items():
            if source in meta.columns:
                records[column] = meta[source].str.strip()
    records["lesion_id"] = records["lesion_id"].where(records["lesion_id"] != "",
                                                      records["image_id"])
    return _finish(root, "isic2019", list(ISIC2019_CLASSES), records, problems, csv,
                   left_out=frame.loc[left_out, "image"])


def load_isic2020(root: Path, csv: Path, csvs: list[Path]) -> Dataset:
    """Read an ISIC 2020 training CSV: target 1 (melanoma) is `mel`, target 0 `benign`.

    Of several (the archive's GroundTruth.csv and GroundTruth_v2.csv), one with lesion ids.
    """
    import pandas as pd

    from core.dataset import _finish, _listed, _read_csv

    with_lesions = [p for p in csvs if REQUIRED_2020 | {"lesion_id"} <= set(_read_csv(p).columns)]
    csv = with_lesions[0] if with_lesions else csv
    frame = _read_csv(csv)
    image = frame["image_name"].str.strip()
    target = pd.to_numeric(frame["target"], errors="coerce")
    dx = target.map({0.0: TARGETS_2020["0"], 1.0: TARGETS_2020["1"]})
    problems: list[Problem] = []
    bad = dx.isna()
    _listed(problems, "unknown-label", _rows(frame, bad, "image_name"),
            "target must be 0 (benign) or 1 (melanoma)")
    if "diagnosis" in frame.columns:  # ISIC 2020: target 1 exactly when melanoma
        melanoma = frame["diagnosis"].str.strip().str.lower() == "melanoma"
        conflict = ~bad & (melanoma != (dx == MELANOMA))
        _listed(problems, "conflicting-label", _rows(frame, conflict, "image_name"),
                "diagnosis and target disagree; target kept")
    records = pd.DataFrame({"image_id": image, "dx": dx})
    lesion = frame["lesion_id"].str.strip() if "lesion_id" in frame.columns else image
    records["lesion_id"] = lesion.where(lesion != "", image)
    records["patient_id"] = frame["patient_id"].str.strip()
    for source, column in METADATA_2020.items():
        if source in frame.columns:
            records[column] = frame[source].str.strip()
    return _finish(root, "isic2020", list(ISIC2020_CLASSES), records[~bad], problems, csv,
                   left_out=image[bad])
