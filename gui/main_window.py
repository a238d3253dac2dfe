"""The main window: tabs for each view, menus, status bar; wires view requests to tasks.

Views only emit requests; this window is the one place that starts work, with the task
functions of `gui.task_functions`, and routes their results back to the views' slots.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QUrl, Slot
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import QLabel, QMainWindow, QMessageBox, QTabWidget

from core.runs import RunFolder
from gui import task_functions as work
from gui.about import show_about
from gui.classify_view import ClassifyView
from gui.dataset_view import DatasetView
from gui.evaluate_view import EvaluateView
from gui.model_library import ModelLibrary
from gui.models_view import ModelsView
from gui.settings import app_settings, ham10000_folder, remember_folder
from gui.tasks import Task, TaskRunner
from gui.theme import install_theme
from gui.train_view import TrainView
from gui.view_warmup import paint_once_when_idle


class MainWindow(QMainWindow):
    """Dataset, Train, Evaluate, Classify and Models views in tabs."""

    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("Skin Lesion Classifier — research tool, not a medical device")
        self.setAcceptDrops(True)
        self.tasks = TaskRunner(self)
        self.models = ModelLibrary()
        self._classify_runtime = ""
        self._waiting_files: list[str] = []  # dropped before the bundled model was ready
        self.startup_done = False

        self.dataset_view = DatasetView()
        self.train_view = TrainView()
        self.evaluate_view = EvaluateView()
        self.classify_view = ClassifyView()
        self.models_view = ModelsView(self.models)
        self.tabs = QTabWidget()
        for view, title in ((self.dataset_view, "Dataset"), (self.train_view, "Train"),
                            (self.evaluate_view, "Evaluate"), (self.classify_view, "Classify"),
                            (self.models_view, "Models")):
            self.tabs.addTab(view, title)
        self.setCentralWidget(self.tabs)
        self.runtime_label = QLabel("Model: loading…")
        self.runtime_label.setToolTip("Which engine classifies: LiteRT (the model's fast twin, "
                                      "no TensorFlow) or Keras (TensorFlow)")
        self.statusBar().addPermanentWidget(self.runtime_label)
        self.device_label = QLabel()  # while training: the devices it runs on
        self.device_label.setVisible(False)
        self.statusBar().addPermanentWidget(self.device_label)

        self.dataset_view.open_requested.connect(self.open_dataset)
        self.dataset_view.health.image_requested.connect(self.show_dataset_image)
        self.train_view.run_open_requested.connect(self.open_run)
        self.train_view.run_finished.connect(self.on_run_finished)
        self.train_view.message.connect(self.show_message)
        self.train_view.train_requested.connect(self.start_training)
        self.train_view.resume_requested.connect(self.resume_training)
        self.train_view.stop_requested.connect(self.stop_training)
        self.train_view.device_changed.connect(self.show_device)
        self.evaluate_view.evaluate_folder_requested.connect(self.evaluate_folder)
        self.evaluate_view.export_report_requested.connect(self.export_report)
        self.classify_view.classify_requested.connect(self.classify_files)
        self.classify_view.image_panel.gradcam_requested.connect(self.explain_image)
        self.classify_view.similar.requested.connect(self.find_similar)
        self.models_view.active_changed.connect(self.on_active_model)
        self.models_view.message.connect(self.show_message)
        self.models_view.load_requested.connect(self.load_model)
        self.models_view.import_requested.connect(self.import_model)
        self.models_view.export_requested.connect(self.export_model)
        self._build_menus()
        self._restore_geometry()

    # ----- menus and settings -------------------------------------------------------------
    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self._action(file_menu, "Open &Dataset Folder…", QKeySequence.StandardKey.Open,
                     self.dataset_view.choose_folder)
        self._action(file_menu, "Open &Image…", "Ctrl+I", self._open_images)
        self._action(file_menu, "&Import Model…", "Ctrl+Shift+I", self._import_model)
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", QKeySequence.StandardKey.Quit, self.close)
        view_menu = self.menuBar().addMenu("&View")
        for index in range(self.tabs.count()):
            self._action(view_menu, self.tabs.tabText(index), f"Ctrl+{index + 1}",
                         partial(self.tabs.setCurrentIndex, index))
        view_menu.addSeparator()
        self.theme = install_theme(self, view_menu)  # the remembered theme, and View ▸ Theme
        train_menu = self.menuBar().addMenu("&Training")
        self._action(train_menu, "&Start", "Ctrl+R", self.train_view.start_clicked)
        self._action(train_menu, "S&top", "Ctrl+.", self.train_view.stop_clicked)
        help_menu = self.menuBar().addMenu("&Help")
        self._action(help_menu, "&About", QKeySequence.StandardKey.HelpContents,
                     partial(show_about, self))

    def _action(self, menu: Any, text: str, shortcut: Any, handler: Any) -> QAction:
        action = QAction(text, self)
        action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(handler)
        menu.addAction(action)
        return action

    def _restore_geometry(self) -> None:
        geometry = app_settings().value("window/geometry")
        if isinstance(geometry, QByteArray) and self.restoreGeometry(geometry):
            return
        self.resize(1280, 860)

    # ----- background start-up -------------------------------------------------------------
    def start_background_loading(self) -> None:
        """Make the bundled model ready (LiteRT: no TensorFlow) in a worker after the window
        shows; TensorFlow is imported only when a view needs it (training, Grad-CAM)."""
        task = self.tasks.start("startup", partial(work.load_startup, self.models))
        task.worker.status.connect(self.show_message)
        task.worker.report.connect(self.on_model_ready)
        task.worker.succeeded.connect(self.on_startup_done)
        task.worker.failed.connect(self.on_startup_failed)
        self.tasks.run(task)
        self.tasks.run(self.tasks.start("plotting", work.preload_plotting))

    @Slot(object)
    def on_model_ready(self, ready: work.ModelReady) -> None:
        self.models_view.set_active(Path(ready.path))
        self.show_message(f"Ready to classify ({ready.runtime})")
        self._classify_waiting()

    @Slot(object)
    def on_startup_done(self, _active_path: str) -> None:
        self.startup_done = True
        if self.models.active() is None:
            self.runtime_label.setText("Model: none")
        self.models_view.refresh()
        self._classify_waiting()  # without a bundled model this says so for the waiting images
        paint_once_when_idle(self.train_view, like=self.tabs.currentWidget())  # its 1st show

    def _classify_waiting(self) -> None:
        """Classify the images dropped before start-up had a model ready."""
        waiting, self._waiting_files = self._waiting_files, []
        if waiting:
            self.classify_files(waiting)

    @Slot(str)
    def on_startup_failed(self, message: str) -> None:
        self.startup_done = True
        if self._waiting_files:
            self._waiting_files = []
            self.classify_view.show_error(f"The bundled model could not be loaded: {message}")
        self.runtime_label.setText("Model: unavailable")
        QMessageBox.critical(self, "The bundled model could not be loaded", message)

    # ----- requests from the views --------------------------------------------------------
    @Slot(str)
    def open_dataset(self, folder: str) -> None:
        self.dataset_view.show_loading(folder)
        for old in self.tasks.running("dataset-modality"):  # its verdict is on the old one
            old.worker.superseded.set()
            old.stop()
        task = self.tasks.start("dataset", partial(work.load_overview, folder))
        task.worker.progress.connect(self.dataset_view.set_progress)
        task.worker.succeeded.connect(self.on_dataset_loaded)
        task.worker.failed.connect(self.dataset_view.show_error)
        self.tasks.run(task)

    @Slot(object)
    def on_dataset_loaded(self, overview: Any) -> None:
        self.dataset_view.show_overview(overview)
        self.train_view.set_dataset(str(overview.summary["root"]),
                                    int(overview.summary["n_images"]))
        self.show_message(f"Dataset loaded: {overview.summary['n_images']} images")
        if overview.summary.get("layout") == "ham10000":  # the similar cases' thumbnails
            remember_folder("ham10000", str(overview.summary["root"]))
        health = self.dataset_view.health
        health.show_checking()
        task = self.tasks.start("dataset-modality", partial(work.check_dataset_modality,
                                                            str(overview.summary["root"])))
        task.worker.progress.connect(health.set_progress)
        task.worker.succeeded.connect(health.show_result)
        task.worker.failed.connect(health.show_error)
        self.tasks.run(task)

    @Slot(str)
    def show_dataset_image(self, path: str) -> None:
        self.tabs.setCurrentWidget(self.classify_view)
        self.classify_view.request([path])

    @Slot(str)
    def open_run(self, run_dir: str) -> None:
        self.evaluate_view.show_run(Path(run_dir))
        self.tabs.setCurrentWidget(self.evaluate_view)

    @Slot(str)
    def on_run_finished(self, run_dir: str) -> None:
        self.models_view.refresh()
        model = RunFolder(run_dir).model_path
        if self.models.active() is None and model.is_file():
            self.models_view.activate(model)  # a first trained model becomes the active one

    @Slot(object)
    def start_training(self, config: Any) -> None:
        self._train(partial(work.training_task, config, None))

    @Slot(str)
    def resume_training(self, run_dir: str) -> None:
        self._train(partial(work.training_task, None, run_dir))

    def _train(self, fn: Any) -> None:
        view = self.train_view
        task = self.tasks.start("train", fn)
        task.worker.report.connect(view.on_event)
        task.worker.status.connect(view.on_status)
        task.worker.progress.connect(view.on_load_progress)
        task.worker.succeeded.connect(view.on_finished)
        task.worker.failed.connect(view.on_failed)
        task.worker.cancelled.connect(view.on_failed)
        task.worker.done.connect(view.on_done)
        view.set_running(True)
        self.tasks.run(task)

    @Slot(str)
    def show_device(self, description: str) -> None:
        """Name the devices a run trains on in the status bar (hidden when it ends)."""
        self.device_label.setText(f"Training on {description}" if description else "")
        self.device_label.setVisible(bool(description))

    @Slot()
    def stop_training(self) -> None:
        for task in self.tasks.running("train"):
            task.stop()

    @Slot(object)
    def load_model(self, path: Path) -> None:
        task = self.tasks.start("load-model", partial(work.load_model_task, self.models, path,
                                                      True))
        self._to_models_view(task, self.models_view.on_activated)

    @Slot(object)
    def import_model(self, source: Path) -> None:
        task = self.tasks.start("import-model", partial(work.import_model_task, self.models,
                                                        source))
        self._to_models_view(task, self.models_view.on_imported)

    @Slot(object, str, object)
    def export_model(self, path: Path, fmt: str, target: Path) -> None:
        task = self.tasks.start("export-model", partial(work.export_model_task, path, fmt,
                                                        target))
        task.worker.status.connect(self.show_message)
        task.worker.succeeded.connect(self.models_view.on_exported)
        task.worker.failed.connect(self.models_view.on_export_failed)
        self.tasks.run(task)

    def _to_models_view(self, task: Task, on_success: Any) -> None:
        task.worker.status.connect(self.show_message)
        task.worker.succeeded.connect(on_success)
        task.worker.failed.connect(self.models_view.show_error)
        self.tasks.run(task)

    @Slot(str)
    def evaluate_folder(self, folder: str) -> None:
        task = self.tasks.start("evaluate", partial(work.evaluate_folder, self.models, folder))
        task.worker.progress.connect(self.evaluate_view.set_progress)
        task.worker.succeeded.connect(self.evaluate_view.show_evaluation)
        task.worker.failed.connect(self.evaluate_view.show_error)
        self.tasks.run(task)

    @Slot(object, str)
    def export_report(self, data: Any, target: str) -> None:
        task = self.tasks.start("report", partial(work.export_report_task, data, target))
        task.worker.status.connect(self.show_message)
        task.worker.succeeded.connect(self.evaluate_view.report_written)
        task.worker.failed.connect(self.evaluate_view.show_error)
        self.tasks.run(task)

    @Slot(list)
    def classify_files(self, files: list[str]) -> None:
        model = self.models.active()
        if model is None and not self.startup_done:  # answered as soon as the model is ready
            self._waiting_files = list(files)
            self.classify_view.show_busy(len(files))
            self.show_message("The model is loading; your images are classified in a moment")
            return
        if model is None:
            self.classify_view.show_error(
                "No model is active yet: train one or choose one in the Models view")
            return
        self.classify_view.show_busy(len(files))
        # unchecked: the model's own recipe decides (a model may always use flips)
        tta = True if self.classify_view.tta_check.isChecked() else None
        task = self.tasks.start("classify", partial(work.classify_task, model, files, tta))
        self._classify_runtime = model.runtime
        task.worker.progress.connect(self.classify_view.set_progress)
        task.worker.succeeded.connect(self.classify_view.show_predictions)
        task.worker.succeeded.connect(self.on_classified)
        task.worker.failed.connect(self.classify_view.show_error)
        self.tasks.run(task)

    @Slot(object)
    def on_classified(self, predictions: list) -> None:
        refused = sum(1 for p in predictions if not p.error and p.in_domain is False)
        done = sum(1 for p in predictions if not p.error) - refused
        failed = sum(1 for p in predictions if p.error)
        parts = [f"{n} image{'s' * (n != 1)} {what}" for n, what in
                 ((done, "classified"), (refused, "refused"), (failed, "unreadable")) if n]
        answered = f" — answered by {self._classify_runtime}" if done or refused else ""
        self.show_message(", ".join(parts) + answered)

    @Slot(str)
    def explain_image(self, path: str) -> None:
        model = self.models.active()
        panel = self.classify_view.image_panel
        if model is None:
            panel.show_gradcam_error("no active model")
            return
        task = self.tasks.start("gradcam", partial(work.gradcam_task, self.models, model.path,
                                                   path))
        task.worker.status.connect(panel.show_note)
        task.worker.status.connect(self.show_message)
        task.worker.succeeded.connect(panel.show_gradcam)
        task.worker.failed.connect(panel.show_gradcam_error)
        self.tasks.run(task)

    @Slot(str)
    def find_similar(self, path: str) -> None:
        """The training images nearest to `path`, for the Classify view's panel."""
        model = self.models.active()
        panel = self.classify_view.similar
        if model is None:
            panel.show_error("no active model")
            return
        task = self.tasks.start("similar", partial(work.similar_task, model, path,
                                                   ham10000_folder()))
        task.worker.progress.connect(panel.set_progress)
        task.worker.status.connect(panel.show_note)
        task.worker.succeeded.connect(panel.show_cases)
        task.worker.failed.connect(panel.show_error)
        self.tasks.run(task)

    @Slot(str)
    def on_active_model(self, description: str) -> None:
        self.classify_view.similar.reset()
        self.classify_view.set_model_description(description)
        self.evaluate_view.set_model_description(description)
        active = self.models.active()
        self.classify_view.set_recipe_tta(bool(active and active.info.tta))
        self.runtime_label.setText(f"Classifies with {active.runtime}" if active
                                   else "Model: none")

    @Slot(str)
    def show_message(self, text: str) -> None:
        self.statusBar().showMessage(text, 8000)

    def _open_images(self) -> None:
        self.tabs.setCurrentWidget(self.classify_view)
        self.classify_view.choose_files()

    def _import_model(self) -> None:
        self.tabs.setCurrentWidget(self.models_view)
        self.models_view.choose_import()

    # ----- drag and drop: a folder dropped anywhere opens it as a dataset -----------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        urls = event.mimeData().urls()
        if len(urls) == 1 and Path(urls[0].toLocalFile()).is_dir():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        urls: list[QUrl] = event.mimeData().urls()
        if urls and Path(urls[0].toLocalFile()).is_dir():
            self.tabs.setCurrentWidget(self.dataset_view)
            self.open_dataset(urls[0].toLocalFile())

    # ----- closing ------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        if self.tasks.running("train"):
            answer = QMessageBox.question(
                self, "Training is running",
                "A training run is in progress. Stop it (the best epoch so far is kept) and quit?",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                QMessageBox.StandardButton.No)
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
        self.statusBar().showMessage("Stopping background work…")
        self.tasks.stop_all()
        settings = app_settings()
        settings.setValue("window/geometry", self.saveGeometry())
        settings.sync()
        event.accept()
