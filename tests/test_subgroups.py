"""Subgroup metrics (issue #21): per sex, age band, site and confirmation, with lesion CIs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.classes import HAM10000_CLASSES
from core.metrics import balanced_accuracy_ci, compute_metrics
from core.subgroups import (
    METRICS,
    age_band,
    cell,
    group_labels,
    subgroup_lines,
    subgroup_metrics,
)

CLASSES = list(HAM10000_CLASSES)
MEL = CLASSES.index("mel")


def one_hot_proba(predicted: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Probabilities whose argmax is `predicted`, with some spread (no ties)."""
    proba = rng.uniform(0.0, 0.1, (len(predicted), len(CLASSES)))
    proba[np.arange(len(predicted)), predicted] += 0.5
    return proba / proba.sum(axis=1, keepdims=True)


def data(n: int = 280, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels over all classes, random predictions, two images per lesion."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) // 2 % len(CLASSES)
    proba = one_hot_proba(rng.integers(0, len(CLASSES), n), rng)
    return y, proba, np.array([f"L{i // 2}" for i in range(n)])


def row_of(rows: list[dict], column: str, group: str) -> dict:
    return next(r for r in rows if r["column"] == column and r["group"] == group)


def test_perfect_on_women_random_on_men_names_women_in_the_gap_sentence() -> None:
    rng = np.random.default_rng(1)
    y, proba, lesions = data(300)
    female = np.arange(300) < 70  # the model is right on every woman, at chance on the men
    proba[female] = one_hot_proba(y[female], rng)
    records = pd.DataFrame({"sex": np.where(female, "female", "male")})
    result = subgroup_metrics(y, proba, CLASSES, lesions, records)
    rows = result["subgroups"]
    assert [(r["column"], r["group"]) for r in rows] == \
        [("all", "all images"), ("sex", "male"), ("sex", "female")]
    women = row_of(rows, "sex", "female")
    assert women["balanced_accuracy"] == 1.0 and women["macro_auc"] == 1.0
    assert row_of(rows, "sex", "male")["balanced_accuracy"] < 0.4
    gap = result["largest_subgroup_gap"]
    words = {words: key for key, words, _ in METRICS}
    found = re.fullmatch(r"(.+) 1\.00 in female patients \(95% CI 1\.00-1\.00, \d+ "
                         r"(images|melanomas)\) against (0\.\d\d) overall", gap)
    assert found is not None, gap
    assert found[3] == f"{rows[0][words[found[1]]]:.2f}"  # the same metric, overall
    json.dumps(result)  # the CLI's --json and metrics.json carry it as it is


def test_a_subgroup_of_three_images_gives_a_reason_not_a_number() -> None:
    y, proba, lesions = data(60)
    records = pd.DataFrame({"localization": ["ear"] * 3 + ["back"] * 57})
    rows = subgroup_metrics(y, proba, CLASSES, lesions, records)["subgroups"]
    ear = row_of(rows, "localization", "ear")
    assert (ear["n_images"], ear["n_lesions"]) == (3, 2)
    for key, _, _ in METRICS:
        assert ear[key] is None and ear[f"{key}_ci95"] is None
        assert ear[f"{key}_reason"] == "too few images (3; needs 10)"
        assert cell(ear, key) == ("too few", "too few images (3; needs 10)")
    back = row_of(rows, "localization", "back")
    assert back["balanced_accuracy"] is not None and back["balanced_accuracy_reason"] is None
    assert "ear" not in (subgroup_metrics(y, proba, CLASSES, lesions, records)
                         ["largest_subgroup_gap"] or "")  # only defined metrics compete


def test_melanoma_recall_needs_five_melanomas_and_bmca_two_classes() -> None:
    y, proba, lesions = data(140)
    mel_images = np.flatnonzero(y == MEL)
    site = np.full(140, "back", dtype=object)
    site[mel_images[:-2]] = "trunk"  # the face keeps two melanomas among nevi
    face = np.flatnonzero(y == CLASSES.index("nv"))[:12]
    site[face] = "face"
    site[mel_images[-2:]] = "face"
    rows = subgroup_metrics(y, proba, CLASSES, lesions,
                            pd.DataFrame({"localization": site}))["subgroups"]
    on_face = row_of(rows, "localization", "face")
    assert on_face["n_melanomas"] == 2
    assert on_face["melanoma_recall"] is None
    assert on_face["melanoma_recall_reason"] == "too few melanomas (2; needs 5)"
    assert on_face["balanced_accuracy"] is not None  # 14 images of two classes
    trunk = row_of(rows, "localization", "trunk")  # melanomas only: one class
    assert trunk["balanced_accuracy_reason"] == "one class only (mel)"
    assert trunk["macro_auc_reason"] == "one class only (mel)"
    assert trunk["melanoma_recall"] is not None
    assert cell(trunk, "balanced_accuracy")[0] == "one class"


def test_age_bands_at_their_boundaries() -> None:
    ages = [29, 30, 49, 50, 69, 70, float("nan"), None, 0, 85]
    assert [age_band(a) for a in ages] == \
        ["<30", "30-49", "30-49", "50-69", "50-69", "70+", "unknown", "unknown", "<30", "70+"]
    records = pd.DataFrame({"age": ["29.0", "30", "49", "50", "69", "70", "", "85"]})
    assert list(group_labels(records)["age"]) == \
        ["<30", "30-49", "30-49", "50-69", "50-69", "70+", "unknown", "70+"]


def test_each_ci_contains_its_point_estimate_and_the_overall_row_matches() -> None:
    rng = np.random.default_rng(3)
    y, proba, lesions = data(400, seed=3)
    proba = 0.5 * proba + 0.5 * one_hot_proba(y, rng)  # better than chance, not perfect
    records = pd.DataFrame({
        "sex": rng.choice(["male", "female", ""], 400, p=[0.5, 0.45, 0.05]),
        "age": rng.choice([15.0, 35.0, 55.0, 75.0, np.nan], 400),
        "localization": rng.choice(["back", "face", "lower extremity"], 400),
        "dx_type": rng.choice(["histo", "follow_up"], 400)})
    rows = subgroup_metrics(y, proba, CLASSES, lesions, records)["subgroups"]
    assert {r["column"] for r in rows} == {"all", "sex", "age", "localization", "dx_type"}
    assert [r["group"] for r in rows if r["column"] == "age"] == \
        ["<30", "30-49", "50-69", "70+", "unknown"]
    assert row_of(rows, "sex", "unknown")["n_images"] == int((records["sex"] == "").sum())
    checked = 0
    for row in rows:
        for key, _, _ in METRICS:
            if row[key] is not None:
                low, high = row[f"{key}_ci95"]
                assert low <= row[key] + 1e-9 and row[key] <= high + 1e-9, (row, key)
                checked += 1
    assert checked >= 3 * 10
    overall, plain = rows[0], compute_metrics(y, proba, CLASSES)
    for key, _, _ in METRICS:
        assert overall[key] == pytest.approx(plain[key], abs=1e-4)
    expected = balanced_accuracy_ci(y, proba.argmax(axis=1), groups=lesions)
    assert overall["balanced_accuracy_ci95"] == pytest.approx(list(expected), abs=1e-4)
    lines = subgroup_lines({"subgroups": rows, "largest_subgroup_gap": "x"})
    assert len(lines) == 1 + 1 + len(rows) + 1 and lines[-1] == "largest gap: x"


def test_records_without_metadata_give_no_subgroups() -> None:
    y, proba, lesions = data(40)
    empty = pd.DataFrame({"image_id": [f"I{i}" for i in range(40)]})
    assert subgroup_metrics(y, proba, CLASSES, lesions, empty) == \
        {"subgroups": [], "largest_subgroup_gap": None}
    unknown = pd.DataFrame({"sex": ["unknown"] * 40})  # a column with nothing known in it
    assert subgroup_metrics(y, proba, CLASSES, lesions, unknown)["subgroups"] == []
    assert subgroup_lines({"subgroups": []}) == []


def test_the_dataset_keeps_metadata_columns_in_both_csv_layouts(ham_dir: Path,
                                                                 tmp_path: Path) -> None:
    from core.dataset import load_dataset
    from tests.synthetic import make_isic

    records = load_dataset(ham_dir).records
    assert {"sex", "age", "localization", "dx_type"} <= set(records.columns)
    assert records["age"].dtype.kind == "f"
    isic = make_isic(tmp_path / "isic")
    assert "sex" not in load_dataset(isic).records.columns
    truth = next(isic.rglob("*GroundTruth.csv"))
    frame = pd.read_csv(truth)
    frame["sex"] = ["female", "male"] * (len(frame) // 2) + ["male"] * (len(frame) % 2)
    frame["age"] = 40
    frame.to_csv(truth, index=False)
    records = load_dataset(isic).records
    assert list(records["sex"][:2]) == ["female", "male"] and (records["age"] == 40).all()


def test_a_test_part_sized_table_has_a_row_per_group_of_every_column() -> None:
    rng = np.random.default_rng(4)
    y, proba, lesions = data(1431, seed=4)
    records = pd.DataFrame({
        "sex": rng.choice(["male", "female", "unknown"], 1431),
        "age": rng.choice(np.arange(0, 90, 5.0), 1431),
        "localization": rng.choice([f"site {i}" for i in range(15)], 1431),
        "dx_type": rng.choice(["histo", "follow_up", "consensus", "confocal"], 1431)})
    rows = subgroup_metrics(y, proba, CLASSES, lesions, records)["subgroups"]
    assert len(rows) == 1 + 3 + 4 + 15 + 4  # all, sex, age bands, sites, confirmation types
    assert sum(r["n_images"] for r in rows if r["column"] == "localization") == 1431


def test_the_report_has_a_subgroups_section(tmp_path: Path) -> None:
    from core.report import ReportData, render_html, render_pdf

    y, proba, lesions = data(120)
    metrics = compute_metrics(y, proba, CLASSES)
    records = pd.DataFrame({"sex": ["female", "male"] * 60, "localization": ["ear"] * 3
                            + ["back"] * 117})
    metrics.update(subgroup_metrics(y, proba, CLASSES, lesions, records))
    page = render_html(ReportData("Evaluation", metrics))
    assert "<h2>Subgroups</h2>" in page and "Largest gap: " in page
    assert "title='too few images (3; needs 10)'" in page
    assert page.count("<td>female</td>") == 1
    assert "<h2>Subgroups</h2>" not in render_html(ReportData("Evaluation",
                                                              compute_metrics(y, proba, CLASSES)))
    render_pdf(ReportData("Evaluation", metrics), tmp_path / "report.pdf")
    assert (tmp_path / "report.pdf").stat().st_size > 1000


def test_evaluate_carries_subgroups_and_the_cli_prints_them(tiny_model: Path, ham_dir: Path,
                                                            capsys: pytest.CaptureFixture
                                                            ) -> None:
    from core.cli import main

    assert main(["evaluate", "--model", str(tiny_model), "--data", str(ham_dir),
                 "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    groups = [(r["column"], r["group"]) for r in metrics["subgroups"]]
    # make_ham: sex by image number, ages 30-71, everything on the back and histology-confirmed
    assert groups == [("all", "all images"), ("sex", "male"), ("sex", "female"),
                      ("age", "30-49"), ("age", "50-69"), ("age", "70+"),
                      ("localization", "back"), ("dx_type", "histo")]
    assert "largest_subgroup_gap" in metrics
    run = json.loads((tiny_model.parent / "metrics.json").read_text())  # its test part
    assert run["subgroups"][0]["n_images"] == run["n_images"] and len(run["subgroups"]) > 1
    assert main(["evaluate", "--model", str(tiny_model), "--data", str(ham_dir)]) == 0
    text = capsys.readouterr().out
    assert "subgroups (95% CI, lesions resampled" in text
    assert "confirmation  histo" in text
