"""What a user sees of the trust features from the command line: gate, seen images, report."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.cli import main
from tests.synthetic import CLASS_COLOURS, make_image, make_isic


def training_ids(run_dir: Path) -> set[str]:
    import pandas as pd

    split = pd.read_csv(run_dir / "split.csv", dtype=str)
    return set(split.loc[split["subset"] == "train", "image_id"])


def test_evaluating_on_training_images_says_they_inflate_the_scores(
        tiny_model: Path, ham_dir: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    trained = training_ids(tiny_model.parent)
    assert main(["evaluate", "--model", str(tiny_model), "--data", str(ham_dir), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["seen_in_training"] == len(trained) > 0
    assert metrics["ci_unit"] == "lesion"  # two images per lesion in this set
    assert main(["evaluate", "--model", str(tiny_model), "--data", str(ham_dir)]) == 0
    assert (f"warning: {len(trained)} of these images were used to train this model; its "
            "scores here are inflated") in capsys.readouterr().out
    other = make_isic(tmp_path / "isic")  # other image ids, one image per lesion
    assert main(["evaluate", "--model", str(tiny_model), "--data", str(other), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["seen_in_training"] == 0 and metrics["ci_unit"] == "image"
    assert metrics["out_of_domain"] == 0  # the same kind of images as its training ones


def test_predict_refuses_a_flat_image_and_diagnoses_a_lesion_like_one(
        tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lesion = make_image(tmp_path / "lesion.jpg", CLASS_COLOURS["mel"], size=(20, 15))
    flat = tmp_path / "flat.png"
    Image.fromarray(np.full((15, 20, 3), 128, np.uint8)).save(flat)
    assert main(["predict", "--model", str(tiny_model), str(lesion), str(flat), "--json"]) == 0
    rows = {Path(r["path"]).name: r for r in json.loads(capsys.readouterr().out)}
    assert rows["lesion.jpg"]["in_domain"] is True
    assert rows["flat.png"]["in_domain"] is False
    assert rows["flat.png"]["domain_score"] > 1.0 >= rows["lesion.jpg"]["domain_score"]
    assert main(["predict", "--model", str(tiny_model), str(lesion), str(flat)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "no diagnosis is shown" in out[1]
    assert "flat.png: refused, unfamiliar to the model (score" in out[1]
    assert "[familiar to the model (score" in out[0]


def test_a_model_file_without_a_gate_still_predicts_with_a_notice(
        tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from core.model_io import load_model, save_model

    loaded = load_model(tiny_model)
    old = save_model(loaded.model, tmp_path / "old.keras", loaded.info)  # no gate, no ids
    image = make_image(tmp_path / "x.jpg", CLASS_COLOURS["nv"])
    assert main(["predict", "--model", str(old), str(image), "--json"]) == 0
    captured = capsys.readouterr()
    [row] = json.loads(captured.out)
    assert row["in_domain"] is None and row["domain_score"] is None and row["label"]
    assert captured.err.count("no familiarity gate") == 1


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.images: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs).get("alt") or "")


def test_report_writes_html_with_inline_figures_and_a_pdf_with_pages(
        tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    html_path, pdf_path = tmp_path / "report.html", tmp_path / "report.pdf"
    assert main(["report", str(tiny_model.parent), "--out", str(html_path), "--pdf",
                 str(pdf_path)]) == 0
    text = html_path.read_text(encoding="utf-8")
    parser = _Tags()
    parser.feed(text)
    assert parser.images == ["Training curves", "Confusion matrix (rows: true class)",
                             "ROC curves (one class vs. the rest)", "Reliability diagram"]
    assert "src='data:image/png;base64," in text and "http" not in text.split("<body>")[1]
    assert "Research software, not a medical device" in text
    assert "Refused by the out-of-distribution gate" in text
    assert "bootstrap over lesions" in text  # two images per lesion in this set
    data = pdf_path.read_bytes()
    assert data.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page(?!s)", data)) >= 4


def test_report_of_a_folder_that_is_not_a_run_fails_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == (f"error: {tmp_path} is not a finished training "
                                               "run (no metrics.json)")


def test_predict_on_a_folder_writes_a_csv_row_per_image_with_a_broken_one(
        tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import csv

    folder = tmp_path / "photos"
    make_image(folder / "b" / "two.png", CLASS_COLOURS["nv"])
    make_image(folder / "a.jpg", CLASS_COLOURS["mel"])
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    (folder / "notes.txt").write_text("not an image, not listed")
    out = tmp_path / "out.csv"
    assert main(["predict", "--model", str(tiny_model), str(folder), "--csv", str(out)]) == 1
    capsys.readouterr()
    rows = list(csv.DictReader(out.open()))
    assert [Path(r["path"]).relative_to(folder).as_posix() for r in rows] == [
        "a.jpg", "b/two.png", "broken.jpg"]  # recursive, images only, sorted
    header = list(rows[0])
    assert header == ["path", "label", "confidence", "in_domain", "domain_score", "modality",
                      "modality_score", "refusal", "akiec", "bcc", "bkl", "df", "mel", "nv",
                      "vasc", "error"]
    good = rows[0]
    assert good["label"] in header and good["in_domain"] == "true" and good["error"] == ""
    assert good["modality"] == "" and good["refusal"] == ""  # the check is off in this test
    assert abs(sum(float(good[c]) for c in header[8:15]) - 1) < 1e-4
    assert rows[2]["label"] == "" and "not an image" in rows[2]["error"]
