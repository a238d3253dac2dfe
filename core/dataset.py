"""Find a dataset's layout, read its labels, and report what is wrong with it.

These layouts are understood:

* ``ham10000``: a metadata CSV with ``image_id`` and ``dx`` columns (Kaggle / ISIC archive
  download), images anywhere below the folder, matched by file stem;
* ``isic2018``: a ground-truth CSV with an ``image`` column and one-hot class columns
  (ISIC 2018 Task 3), images anywhere below the folder;
* ``isic2019`` and ``isic2020``: the ISIC 2019 (eight classes, with its metadata CSV) and
  ISIC 2020 (benign against melanoma) training sets, read by `core.isic_layouts`;
* ``image-folder``: one sub-folder of images per class.

Decoding the images is `core.images`' job; here only files and labels are checked.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Iterable
from csv import Error as CsvError
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from core.classes import FULL_NAMES, HAM10000_CLASSES
from core.errors import DatasetError

if TYPE_CHECKING:
    import pandas as pd

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
ISIC_COLUMNS = {code.upper(): code for code in HAM10000_CLASSES}
OPTIONAL_COLUMNS = ("dx_type", "age", "sex", "localization", "patient_id")
MAX_LISTED = 50  # problems of one kind listed by name; the rest are counted


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a dataset: `kind` is a short code, `item` what it concerns."""

    kind: str
    item: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.kind}: {self.item}" + (f" ({self.detail})" if self.detail else "")


@dataclass
class Dataset:
    """A dataset's labelled images (one row each in `records`) and the problems found."""

    root: Path
    layout: str
    classes: list[str]
    records: pd.DataFrame  # image_id, lesion_id, dx, path (+ dx_type, age, sex, localization)
    problems: list[Problem] = field(default_factory=list)
    _fingerprint: tuple[tuple[str, ...], str] | None = field(default=None, repr=False,
                                                             compare=False)

    def fingerprint(self) -> str:
        """Hash of every image file's path, size and mtime: changes when any image changes.

        Computed once per set of records (10,015 stat calls take a noticeable moment).
        """
        paths_ = tuple(sorted(self.records["path"]))
        if self._fingerprint is None or self._fingerprint[0] != paths_:
            h = hashlib.sha1(self.layout.encode())
            skip = len(str(self.root)) + 1
            for path in paths_:
                st = os.stat(path)
                h.update(f"{path[skip:]}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
            self._fingerprint = (paths_, h.hexdigest()[:16])
        return self._fingerprint[1]

    def portable_fingerprint(self) -> str:
        """Hash of every image's path inside the dataset folder, size and label.

        Unlike `fingerprint` it holds nothing of this machine (no folder, no mtimes): a copy
        of the same dataset elsewhere gives the same value, so model files can store it.
        """
        h = hashlib.sha1(self.layout.encode())
        skip = len(str(self.root)) + 1
        for path, label in sorted(zip(self.records["path"], self.records["dx"], strict=True)):
            h.update(f"{path[skip:]}\0{os.stat(path).st_size}\0{label}\n".encode())
        return h.hexdigest()[:16]

    def drop_images(self, reasons: dict[str, str]) -> None:
        """Remove images (by image_id) that could not be decoded, recording why."""
        if not reasons:
            return
        self.records = self.records[~self.records["image_id"].isin(reasons)].reset_index(drop=True)
        self.problems.extend(Problem("unreadable-image", i, r) for i, r in sorted(reasons.items()))
        _require_usable(self)


def _index_images(root: Path) -> dict[str, str]:
    """Map image stem to path for every image below `root` (first in sorted order wins).

    Kaggle's HAM10000 zip holds each image twice (upper- and lower-case folder names), so
    repeated stems are expected and not reported. Plain strings and os.walk: pathlib costs
    seconds on 10,000 files.
    """
    found: list[str] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [os.path.join(folder, f) for f in files
                  if not f.startswith(".") and os.path.splitext(f)[1].lower() in IMAGE_SUFFIXES]
    index: dict[str, str] = {}
    for path in sorted(found):
        index.setdefault(os.path.splitext(os.path.basename(path))[0], path)
    return index


def _find_csvs(root: Path) -> list[Path]:
    found = sorted(root.glob("*.csv")) + sorted(root.glob("*/*.csv"))
    return [p for p in found if not p.name.startswith(".")]


def _read_csv(path: Path) -> pd.DataFrame:
    import pandas as pd

    try:
        with warnings.catch_warnings():  # rows with extra fields: the extra fields are dropped
            warnings.simplefilter("ignore", pd.errors.ParserWarning)
            frame = pd.read_csv(path, encoding="utf-8-sig", dtype=str, keep_default_na=False,
                                index_col=False)
    except pd.errors.EmptyDataError as exc:
        raise DatasetError(f"{path} is empty: it needs a header row and one row per image") from exc
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, CsvError) as exc:
        raise DatasetError(f"{path} is not a readable CSV file: "
                           f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                           ) from exc
    except OSError as exc:
        raise DatasetError(f"{path} cannot be read: {exc.strerror or exc}") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame.reset_index(drop=True)  # row i is line i + 2 of the file


def _listed(problems: list[Problem], kind: str, items: Iterable[str], detail: str = "") -> None:
    items = list(items)
    problems.extend(Problem(kind, item, detail) for item in items[:MAX_LISTED])
    if len(items) > MAX_LISTED:
        problems.append(Problem(kind, f"... and {len(items) - MAX_LISTED} more"))


def load_dataset(root: str | Path) -> Dataset:
    """Detect the layout of `root` and read its labels; raise `DatasetError` if unusable."""
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder")
    from core import isic_layouts

    metadata_only = None
    for csv in _find_csvs(root):
        columns = set(_read_csv(csv).columns)
        layout = isic_layouts.layout_of(columns)
        if layout == "isic2020":
            return isic_layouts.load_isic2020(root, csv, _find_csvs(root))
        if layout == "isic2019":
            return isic_layouts.load_isic2019(root, csv, _find_csvs(root))
        if layout == "isic2019-metadata":  # read beside its ground truth
            metadata_only = metadata_only or csv
            continue
        if "image" in columns and ISIC_COLUMNS.keys() & columns:
            return _load_isic(root, csv)  # may also have lesion_id, as our exports do
        if {"image_id", "dx"} <= columns or "lesion_id" in columns:
            return _load_ham(root, csv)
    if metadata_only is not None:
        raise DatasetError(f"{metadata_only} is ISIC 2019 metadata, but its ground truth "
                           "(ISIC_2019_Training_GroundTruth.csv) is not in the folder")
    class_dirs = [d for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith(".")]
    if any(_has_image(d) for d in class_dirs):
        return _load_image_folder(root, class_dirs)
    csvs = _find_csvs(root)
    if csvs:
        raise DatasetError(
            f"{csvs[0]} has neither HAM10000 columns (image_id, dx) nor ISIC 2018 columns "
            f"(image, {', '.join(ISIC_COLUMNS)}), and {root} has no class sub-folders of images"
        )
    raise DatasetError(
        f"{root} holds no dataset: expected HAM10000_metadata.csv, an ISIC 2018 or 2019 "
        "ground-truth CSV, ISIC 2020's train.csv, or one sub-folder of images per class"
    )


def _has_image(folder: Path) -> bool:
    return any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.rglob("*"))


def _load_ham(root: Path, csv: Path) -> Dataset:
    frame = _read_csv(csv)
    missing = [c for c in ("image_id", "dx") if c not in frame.columns]
    if missing:
        raise DatasetError(
            f"{csv.name} lacks column(s) {', '.join(missing)} (found: {', '.join(frame.columns)})"
        )
    problems: list[Problem] = []
    frame["image_id"] = frame["image_id"].str.strip()
    frame["dx"] = frame["dx"].str.strip().str.lower()
    if "lesion_id" not in frame.columns:
        problems.append(Problem("missing-column", "lesion_id",
                                "each image counts as its own lesion; the split cannot group"))
        frame["lesion_id"] = frame["image_id"]
    lesion = frame["lesion_id"].str.strip()
    frame["lesion_id"] = lesion.where(lesion != "", frame["image_id"])
    unknown = ~frame["dx"].isin(HAM10000_CLASSES)
    if unknown.any():
        rows = [f"row {int(i) + 2}: '{frame.at[i, 'dx']!s}'" for i in frame.index[unknown]]
        _listed(problems, "unknown-label", rows, f"known: {', '.join(HAM10000_CLASSES)}")
    return _finish(root, "ham10000", list(HAM10000_CLASSES), frame[~unknown], problems, csv,
                   left_out=frame.loc[unknown, "image_id"])


def _load_isic(root: Path, csv: Path) -> Dataset:
    import pandas as pd

    frame = _read_csv(csv)
    class_columns = [c for c in frame.columns if c in ISIC_COLUMNS]
    problems: list[Problem] = []
    onehot = frame[class_columns].apply(pd.to_numeric, errors="coerce").fillna(0.0)
    bad = onehot.max(axis=1) <= 0
    if bad.any():
        rows = [f"row {int(i) + 2}: '{frame.at[i, 'image']!s}'" for i in frame.index[bad]]
        _listed(problems, "unknown-label", rows, "no class column is set")
    labels = onehot.idxmax(axis=1).map(ISIC_COLUMNS)
    records = pd.DataFrame({"image_id": frame["image"].str.strip(), "dx": labels})
    has_lesions = "lesion_id" in frame.columns
    records["lesion_id"] = frame["lesion_id"] if has_lesions else records["image_id"]
    for column in OPTIONAL_COLUMNS:  # patient metadata, when the CSV carries it
        if column in frame.columns:
            records[column] = frame[column]
    return _finish(root, "isic2018", list(HAM10000_CLASSES), records[~bad], problems, csv,
                   left_out=records.loc[bad, "image_id"])


def _load_image_folder(root: Path, class_dirs: list[Path]) -> Dataset:
    import pandas as pd

    rows = []
    for folder in class_dirs:
        for path in sorted(folder.rglob("*")):
            if path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith("."):
                image_id = str(path.relative_to(root).with_suffix(""))
                rows.append({"image_id": image_id, "lesion_id": image_id,
                             "dx": folder.name, "path": str(path)})
    names = [d.name for d in class_dirs if _has_image(d)]
    # HAM10000 codes keep their canonical order; other names are sorted.
    classes = [c for c in HAM10000_CLASSES if c in names] if set(names) <= set(HAM10000_CLASSES) \
        else sorted(names)
    dataset = Dataset(root, "image-folder", classes, pd.DataFrame(rows), [])
    _require_usable(dataset)
    return dataset


def _finish(root: Path, layout: str, classes: list[str], frame: pd.DataFrame,
            problems: list[Problem], csv: Path, left_out: Iterable[str] = ()) -> Dataset:
    """Match rows to image files, report duplicates, missing and unlisted images.

    `left_out`: ids of rows already reported and dropped (their label), not unlisted.
    """
    import pandas as pd

    frame = frame.reset_index(drop=True)
    duplicated = frame["image_id"].duplicated(keep="first")
    if duplicated.any():
        _listed(problems, "duplicate-id", frame.loc[duplicated, "image_id"], "first row kept")
        frame = frame[~duplicated]
    index = _index_images(root)
    frame = frame.assign(path=frame["image_id"].map(lambda i: index.get(i, "")))
    no_file = frame["path"] == ""
    if no_file.any():
        _listed(problems, "missing-image", frame.loc[no_file, "image_id"], f"listed in {csv.name}")
    listed = set(frame["image_id"]) | set(left_out)
    _listed(problems, "unlisted-image", [s for s in index if s not in listed],
            f"not in {csv.name}")
    columns = ["image_id", "lesion_id", "dx", "path"] + [c for c in OPTIONAL_COLUMNS
                                                         if c in frame.columns]
    records = frame.loc[~no_file, columns].reset_index(drop=True)
    if "age" in records.columns:
        records["age"] = pd.to_numeric(records["age"], errors="coerce")
    dataset = Dataset(root, layout, classes, records, problems)
    _require_usable(dataset)
    return dataset


def _require_usable(dataset: Dataset) -> None:
    if dataset.records.empty:
        reasons = "; ".join(str(p) for p in dataset.problems[:3])
        raise DatasetError(f"{dataset.root} has no usable labelled images"
                           + (f" ({reasons})" if reasons else ""))


def summarize(dataset: Dataset) -> dict:
    """Counts a user wants before training: images and lesions per class, metadata, problems."""
    rec = dataset.records
    per_class = {
        c: {"full_name": FULL_NAMES.get(c, c),
            "images": int((rec["dx"] == c).sum()),
            "lesions": int(rec.loc[rec["dx"] == c, "lesion_id"].nunique())}
        for c in dataset.classes
    }
    summary: dict = {
        "root": str(dataset.root), "layout": dataset.layout,
        "n_images": len(rec), "n_lesions": int(rec["lesion_id"].nunique()),
        "classes": dataset.classes, "per_class": per_class,
    }
    for column in ("dx_type", "localization", "sex"):
        if column in rec.columns:
            summary[column] = {str(k): int(v) for k, v in rec[column].value_counts().items()}
    if "age" in rec.columns:
        ages = rec["age"].dropna()
        decades = (ages // 10 * 10).astype(int).value_counts().sort_index()
        summary["age"] = {
            "missing": int(rec["age"].isna().sum()),
            "mean": round(float(ages.mean()), 1) if len(ages) else None,
            "median": float(ages.median()) if len(ages) else None,
            "by_decade": {f"{k}-{k + 9}": int(v)
                          for k, v in zip(decades.index.astype(int), decades, strict=True)},
        }
    summary["problems"] = [{"kind": p.kind, "item": p.item, "detail": p.detail}
                           for p in dataset.problems]
    return summary
