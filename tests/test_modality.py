"""The app-wide modality check: clinical photos and slides are refused, with the reason,
through the CLI and in Classify; dermoscopic images are not; LiteRT and Keras agree."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from core import negatives, refusal
from core.cli import main
from core.modality import MODALITY_MODEL, ModalityCheck
from tests.conftest import SHARED
from tests.gui_helpers import drop_files


def held_out_file(folder: str) -> Path:
    """A file of a shared negative folder that the check was never fitted or tuned on."""
    root = SHARED / folder
    files = [p for p in sorted(root.glob("*.jpg")) if negatives.folder_part(p.name) == "test"]
    if not files:
        pytest.skip(f"{root} not found (only CI and dev machines have it)")
    return files[0]


def dermoscopic_file() -> Path:
    files = sorted((SHARED / "ph2" / "images").glob("*.jpg"))
    if not files:
        pytest.skip(f"{SHARED / 'ph2'} not found (only CI and dev machines have it)")
    return files[0]


@pytest.fixture()
def slide(tmp_path: Path) -> Path:
    """A synthetic H&E-like histology tile."""
    path = tmp_path / "slide.png"
    Image.fromarray(negatives.make("histology (H&E-like)", 1, 224, seed=7)[0]).save(path)
    return path


def test_the_check_ships_and_both_runtimes_agree() -> None:
    assert MODALITY_MODEL.is_file() and MODALITY_MODEL.with_suffix(".tflite").is_file()
    litert, keras = ModalityCheck(runtime="litert"), ModalityCheck(runtime="keras")
    assert (litert.runtime, keras.runtime) == ("LiteRT", "Keras")
    rng = np.random.default_rng(0)
    images = np.stack([negatives.KINDS[k](rng, litert.size) for k in negatives.KINDS])
    np.testing.assert_allclose(litert.probabilities(images), keras.probabilities(images),
                               atol=1e-4)
    assert litert.assess(images).labels == keras.assess(images).labels


def test_colour_constancy_greys_a_colour_cast_as_its_reference_does(tmp_path: Path) -> None:
    """The optional first layer (tools/train_modality.py --colour-constancy) undoes a colour
    cast, agrees with the NumPy arithmetic the training tool uses, and loads in safe mode."""
    from core.backend import keras
    from core.modality import colour_constancy_class, shades_of_grey

    k = keras()
    inputs = k.Input((16, 16, 3))
    model = k.Model(inputs, colour_constancy_class()(name="sog")(inputs))
    model.save(tmp_path / "sog.keras")
    loaded = k.saving.load_model(tmp_path / "sog.keras", safe_mode=True)
    grey = np.random.default_rng(0).integers(60, 200, (2, 16, 16, 1)).repeat(3, axis=-1)
    cast = np.clip(grey * np.array([1.3, 1.0, 0.7]), 0, 255).astype(np.uint8)
    out = np.asarray(loaded(cast.astype(np.float32)))
    assert np.abs(out - shades_of_grey(cast)).max() <= 1.0  # the reference rounds down
    channel_means = out.mean(axis=(1, 2))
    assert np.ptp(channel_means, axis=1).max() < 0.05 * channel_means.mean()
    assert np.ptp(cast.mean(axis=(1, 2)), axis=1).min() > 0.3 * cast.mean()


def test_a_damaged_twin_is_not_trusted(tmp_path: Path) -> None:
    copy = tmp_path / "modality.keras"
    copy.write_bytes(MODALITY_MODEL.read_bytes())
    copy.with_suffix(".tflite").write_bytes(b"not a flatbuffer")
    assert ModalityCheck(copy).runtime == "Keras"
    from core.errors import ModelError

    with pytest.raises(ModelError, match="missing, damaged"):
        ModalityCheck(copy, runtime="litert")


def test_cli_refuses_a_slide_as_not_skin(slide: Path, modality_check_on: None,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", str(slide), "--json"]) == 0
    [p] = json.loads(capsys.readouterr().out)
    assert p["modality"] == "other" and p["refusal"] == refusal.OTHER
    assert p["in_domain"] is False and p["modality_score"] < 0.05
    assert main(["predict", str(slide)]) == 0
    assert refusal.TEXT[refusal.OTHER] in capsys.readouterr().out


@pytest.mark.realdata
def test_cli_refuses_a_clinical_photo_and_answers_a_dermoscopic_image(
        modality_check_on: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photo, lesion = held_out_file("clinical-photos"), dermoscopic_file()
    csv = tmp_path / "out.csv"
    assert main(["predict", str(photo), str(lesion), "--json", "--csv", str(csv)]) == 0
    clinical, dermoscopic = json.loads(capsys.readouterr().out)
    assert clinical["modality"] == "clinical" and clinical["refusal"] == refusal.CLINICAL
    assert clinical["in_domain"] is False
    assert dermoscopic["modality"] == "dermoscopic" and dermoscopic["modality_score"] > 0.5
    import pandas as pd

    rows = pd.read_csv(csv)
    assert list(rows["modality"]) == ["clinical", "dermoscopic"]
    assert rows.loc[0, "refusal"] == "clinical" and not rows.loc[0, "in_domain"]
    assert main(["predict", str(photo), "--no-modality-check", "--json"]) == 0
    [unchecked] = json.loads(capsys.readouterr().out)
    assert unchecked["modality"] is None and unchecked["refusal"] != refusal.CLINICAL


@pytest.fixture()
def window(qtbot, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The app's main window, shown, with the modality check on."""
    from PySide6.QtWidgets import QMessageBox

    from gui.main_window import MainWindow

    monkeypatch.delenv("SKIN_LESION_MODALITY_CHECK", raising=False)
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    yield win
    win.tasks.stop_all()


@pytest.mark.realdata
def test_classify_names_the_reason(qtbot, window: Any, slide: Path) -> None:
    from core.paths import BUNDLED_MODEL

    with qtbot.waitSignal(window.models_view.active_changed, timeout=60000):
        window.models_view.activate(BUNDLED_MODEL)
    view = window.classify_view
    window.tabs.setCurrentWidget(view)
    photo, lesion = held_out_file("clinical-photos"), dermoscopic_file()
    drop_files(view, [photo, slide, lesion])
    qtbot.waitUntil(lambda: view.table.rowCount() == 3, timeout=60000)
    assert [view.table.item(r, 3).text() for r in range(2)] == ["clinical photo", "other image"]
    assert view.refusal.isVisible() and view.refusal.text() == refusal.TEXT[refusal.CLINICAL]
    assert view.bar_count() == 0
    view.table.selectRow(1)
    assert view.refusal.text() == refusal.TEXT[refusal.OTHER]
    view.table.selectRow(2)
    assert view.table.item(2, 1).text() != "not classified"
    assert not view.refusal.isVisible() and view.bar_count() == 7


@pytest.fixture()
def mixed_dataset(tmp_path: Path) -> Path:
    """A HAM10000-layout folder: three real dermoscopic images and one clinical photo."""
    import shutil

    meta = SHARED / "ham10000" / "HAM10000_metadata.csv"
    if not meta.is_file():
        pytest.skip(f"{meta} not found (only CI and dev machines have it)")
    root = tmp_path / "mixed"
    part = root / "HAM10000_images_part_1"
    part.mkdir(parents=True)
    rows = ["lesion_id,image_id,dx,dx_type,age,sex,localization"]
    for i, image_id in enumerate(("ISIC_0024306", "ISIC_0024307", "ISIC_0024308")):
        shutil.copy(SHARED / "ham10000" / "HAM10000_images_part_1" / f"{image_id}.jpg", part)
        rows.append(f"HAM_{i},{image_id},nv,follow_up,50,male,back")
    shutil.copy(held_out_file("clinical-photos"), part / "ISIC_9999999.jpg")
    rows.append("HAM_9,ISIC_9999999,mel,histo,60,female,face")
    (root / "HAM10000_metadata.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.mark.realdata
def test_data_summary_flags_the_clinical_photo(mixed_dataset: Path, modality_check_on: None,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "summary", "--data", str(mixed_dataset), "--json"]) == 0
    [flagged] = json.loads(capsys.readouterr().out)["not_dermoscopic"]
    assert (flagged["image_id"], flagged["dx"], flagged["modality"]) == (
        "ISIC_9999999", "mel", "clinical")
    assert main(["data", "summary", "--data", str(mixed_dataset)]) == 0
    assert "dataset health: 1 image does not look dermoscopic" in capsys.readouterr().out


@pytest.mark.realdata
def test_dataset_view_flags_the_clinical_photo_and_shows_it(qtbot, window: Any,
                                                            mixed_dataset: Path) -> None:
    health = window.dataset_view.health
    window.open_dataset(str(mixed_dataset))
    qtbot.waitUntil(lambda: health.line.text().startswith("⚠"), timeout=60000)
    assert "1 image does not look dermoscopic" in health.line.text()
    health.line.linkActivated.emit("show")
    assert window.dataset_view.tabs.currentWidget() is health
    assert health.list.count() == 1
    assert health.list.item(0).text().startswith("ISIC_9999999 (mel): clinical photo")
    health.list.itemDoubleClicked.emit(health.list.item(0))
    assert window.tabs.currentWidget() is window.classify_view
