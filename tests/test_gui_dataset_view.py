"""The Dataset view shows what a user needs to see about a dataset folder."""

from __future__ import annotations

import shutil
from functools import partial
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QFileDialog
from pytestqt.qtbot import QtBot

from gui.dataset_view import DatasetView
from gui.settings import last_folder, remember_folder
from gui.task_functions import DatasetOverview, load_overview
from gui.tasks import TaskContext, TaskRunner


def plain_context(progress: list[tuple[int, int]]) -> TaskContext:
    return TaskContext(progress=lambda d, t: progress.append((d, t)), status=lambda _s: None,
                       event=lambda _e: None, should_stop=lambda: False)


def make_view(qtbot: QtBot) -> DatasetView:
    view = DatasetView()
    qtbot.addWidget(view)
    view.resize(1280, 800)
    view.show()
    return view


def drag_events(path: Path) -> tuple[QDragEnterEvent, QDropEvent, QMimeData]:
    """Drag-enter and drop events carrying `path`; keep the QMimeData alive while used."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    enter = QDragEnterEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    enter.ignore()
    drop = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime,
                      Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    return enter, drop, mime


def test_empty_state_tells_the_user_what_to_open(qtbot: QtBot) -> None:
    view = make_view(qtbot)
    assert view.stack.currentWidget() is view.empty_label
    text = view.empty_label.text()
    assert "Open dataset folder" in text and "drop" in text
    assert "HAM10000" in text and "ISIC 2018" in text and "sub-folder" in text


def test_overview_through_a_worker_shows_counts_charts_and_samples(qtbot: QtBot,
                                                                   ham_dir: Path) -> None:
    view = make_view(qtbot)
    runner = TaskRunner()
    view.show_loading(str(ham_dir))
    assert "Loading" in view.header.text() and view.progress.isVisible()
    task = runner.start("dataset", partial(load_overview, str(ham_dir)))
    task.worker.progress.connect(view.set_progress)
    with qtbot.waitSignal(task.worker.succeeded, timeout=60000) as blocker:
        runner.run(task)
    qtbot.waitUntil(lambda: not runner.running(), timeout=10000)
    overview = blocker.args[0]
    assert isinstance(overview, DatasetOverview)
    # the progress reports are queued to this thread: they may still be on their way
    qtbot.waitUntil(lambda: view.progress.maximum() == 42 and view.progress.value() == 42,
                    timeout=5000)
    view.show_overview(overview)

    header = view.header.text()
    assert "42 images" in header and "21 lesions" in header and "0 problems" in header
    assert "ham10000" in header and not view.progress.isVisible()
    assert view.stack.currentIndex() == 1
    bars = view.class_chart.ax.patches
    assert len(bars) == 14  # images and lesions for 7 classes
    assert sorted(b.get_height() for b in bars) == [3] * 7 + [6] * 7
    ticks = [t.get_text() for t in view.class_chart.ax.get_xticklabels()]
    assert ticks == ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"]
    assert "Melanoma" in view.class_chart.canvas.toolTip()
    assert [b.get_height() for b in view.sex_chart.ax.patches] == [28, 14]  # male, female
    assert [p.get_width() for p in view.location_chart.ax.patches] == [42]  # back
    assert sum(b.get_height() for b in view.age_chart.ax.patches) == 42
    assert [b.get_height() for b in view.dx_type_chart.ax.patches] == [42]  # histo

    assert sorted(view.sample_labels) == sorted(overview.summary["classes"])
    for code, thumbs in view.sample_labels.items():
        assert len(thumbs) == 6, code
        pixmap = thumbs[0].pixmap()
        assert pixmap.width() == 96 and pixmap.height() == 96
    assert view.problems_list.count() == 0
    assert "No problems found" in view.problems_heading.text()
    assert view.tabs.tabText(3) == "Problems (0)"


def test_a_corrupted_image_is_listed_as_a_problem(qtbot: QtBot, ham_dir: Path,
                                                  tmp_path: Path) -> None:
    copy = Path(shutil.copytree(ham_dir, tmp_path / "copy"))
    (copy / "HAM10000_images_part_2" / "ISIC_0000003.jpg").write_bytes(b"not a jpeg at all")
    progress: list[tuple[int, int]] = []
    overview = load_overview(str(copy), plain_context(progress))
    assert progress[-1] == (42, 42)
    view = make_view(qtbot)
    view.show_overview(overview)

    assert "41 images" in view.header.text() and "1 problem" in view.header.text()
    assert view.problems_list.count() == 1
    line = view.problems_list.item(0).text()
    assert line.startswith("unreadable-image: ISIC_0000003 (ISIC_0000003.jpg:")
    assert "1 problem found" in view.problems_heading.text()
    # ISIC_0000003 is the 4th akiec image: akiec keeps 5 readable samples
    assert len(view.sample_labels["akiec"]) == 5
    assert "ISIC_0000003" not in [t.toolTip() for t in view.sample_labels["akiec"]]


def test_errors_are_shown_inline(qtbot: QtBot) -> None:
    view = make_view(qtbot)
    view.show_loading("/somewhere")
    assert not view.open_button.isEnabled()
    view.show_error("/somewhere holds no dataset: expected HAM10000_metadata.csv")
    assert view.error_label.isVisible()
    assert view.error_label.text() == "/somewhere holds no dataset: expected HAM10000_metadata.csv"
    assert not view.progress.isVisible() and view.open_button.isEnabled()
    assert view.stack.currentWidget() is view.empty_label


def test_dropping_a_folder_requests_it(qtbot: QtBot, ham_dir: Path) -> None:
    view = make_view(qtbot)
    assert view.acceptDrops()
    enter, drop, _mime = drag_events(ham_dir)
    view.dragEnterEvent(enter)
    assert enter.isAccepted()
    with qtbot.waitSignal(view.open_requested, timeout=2000) as blocker:
        view.dropEvent(drop)
    assert blocker.args == [str(ham_dir)]
    assert last_folder("dataset") == str(ham_dir)


def test_dropping_a_file_is_ignored(qtbot: QtBot, ham_dir: Path) -> None:
    view = make_view(qtbot)
    enter, drop, _mime = drag_events(ham_dir / "HAM10000_metadata.csv")
    view.dragEnterEvent(enter)
    assert not enter.isAccepted()
    with qtbot.assertNotEmitted(view.open_requested):
        view.dropEvent(drop)


def test_choose_folder_starts_at_the_last_folder(qtbot: QtBot, ham_dir: Path,
                                                 tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    remember_folder("dataset", str(tmp_path))
    asked: list[str] = []

    def fake_dialog(_parent: object, _caption: str, start: str) -> str:
        asked.append(start)
        return str(ham_dir)

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(fake_dialog))
    view = make_view(qtbot)
    with qtbot.waitSignal(view.open_requested, timeout=2000) as blocker:
        view.choose_folder()
    assert asked == [str(tmp_path)]
    assert blocker.args == [str(ham_dir)] and last_folder("dataset") == str(ham_dir)
