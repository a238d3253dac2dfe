"""Similar cases: the training images nearest to an image, in the CLI, the GUI and the
bundled model's shipped index."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.classes import HAM10000_CLASSES
from core.dataset import load_dataset
from core.errors import ModelError
from core.model_io import read_training_ids
from core.paths import BUNDLED_MODEL
from core.similar import (
    SimilarCase,
    fit_index,
    index_path,
    load_index,
    model_sha,
    similar_to_files,
)

BUNDLED_INDEX = index_path(BUNDLED_MODEL)


@pytest.fixture()
def run_model(tiny_model: Path, tmp_path: Path) -> Path:
    """A copy of the tiny trained run without an index (one is built and cached in the copy,
    not in the shared run, which other tests may already have indexed)."""
    shutil.copytree(tiny_model.parent, tmp_path / "run")
    index_path(tmp_path / "run" / "model.keras").unlink(missing_ok=True)
    return tmp_path / "run" / "model.keras"


def training_files(model: Path, data: Path, n: int = 2) -> list[str]:
    """Paths of the first `n` images the model was trained on."""
    ids = read_training_ids(model) or frozenset()
    records = load_dataset(data).records
    return list(records[records["image_id"].isin(ids)].sort_values("image_id")["path"][:n])


def flat_image(path: Path) -> Path:
    """A flat grey picture: the tiny model's gate refuses it."""
    Image.fromarray(np.full((150, 200, 3), 128, np.uint8)).save(path)
    return path


def test_a_runs_training_image_is_its_own_nearest_case(run_model: Path, ham_dir: Path) -> None:
    from core.inference import resolve_model

    model = resolve_model(run_model, "auto")
    files = training_files(run_model, ham_dir)
    seen: list[tuple[int, int]] = []
    notes: list[str] = []
    found = similar_to_files(model, files, 6, on_progress=lambda d, t: seen.append((d, t)),
                             status=notes.append)
    n_train = len(model.training_ids or ())
    assert seen and seen[-1] == (n_train, n_train)  # indexed on first request, with progress
    assert any("Indexing the training images" in note for note in notes)
    for file, cases in zip(files, found, strict=True):
        assert len(cases) == 6 and all(isinstance(c, SimilarCase) for c in cases)
        assert cases[0].image_id == Path(file).stem
        assert cases[0].similarity == pytest.approx(1.0, abs=1e-3)
        assert cases[0].path == file  # the run's own data folder gives the paths
        assert [c.similarity for c in cases] == sorted((c.similarity for c in cases),
                                                       reverse=True)
        assert {c.dx for c in cases} <= set(HAM10000_CLASSES)
    # cached in the run folder, for this model file, with ids and no paths
    index = load_index(index_path(run_model), model_sha(run_model))
    assert len(index) == n_train and not any("/" in i for i in index.image_ids)


def test_a_stale_run_index_is_rebuilt(run_model: Path, ham_dir: Path) -> None:
    from core.inference import resolve_model

    model = resolve_model(run_model, "auto")
    fit_index(np.eye(3), ["a", "b", "c"], ["nv"] * 3, "0" * 64).save(index_path(run_model))
    notes: list[str] = []
    [cases] = similar_to_files(model, training_files(run_model, ham_dir, 1), 2,
                               status=notes.append)
    assert any("built for another model" in n and "rebuilding" in n for n in notes)
    assert len(cases) == 2
    assert load_index(index_path(run_model), model_sha(run_model)).model_sha256 != "0" * 64


def test_predict_json_similar_lists_k_cases_and_none_for_a_refused_image(
        run_model: Path, ham_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from core.cli import main

    [image] = training_files(run_model, ham_dir, 1)
    flat = flat_image(tmp_path / "flat.png")
    assert main(["predict", "--model", str(run_model), image, str(flat), "--json",
                 "--similar", "3"]) == 0
    accepted, refused = json.loads(capsys.readouterr().out)
    assert accepted["in_domain"] is True and len(accepted["similar"]) == 3
    for case in accepted["similar"]:
        assert set(case) == {"image_id", "dx", "similarity", "path"}
        assert case["dx"] in HAM10000_CLASSES and -1.0 <= case["similarity"] <= 1.0
        assert Path(case["path"]).stem == case["image_id"]
    assert accepted["similar"][0]["image_id"] == Path(image).stem
    assert refused["in_domain"] is False and refused["similar"] == []


def test_a_stale_index_of_a_shipped_model_is_refused_with_a_clear_message(
        tiny_model: Path, ham_dir: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture) -> None:
    from core.cli import main
    from core.inference import resolve_model

    model_file = tmp_path / "shipped" / "model.keras"  # not a run folder: nothing to rebuild
    model_file.parent.mkdir()
    shutil.copy(tiny_model, model_file)
    [image] = training_files(tiny_model, ham_dir, 1)
    model = resolve_model(model_file, "keras")
    with pytest.raises(ModelError, match="has no similar-cases index"):
        similar_to_files(model, [image], 3)
    fit_index(np.eye(3), ["a", "b", "c"], ["nv"] * 3, "f" * 64).save(index_path(model_file))
    with pytest.raises(ModelError, match=r"model\.similar\.npz was built for another model "
                                         r"\(SHA-256 ffffffffffff….*not used"):
        similar_to_files(model, [image], 3)
    assert main(["predict", "--model", str(model_file), image, "--similar", "3",
                 "--runtime", "keras"]) == 2
    assert "error: model.similar.npz was built for another model" in capsys.readouterr().err


def test_the_bundled_index_matches_the_bundled_model_and_is_small() -> None:
    index = load_index(BUNDLED_INDEX, model_sha(BUNDLED_MODEL))  # raises when stale
    assert BUNDLED_INDEX.stat().st_size <= 10 * 1024 * 1024
    trained_on = read_training_ids(BUNDLED_MODEL) or frozenset()
    assert len(index) >= 0.99 * len(trained_on) and set(index.image_ids) <= trained_on
    assert set(index.dx) == set(HAM10000_CLASSES)
    assert index.vectors.dtype == np.float16 and index.vectors.shape[1] <= 128
    norms = np.linalg.norm(index.vectors.astype(np.float32), axis=1)
    assert np.allclose(norms, 1.0, atol=1e-2)
    assert "CC BY-NC 4.0" in index.source


def test_a_ham10000_training_image_finds_itself_in_the_bundled_index(real_ham: Path) -> None:
    from core.inference import resolve_model

    model = resolve_model(None, "auto")
    files = training_files(BUNDLED_MODEL, real_ham, 3)
    for file, cases in zip(files, similar_to_files(model, files, 6, data_dir=real_ham),
                           strict=True):
        assert cases[0].image_id == Path(file).stem
        assert cases[0].similarity == pytest.approx(1.0, abs=1e-2)
        assert cases[0].path is not None and Path(cases[0].path).is_file()
        assert len(cases) == 6 and cases[5].similarity < cases[0].similarity


def test_classify_shows_six_similar_cases_and_hides_them_for_a_refused_image(
        qtbot, run_model: Path, ham_dir: Path, tmp_path: Path) -> None:
    from PySide6.QtWidgets import QApplication

    from gui.main_window import MainWindow
    from tests.gui_helpers import cut_off, drop_files

    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    try:
        with qtbot.waitSignal(window.models_view.active_changed, timeout=60000):
            window.models_view.activate(run_model)
        view = window.classify_view
        window.tabs.setCurrentWidget(view)
        [image] = training_files(run_model, ham_dir, 1)
        drop_files(view, [flat_image(tmp_path / "flat.png"), Path(image)])
        qtbot.waitUntil(lambda: view.table.rowCount() == 2, timeout=30000)
        assert view.refusal.isVisible() and not view.similar.isVisible()  # refused: none
        view.table.selectRow(1)
        panel = view.similar
        qtbot.waitUntil(lambda: len(panel.tiles) == 6, timeout=60000)
        assert panel.isVisible()
        texts = panel.item_texts()
        assert all(t.split(" · ")[0] in HAM10000_CLASSES for t in texts)
        assert panel.cases[0].image_id == Path(image).stem and texts[0].endswith("1.00")
        assert not panel.tiles[0].icon().isNull()  # the run's data folder: thumbnails
        window.resize(1024, 700)  # the smallest size the app supports: nothing cut
        for _ in range(3):
            QApplication.processEvents()
        assert window.width() <= 1024 and window.height() <= 700
        assert cut_off(window) == [] and panel.isVisible()
        dialog = panel.enlarge(panel.cases[0])
        assert not dialog.image.pixmap().isNull()
        assert panel.cases[0].image_id in dialog.caption.text()
        dialog.close()
        view.table.selectRow(0)
        assert not panel.isVisible()
    finally:
        window.tasks.stop_all()


def test_without_the_dataset_folder_the_panel_shows_id_cards(qtbot) -> None:
    from gui.similar_cases import NO_FOLDER, SimilarCasesPanel
    from gui.task_functions import SimilarResult

    panel = SimilarCasesPanel()
    qtbot.addWidget(panel)
    panel.show()
    panel.request("query.jpg")
    cases = [SimilarCase(f"ISIC_{n:07d}", "mel", 0.9 - n / 10, None) for n in range(3)]
    panel.show_cases(SimilarResult("query.jpg", cases, [None] * 3, False))
    assert panel.item_texts() == ["ISIC_0000000\nmel · 0.90", "ISIC_0000001\nmel · 0.80",
                                  "ISIC_0000002\nmel · 0.70"]
    assert NO_FOLDER in panel.note.text()
    dialog = panel.enlarge(cases[1])
    assert NO_FOLDER in dialog.image.text() and "ISIC_0000001" in dialog.caption.text()
    dialog.close()
    panel.hide_panel()
    assert not panel.isVisible() and panel.tiles == []
