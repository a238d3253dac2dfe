"""Run slow work off the GUI thread: a thin QObject worker on a QThread.

Results reach the GUI as signals carrying plain data. Connect them only to bound `@Slot`
methods of QObjects that live in the GUI thread: a plain function or lambda connected to a
worker signal would run in the worker thread.
"""

from __future__ import annotations

import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from core.errors import CancelledError, SkinLesionError


@dataclass
class TaskContext:
    """What a task function may use: progress and event reports, and the stop poll."""

    progress: Callable[[int, int], None]
    status: Callable[[str], None]
    event: Callable[[object], None]
    should_stop: Callable[[], bool]


class TaskWorker(QObject):
    """Calls `fn(context)` in its thread and reports the outcome as signals."""

    progress = Signal(int, int)
    status = Signal(str)
    report = Signal(object)  # plain-data events (not `event`: that is QObject's handler)
    succeeded = Signal(object)
    failed = Signal(str)
    cancelled = Signal(str)
    done = Signal()

    def __init__(self, fn: Callable[[TaskContext], Any]) -> None:
        super().__init__()
        self._fn = fn
        self.stop_event = threading.Event()
        self.superseded = threading.Event()

    @Slot()
    def run(self) -> None:
        """Run the task; never lets an exception escape into Qt."""
        context = TaskContext(self.progress.emit, self.status.emit, self.report.emit,
                              self.stop_event.is_set)
        try:
            result = self._fn(context)
        except CancelledError as exc:
            self.cancelled.emit(str(exc))
        except SkinLesionError as exc:
            self.failed.emit(str(exc))
        except MemoryError:
            self.failed.emit("out of memory: try a smaller image size or batch size")
        except Exception as exc:  # the last resort: a message for the user, details on stderr
            traceback.print_exc(file=sys.stderr)
            self.failed.emit(f"unexpected {type(exc).__name__}: {exc}")
        else:
            if self.superseded.is_set():  # a newer task of its kind runs: its result wins
                self.cancelled.emit("superseded by a newer request")
            else:
                self.succeeded.emit(result)
        finally:
            self.done.emit()


class Task:
    """A running task: its worker (connect to its signals) and a way to stop it."""

    def __init__(self, name: str, worker: TaskWorker, thread: QThread) -> None:
        self.name, self.worker, self.thread = name, worker, thread

    def stop(self) -> None:
        """Ask the task to stop at its next check (never terminates the thread)."""
        self.worker.stop_event.set()


class TaskRunner(QObject):
    """Starts tasks in their own QThreads and keeps them alive until they finish."""

    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._tasks: dict[int, Task] = {}

    def start(self, name: str, fn: Callable[[TaskContext], Any]) -> Task:
        """Create the worker and thread for `fn`; connect to `task.worker` then call `run`.

        At most one task of each kind (`name`) runs: a running one is asked to stop, and its
        result is dropped (it reports `cancelled`), so the newest request always wins.
        """
        for running in self.running(name):
            running.worker.superseded.set()
            running.stop()
        thread = QThread()
        thread.setObjectName(name)
        worker = TaskWorker(fn)
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        # Direct: quit must not wait for the GUI thread, which may be blocked in wait().
        worker.done.connect(thread.quit, Qt.ConnectionType.DirectConnection)
        task = Task(name, worker, thread)
        key = id(task)
        self._tasks[key] = task
        thread.finished.connect(self._forget)
        thread.setProperty("task_key", key)
        return task

    def run(self, task: Task) -> None:
        """Start a task created by `start` (after its signals are connected)."""
        task.thread.start()
        self.busy_changed.emit(True)

    @Slot()
    def _forget(self) -> None:
        thread = self.sender()
        key = thread.property("task_key") if thread is not None else None
        task = self._tasks.pop(key, None)
        if task is not None:
            task.worker.deleteLater()
            task.thread.deleteLater()
        if not self._tasks:
            self.busy_changed.emit(False)

    def running(self, name: str | None = None) -> list[Task]:
        """Tasks still running (optionally only those called `name`)."""
        return [t for t in self._tasks.values()
                if t.thread.isRunning() and (name is None or t.name == name)]

    def stop_all(self, wait_ms: int = 30000) -> bool:
        """Ask every task to stop and wait for their threads; True if all ended."""
        for task in list(self._tasks.values()):
            task.stop()
        ended = True
        for task in list(self._tasks.values()):
            ended = task.thread.wait(wait_ms) and ended
        return ended
