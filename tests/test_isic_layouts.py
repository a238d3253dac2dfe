"""The ISIC 2019 and ISIC 2020 layouts (issue #21): read, split, train, evaluate, gate, export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from core.classes import ISIC2019_CLASSES, ISIC2020_CLASSES
from core.cli import main
from core.dataset import Dataset, load_dataset
from core.errors import DatasetError
from core.splits import split_lesion
from tests.synthetic import CLASS_COLOURS, make_image

COLOURS = {**CLASS_COLOURS, "ak": CLASS_COLOURS["akiec"], "scc": (60, 200, 200),
           "benign": CLASS_COLOURS["nv"]}
GT_2019 = "ISIC_2019_Training_GroundTruth.csv"
META_2019 = "ISIC_2019_Training_Metadata.csv"
ORDER_2019 = ("MEL", "NV", "BCC", "AK", "BKL", "DF", "VASC", "SCC", "UNK")  # the CSV's order
SITES = ("anterior torso", "head/neck", "lower extremity", "")


def make_isic2019(root: Path, per_class: int = 6, images_per_lesion: int = 2) -> Path:
    """ISIC 2019 training layout: ground truth and metadata CSVs, images in an input folder."""
    truth, meta = [",".join(["image", *ORDER_2019])], ["image,age_approx,anatom_site_general,"
                                                       "lesion_id,sex"]
    n = 0
    for c in ISIC2019_CLASSES:
        for i in range(per_class):
            image = f"ISIC_{n:07d}"
            make_image(root / "ISIC_2019_Training_Input" / f"{image}.jpg", COLOURS[c], seed=n)
            truth.append(",".join([image, *("1.0" if h == c.upper() else "0.0"
                                            for h in ORDER_2019)]))
            lesion = f"BCN_{c}_{i // images_per_lesion}" if n % 7 else ""  # some have none
            age = "" if n % 11 == 0 else f"{30 + 5 * (n % 10)}.0"
            meta.append(f"{image},{age},{SITES[n % 4]},{lesion},{'male' if n % 3 else 'female'}")
            n += 1
    (root / GT_2019).write_text("\n".join(truth) + "\n")
    (root / META_2019).write_text("\n".join(meta) + "\n")
    return root


def make_isic2020(root: Path, patients: int = 16) -> Path:
    """ISIC 2020 layout: train.csv (+ test.csv, sample_submission.csv), images in train/.

    Each patient has two lesions of two images each; half the patients have a melanoma.
    """
    rows = ["image_name,patient_id,lesion_id,sex,age_approx,anatom_site_general_challenge,"
            "diagnosis,benign_malignant,target"]
    n = 0
    for p in range(patients):
        for lesion in range(2):
            melanoma = lesion == 0 and p % 2 == 0
            for _ in range(2):
                image = f"ISIC_{2000000 + n:07d}"
                make_image(root / "train" / f"{image}.jpg",
                           COLOURS["mel" if melanoma else "benign"], seed=n)
                rows.append(f"{image},IP_{p:07d},IL_{p}_{lesion},{'male' if p % 3 else 'female'},"
                            f"{35 + 5 * (p % 8)},{SITES[n % 4]},"
                            f"{'melanoma' if melanoma else 'nevus'},"
                            f"{'malignant' if melanoma else 'benign'},{int(melanoma)}")
                n += 1
    (root / "train.csv").write_text("\n".join(rows) + "\n")
    (root / "test.csv").write_text("image_name,patient_id,sex,age_approx,"
                                   "anatom_site_general_challenge\n")
    (root / "sample_submission.csv").write_text("image_name,target\n")
    return root


def sides(run: Path, column: str, records: pd.DataFrame) -> dict[str, set[str]]:
    """Which subsets of the run's split each value of `column` (of `records`) lands in."""
    split = pd.read_csv(run / "split.csv", dtype=str)[["image_id", "subset"]].merge(
        records[["image_id", column]], on="image_id")
    return {str(k): set(v) for k, v in split.groupby(column)["subset"]}


def train(data: Path, run: Path, capsys: pytest.CaptureFixture[str], model: str = "mlp",
          size: int = 8) -> dict:
    assert main(["train", "--data", str(data), "--model", model, "--image-size", str(size),
                 "--epochs", "1", "--balance", "resample:8", "--out", str(run), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def evaluate(model: Path, data: Path, capsys: pytest.CaptureFixture[str]) -> dict:
    assert main(["evaluate", "--model", str(model), "--data", str(data), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def export_test_part(run: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> Dataset:
    """`data export` of the run's test part, read back."""
    assert main(["data", "export", "--run", str(run), "--part", "test", "--out", str(out)]) == 0
    capsys.readouterr()
    return load_dataset(out)


def test_isic2019_gives_eight_classes_lesions_and_metadata(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = make_isic2019(tmp_path / "isic2019")
    assert main(["data", "summary", "--data", str(data), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["layout"] == "isic2019" and summary["problems"] == []
    assert summary["classes"] == ["ak", "bcc", "bkl", "df", "mel", "nv", "scc", "vasc"]
    assert {c: v["images"] for c, v in summary["per_class"].items()} == dict.fromkeys(
        ISIC2019_CLASSES, 6)
    assert summary["per_class"]["scc"]["full_name"] == "Squamous cell carcinoma"
    assert summary["n_images"] == 48 and 24 < summary["n_lesions"] < 48  # grouped, some alone
    assert {"sex", "age", "localization"} <= summary.keys() and "dx_type" not in summary
    records = load_dataset(data).records
    assert {"age", "sex", "localization"} <= set(records.columns)
    assert "dx_type" not in records.columns and "patient_id" not in records.columns
    assert records["age"].isna().sum() == 5  # empty age_approx: unknown, not 0


def test_isic2019_trains_evaluates_gates_and_exports_end_to_end(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, run = make_isic2019(tmp_path / "isic2019"), tmp_path / "run"
    train(data, run, capsys)
    records = load_dataset(data).records
    assert all(len(s) == 1 for s in sides(run, "lesion_id", records).values())
    model = run / "model.keras"
    metrics = evaluate(model, data, capsys)
    assert metrics["layout"] == "isic2019" and metrics["classes"] == list(ISIC2019_CLASSES)
    assert len(metrics["confusion_matrix"]) == 8 and metrics["n_images"] == 48
    assert metrics["melanoma_recall"] is not None and metrics["out_of_domain"] is not None
    assert {"sex", "age", "localization"} <= {r["column"] for r in metrics["subgroups"]}
    lesion = data / "ISIC_2019_Training_Input" / "ISIC_0000000.jpg"
    flat = tmp_path / "flat.png"
    Image.fromarray(np.full((15, 20, 3), 128, np.uint8)).save(flat)
    assert main(["predict", "--model", str(model), str(lesion), str(flat), "--json"]) == 0
    rows = {Path(r["path"]).name: r for r in json.loads(capsys.readouterr().out)}
    assert rows["ISIC_0000000.jpg"]["in_domain"] is True  # the gate fits any class set
    assert set(rows["ISIC_0000000.jpg"]["probabilities"]) == set(ISIC2019_CLASSES)
    assert rows["flat.png"]["in_domain"] is False
    out = tmp_path / "model.tflite"
    assert main(["export-model", "--model", str(model), "--format", "tflite", "--out",
                 str(out), "--json"]) == 0
    sidecar = json.loads(Path(json.loads(capsys.readouterr().out)["sidecar"]).read_text())
    assert [c["code"] for c in sidecar["classes"]] == list(ISIC2019_CLASSES)
    assert sidecar["classes"][0] == {"code": "ak", "name": "Actinic keratosis"}
    exported = export_test_part(run, tmp_path / "exported", capsys)
    assert exported.layout == "isic2019" and exported.classes == list(ISIC2019_CLASSES)


def test_isic2020_is_binary_split_by_patient_and_reports_melanoma_recall(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, run = make_isic2020(tmp_path / "isic2020"), tmp_path / "run"
    v1 = pd.read_csv(data / "train.csv", dtype=str).drop(columns="lesion_id")
    v1.to_csv(data / "ISIC_2020_Training_GroundTruth.csv", index=False)  # read first; no lesions
    dataset = load_dataset(data)
    assert dataset.layout == "isic2020" and dataset.classes == list(ISIC2020_CLASSES)
    assert dataset.problems == []
    assert (dataset.records["dx"] == "mel").sum() == 16 and len(dataset.records) == 64
    assert {"patient_id", "age", "sex", "localization"} <= set(dataset.records.columns)
    assert dataset.records["lesion_id"].nunique() == 32  # train.csv's, which has them
    train(data, run, capsys, model="cnn", size=32)  # a CNN, so Grad-CAM has a map to explain
    patients = sides(run, "patient_id", dataset.records)
    assert len(patients) == 16 and all(len(s) == 1 for s in patients.values())
    assert {"train", "test"} <= set().union(*patients.values())
    metrics = evaluate(run / "model.keras", data, capsys)
    assert metrics["classes"] == ["benign", "mel"] and metrics["melanoma_recall"] is not None
    assert metrics["per_class"]["mel"]["support"] == 16
    assert main(["evaluate", "--model", str(run / "model.keras"), "--data", str(data)]) == 0
    assert "melanoma recall: " in capsys.readouterr().out
    image = data / "train" / "ISIC_2000000.jpg"
    assert main(["predict", "--model", str(run / "model.keras"), str(image), "--gradcam",
                 str(tmp_path / "cams")]) == 0
    assert "ISIC_2000000_gradcam.png" in capsys.readouterr().out
    assert (tmp_path / "cams" / "ISIC_2000000_gradcam.png").is_file()
    exported = export_test_part(run, tmp_path / "exported", capsys)
    assert exported.layout == "isic2020" and exported.classes == ["benign", "mel"]
    test_ids = set(pd.read_csv(run / "split.csv", dtype=str).query("subset == 'test'")
                   ["image_id"])
    assert set(exported.records["image_id"]) == test_ids and exported.problems == []
    original = dataset.records.set_index("image_id").loc[sorted(test_ids)]
    again = exported.records.set_index("image_id").loc[sorted(test_ids)]
    assert (again["patient_id"] == original["patient_id"]).all()
    assert (again["dx"] == original["dx"]).all()


def test_a_2019_folder_with_an_unk_row_and_a_missing_image_lists_one_line_each(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = make_isic2019(tmp_path / "isic2019", per_class=2)
    truth = data / GT_2019
    unk = ",".join(["ISIC_0009998", *("1.0" if h == "UNK" else "0.0" for h in ORDER_2019)])
    gone = ",".join(["ISIC_0009999", *("1.0" if h == "SCC" else "0.0" for h in ORDER_2019)])
    truth.write_text(truth.read_text() + f"{unk}\n{gone}\n")
    meta = data / META_2019
    meta.write_text(meta.read_text() + "ISIC_0009998,50.0,head/neck,,male\n"
                    "ISIC_0009999,60.0,head/neck,BCN_x,female\n")
    make_image(data / "ISIC_2019_Training_Input" / "ISIC_0009998.jpg", (90, 90, 90))
    assert main(["data", "summary", "--data", str(data)]) == 0
    lines = [line.strip() for line in capsys.readouterr().out.splitlines()]
    problems = lines[lines.index("problems:") + 1:]
    assert problems == [
        "unknown-label: row 18: 'ISIC_0009998' UNK: the unknown class has no training "
        "images; left out",
        "missing-image: ISIC_0009999 listed in ISIC_2019_Training_GroundTruth.csv",
    ]


def test_2019_ground_truth_without_metadata_is_read_with_one_problem(tmp_path: Path) -> None:
    data = make_isic2019(tmp_path / "isic2019", per_class=2)
    (data / META_2019).unlink()
    dataset = load_dataset(data)
    assert [p.kind for p in dataset.problems] == ["missing-metadata"]
    assert dataset.records["lesion_id"].tolist() == dataset.records["image_id"].tolist()
    (data / GT_2019).unlink()
    meta_only = make_isic2019(tmp_path / "meta-only", per_class=2)
    (meta_only / GT_2019).unlink()
    with pytest.raises(DatasetError, match="ISIC 2019 metadata, but its ground truth"):
        load_dataset(meta_only)


def test_class_folders_named_for_2019_classes_keep_every_class(tmp_path: Path) -> None:
    for k, c in enumerate(("ak", "mel", "scc")):
        make_image(tmp_path / "folder" / c / f"{c}.png", COLOURS[c], seed=k)
    assert load_dataset(tmp_path / "folder").classes == ["ak", "mel", "scc"]


def test_split_groups_by_patient_and_by_lesion_where_the_patient_is_unknown() -> None:
    n = 120
    records = pd.DataFrame({
        "image_id": [f"i{i}" for i in range(n)], "lesion_id": [f"l{i // 2}" for i in range(n)],
        "dx": ["mel" if i % 4 == 0 else "benign" for i in range(n)],
        "patient_id": [f"p{i // 6}" if i < 96 else "" for i in range(n)]})
    subset = split_lesion(records, seed=3)
    by_patient = records[records["patient_id"] != ""].assign(s=subset).groupby("patient_id")
    assert (by_patient["s"].nunique() == 1).all()
    by_lesion = records.assign(s=subset).groupby("lesion_id")
    assert (by_lesion["s"].nunique() == 1).all()
    assert set(subset) == {"train", "val", "test"}
