"""Hands drawings of the training curves to a painter process, and their pixels back to the
GUI thread as a `QImage` (`gui.curves_picture` draws; `gui.training_curves` shows).

One painter serves the app. Its process starts when the curves first need drawing; if no
process can start, or it died twice, a thread of this process draws instead (slower for
the window, but the curves still appear).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from gui.curves_picture import CurvesPicture, Pixels, paint_forever, render_curves

MAX_STARTS = 2
PROCESS_NAME = "training-curves-painter"
CLOSE_WAIT_S = 2.0


class PainterSignals(QObject):
    """Made in the GUI thread, so what the reader thread emits arrives there (queued)."""

    drawn = Signal(int, int, QImage)  # key, request number, the drawing


def to_image(pixels: Pixels) -> QImage:
    """The drawing as a QImage that owns its pixels."""
    image = QImage(pixels.rgba, pixels.width, pixels.height, pixels.width * 4,
                   QImage.Format.Format_RGBA8888).copy()
    image.setDevicePixelRatio(pixels.pixel_ratio)
    return image


class CurvePainter:
    """Draws `CurvesPicture`s off the GUI thread; results arrive on `signals.drawn`."""

    def __init__(self) -> None:
        self.signals = PainterSignals()
        self._lock = threading.Lock()
        self._process: Any = None
        self._requests: Any = None
        self._results: Any = None
        self._starts = 0
        self._thread: ThreadPoolExecutor | None = None
        self._pending: list[tuple[int, int, CurvesPicture]] = []

    def submit(self, key: int, number: int, picture: CurvesPicture) -> None:
        """Ask for a drawing; a newer request of the same `key` may replace this one.

        Where the process must start first, a helper thread starts it (about 20 ms of the
        GUI thread's time otherwise) and then sends what waited meanwhile.
        """
        with self._lock:
            if self._must_start():
                self._pending.append((key, number, picture))
                if len(self._pending) == 1:
                    threading.Thread(target=self._start_and_send, daemon=True,
                                     name="training-curves-start").start()
                return
        self._send(key, number, picture)

    def _must_start(self) -> bool:
        return self._thread is None and not (self._process and self._process.is_alive())

    def _send(self, key: int, number: int, picture: CurvesPicture) -> None:
        if self._thread is not None:
            self._thread.submit(self._draw_here, key, number, picture)
        else:
            self._requests.put((key, number, picture))

    def _start_and_send(self) -> None:
        with self._lock:
            if self._must_start():
                self._start_process()
            pending, self._pending = self._pending, []
        for request in pending:
            self._send(*request)

    def _start_process(self) -> None:
        if self._starts >= MAX_STARTS:
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="curves")
            return
        self._starts += 1
        try:
            context = multiprocessing.get_context("spawn")
            requests, results = context.Queue(), context.Queue()
            process = context.Process(target=paint_forever, name=PROCESS_NAME,
                                      args=(requests, results, os.getpid()), daemon=True)
            process.start()
        except (OSError, RuntimeError, ValueError) as exc:  # e.g. no way to spawn here
            print(f"training curves: drawn in a thread ({exc})", file=sys.stderr)
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="curves")
            return
        self._process, self._requests, self._results = process, requests, results
        threading.Thread(target=self._read, args=(results,), daemon=True,
                         name="training-curves-reader").start()

    def _read(self, results: Any) -> None:
        while True:
            try:
                item = results.get()
            except Exception:  # noqa: BLE001  (the queue closed: the app is exiting)
                return
            if item is None:
                return
            key, number, pixels = item
            if isinstance(pixels, str):
                print(f"training curves: could not draw ({pixels})", file=sys.stderr)
                continue
            self.signals.drawn.emit(key, number, to_image(pixels))

    def _draw_here(self, key: int, number: int, picture: CurvesPicture) -> None:
        try:
            pixels = render_curves(picture)
        except Exception as exc:  # noqa: BLE001  (a drawing error must not end the thread)
            print(f"training curves: could not draw ({exc})", file=sys.stderr)
            return
        self.signals.drawn.emit(key, number, to_image(pixels))

    def close(self) -> None:
        """End the painter process (the app is closing)."""
        with self._lock:
            process, self._process = self._process, None
            if process is None:
                return
            self._requests.put(None)
            process.join(CLOSE_WAIT_S)
            if process.is_alive():
                process.terminate()
            self._results.put(None)  # ends the reader


@cache
def curve_painter() -> CurvePainter:
    """The app's one painter (made on first use, in the GUI thread)."""
    return CurvePainter()
