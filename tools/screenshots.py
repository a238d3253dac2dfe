"""Drive the real app window under X (e.g. Xvfb) and screenshot every view.

    Xvfb :99 -screen 0 1280x900x24 &
    DISPLAY=:99 SKIN_LESION_HOME=$(mktemp -d) .venv/bin/python tools/screenshots.py \
        --data ../shared/datasets/ham10000 --out docs/screenshots --photo astronaut.png

Screenshots are taken of the whole X screen with ImageMagick's `import -window root`, i.e.
what a user sees. A short CNN run (3 epochs) provides the Train and Evaluate content.

    ... tools/screenshots.py --refusals CLINICAL.jpg SLIDE.png UNFAMILIAR.jpg --out DIR

takes only the three refusal messages (a clinical photo, a slide, a dermoscopic image unlike
the model's training images), at the default size and at 1024x700.

    ... tools/screenshots.py --theme dark --quick --data ../shared/datasets/ham10000 --out DIR

`--theme light|dark` forces a theme (default: the desktop's) and ends each name with
`-light` or `-dark`; `--quick` takes only Train (a short run) and Classify (one image), at the
default size and at 1024x700 (cropped to the window), and Grad-CAM and Evaluate.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtWidgets import QApplication  # noqa: E402

from core.paths import BUNDLED_MODEL  # noqa: E402
from gui.main_window import MainWindow  # noqa: E402


def wait(app: QApplication, condition: Callable[[], bool], timeout: float = 600) -> None:
    """Process events until `condition()` holds."""
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("the app did not reach the expected state in time")
        app.processEvents()
        time.sleep(0.02)


def settle(app: QApplication, seconds: float = 1.0) -> None:
    """Let the window repaint."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


NAME_SUFFIX = {"name": ""}  # '-dark' or '-light' under --theme


def shot(app: QApplication, out: Path, name: str, crop: tuple[int, int] | None = None) -> None:
    """Save the X screen (its top left `crop` (width, height) only, if given) as
    OUT/NAME.png."""
    settle(app)
    path = out / f"{name}{NAME_SUFFIX['name']}.png"
    cut = ["-crop", f"{crop[0]}x{crop[1]}+0+0", "+repage"] if crop else []
    subprocess.run(["import", "-window", "root", *cut, str(path)], check=True)
    print(f"saved {path}", flush=True)


def quick_shots(app: QApplication, win: MainWindow, out: Path, data: Path,
                epochs: int) -> None:
    """Train (a short CNN run, finished) and Classify (one image), at 1280x880 and at
    1024x700; then the run's confusion matrix and a Grad-CAM overlay at 1280x880."""
    win.open_dataset(str(data))  # as given: no machine path in the shots
    wait(app, lambda: win.train_view.dataset != "")
    view = win.train_view
    win.tabs.setCurrentWidget(view)
    view.settings.model_box.setCurrentIndex(view.settings.model_box.findData("cnn"))
    view.settings.epochs_spin.setValue(epochs)
    view.start_clicked()
    wait(app, lambda: view.epoch_bar.value() >= 1, timeout=1800)
    wait(app, lambda: not view.is_running(), timeout=1800)
    view.runs.table.selectRow(0)
    wait(app, lambda: win.models.active() is not None, timeout=120)
    win.tabs.setCurrentWidget(win.classify_view)
    win.classify_view.request([str(sorted(data.rglob("*.jpg"))[0])])
    wait(app, lambda: win.classify_view.result_label.text() != "", timeout=120)
    wait(app, lambda: bool(win.classify_view.similar.cases), timeout=600)
    for (width, height), suffix in (((1280, 880), ""), ((1024, 700), "-1024x700")):
        win.setGeometry(0, 0, width, height)
        crop = (width, height) if suffix else None
        win.tabs.setCurrentWidget(view)
        shot(app, out, f"train-finished{suffix}", crop)
        win.tabs.setCurrentWidget(win.classify_view)
        shot(app, out, f"classify-one{suffix}", crop)
    win.setGeometry(0, 0, 1280, 880)
    panel = win.classify_view.image_panel
    panel.gradcam_check.setChecked(True)
    wait(app, lambda: panel.heatmap is not None, timeout=300)
    shot(app, out, "classify-gradcam")
    view.runs.open_selected()
    win.evaluate_view.matrix.click_cell(0, 1)
    shot(app, out, "evaluate-confusion")


def subgroup_shots(app: QApplication, win: MainWindow, out: Path, folder: Path) -> None:
    """The bundled model evaluated on `folder` (e.g. its exported test part), Evaluate's
    Subgroups tab, at 1280x880 and at 1024x700."""
    if BUNDLED_MODEL.is_file():
        win.models_view.activate(BUNDLED_MODEL)
        wait(app, lambda: win.models.active_path() == BUNDLED_MODEL, timeout=120)
    ev = win.evaluate_view
    win.tabs.setCurrentWidget(ev)
    win.evaluate_folder(str(folder))
    wait(app, lambda: ev.subgroups.table.rowCount() > 0, timeout=900)
    ev.tabs.setCurrentWidget(ev.subgroups)
    for (width, height), suffix in (((1280, 880), ""), ((1024, 700), "-1024x700")):
        win.setGeometry(0, 0, width, height)
        shot(app, out, f"evaluate-subgroups{suffix}", (width, height) if suffix else None)
    win.setGeometry(0, 0, 1280, 880)


def refusal_shots(app: QApplication, win: MainWindow, out: Path, files: list[Path]) -> None:
    """Classify-refused-clinical/-other/-unfamiliar, at 1280x880 and at 1024x700."""
    view = win.classify_view
    win.tabs.setCurrentWidget(view)
    for (width, height), suffix in (((1280, 880), ""), ((1024, 700), "-1024x700")):
        win.setGeometry(0, 0, width, height)
        for path, name in zip(files, ("clinical", "other", "unfamiliar"), strict=True):
            view.result_label.setText("")
            view.request([str(path)])
            wait(app, lambda: view.result_label.text() != "", timeout=120)
            shot(app, out, f"classify-refused-{name}{suffix}")


def health_shots(app: QApplication, win: MainWindow, out: Path, folder: Path) -> None:
    """The Dataset view with its health line, then its list of flagged images."""
    win.setGeometry(0, 0, 1280, 880)
    win.tabs.setCurrentWidget(win.dataset_view)
    win.open_dataset(str(folder))
    health = win.dataset_view.health
    wait(app, lambda: health.line.text().startswith(("⚠", "Dataset health")), timeout=300)
    shot(app, out, "dataset-health")
    win.dataset_view.tabs.setCurrentWidget(health)
    shot(app, out, "dataset-not-dermoscopic")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=Path("../shared/datasets/ham10000"))
    parser.add_argument("--out", default=Path("docs/screenshots"), type=Path)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--photo", type=Path, default=None,
                        help="a photo that is not a skin lesion, for the refusal shot (e.g. "
                        "astronaut.png from scikit-image's wheel: a NASA public-domain photo)")
    parser.add_argument("--health", type=Path, default=None, metavar="DATASET",
                        help="also shoot the Dataset view's health line for this folder")
    parser.add_argument("--refusals", type=Path, nargs=3, default=None,
                        metavar=("CLINICAL", "SLIDE", "UNFAMILIAR"),
                        help="only the three refusal shots, of these images")
    parser.add_argument("--theme", choices=["system", "light", "dark"], default="system",
                        help="force a theme; light and dark end each file name with -light "
                        "or -dark")
    parser.add_argument("--subgroups", type=Path, default=None, metavar="TEST_DIR",
                        help="only the Subgroups tab, the bundled model evaluated on TEST_DIR")
    parser.add_argument("--quick", action="store_true",
                        help="only Train and Classify, at the default size and at 1024x700")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    app = QApplication(sys.argv)
    win = MainWindow()
    if args.theme != "system":  # for these shots only: the saved choice is left alone
        win.theme.choice = args.theme
        win.theme.apply()
        NAME_SUFFIX["name"] = f"-{args.theme}"
    win.setGeometry(0, 0, 1280, 880)
    win.show()
    win.start_background_loading()
    wait(app, lambda: win.startup_done)
    if args.refusals:
        refusal_shots(app, win, args.out, args.refusals)
        if args.health:
            health_shots(app, win, args.out, args.health)
        win.close()
        return 0
    if args.subgroups:
        subgroup_shots(app, win, args.out, args.subgroups)
        win.close()
        return 0
    if args.quick:
        quick_shots(app, win, args.out, args.data, args.epochs)
        win.close()
        return 0

    win.open_dataset(str(args.data.absolute()))  # as given: no machine path in the shots
    wait(app, lambda: win.train_view.dataset != "")
    shot(app, args.out, "dataset-classes")
    win.dataset_view.tabs.setCurrentIndex(1)
    shot(app, args.out, "dataset-metadata")
    win.dataset_view.tabs.setCurrentIndex(2)
    shot(app, args.out, "dataset-samples")

    view = win.train_view
    win.tabs.setCurrentWidget(view)
    view.settings.model_box.setCurrentIndex(view.settings.model_box.findData("cnn"))
    view.settings.epochs_spin.setValue(args.epochs)
    view.start_clicked()
    wait(app, lambda: view.epoch_bar.value() >= 1, timeout=1800)
    shot(app, args.out, "train-running")
    wait(app, lambda: not view.is_running(), timeout=1800)
    view.runs.table.selectRow(0)
    shot(app, args.out, "train-finished")

    view.runs.open_selected()
    ev = win.evaluate_view
    matrix = ev.matrix
    largest_off_diagonal = max(((r, c) for r in range(7) for c in range(7) if r != c),
                               key=lambda rc: int(matrix.cell_text(*rc) or 0))
    matrix.click_cell(*largest_off_diagonal)
    shot(app, args.out, "evaluate-confusion")
    ev.tabs.setCurrentIndex(1)
    shot(app, args.out, "evaluate-report")
    ev.tabs.setCurrentIndex(2)
    shot(app, args.out, "evaluate-roc")
    ev.tabs.setCurrentWidget(ev.reliability)
    shot(app, args.out, "evaluate-reliability")

    win.tabs.setCurrentWidget(win.models_view)
    if BUNDLED_MODEL.is_file():  # the classify shots show the model users start with
        win.models_view.activate(BUNDLED_MODEL)
        wait(app, lambda: win.models.active_path() == BUNDLED_MODEL, timeout=120)
        win.models_view.list.setCurrentRow(0)
    wait(app, lambda: win.models.active() is not None, timeout=120)
    settle(app, 2)
    shot(app, args.out, "models")

    images = sorted((args.data / "HAM10000_images_part_1").glob("*.jpg"))[:1]
    win.tabs.setCurrentWidget(win.classify_view)
    win.classify_view.request([str(p) for p in images])
    wait(app, lambda: win.classify_view.result_label.text() != "", timeout=120)
    wait(app, lambda: bool(win.classify_view.similar.cases), timeout=600)
    shot(app, args.out, "classify-one")
    panel = win.classify_view.image_panel
    panel.gradcam_check.setChecked(True)
    wait(app, lambda: panel.heatmap is not None, timeout=120)
    shot(app, args.out, "classify-gradcam")
    panel.gradcam_check.setChecked(False)
    several = sorted((args.data / "HAM10000_images_part_2").glob("*.jpg"))[:12]
    win.classify_view.request([str(p) for p in several])
    wait(app, lambda: win.classify_view.table.rowCount() == 12, timeout=120)
    shot(app, args.out, "classify-many")
    if args.photo is not None:  # a photo that is not skin: refused, no diagnosis
        win.classify_view.request([str(args.photo)])
        wait(app, lambda: win.classify_view.refusal.isVisible(), timeout=120)
        shot(app, args.out, "classify-refused")
    win.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
