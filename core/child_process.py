"""Run a training (or cross-validation) in a child process, relaying its events as plain data.

The GUI's training worker calls `run_training_in_child`: it starts a child with the "spawn"
context (the same on Linux, macOS and Windows), which imports TensorFlow, runs
`run_training` (the same function an in-process run uses) and exits when the run ends,
giving all its memory back. The child sends `(kind, payload)` tuples through a
`multiprocessing` Queue: status strings, load-progress tuples, `EpochResult`/`BatchProgress`/
`FoldStarted` events, then the result dict, or an error (its kind and one line). Stop sets a
`multiprocessing.Event` that the child's `should_stop` reads; the child is never terminated
on a normal stop. A child that dies (killed, crashed) ends the task with one `TrainingError`
line; its run folder keeps the last completed epoch, so the run list offers Resume.

Nothing here imports Qt or TensorFlow. `SKIN_LESION_TRAIN_IN_PROCESS=1` makes the GUI train
in its own process instead (the test suite's default: a TensorFlow child costs seconds).
"""

from __future__ import annotations

import multiprocessing
import os
import queue as queue_module
import sys
import time
import traceback
from typing import Any, Protocol

from core.checkpoints import BatchProgress
from core.config import TrainConfig
from core.errors import CancelledError, SkinLesionError, TrainingError

IN_PROCESS_ENV = "SKIN_LESION_TRAIN_IN_PROCESS"
BATCH_EVENT_INTERVAL_S = 0.05  # enough for a smooth bar without flooding the GUI thread
POLL_S = 0.1  # how often the parent looks at the stop flag and the child's liveness
DRAIN_S = 0.5  # after the child died: how long to wait for what it sent last
EXIT_WAIT_S = 30.0  # after the result: how long the child may take to exit
OUT_OF_MEMORY = "out of memory: try a smaller image size or batch size"


class Context(Protocol):
    """What a training reports to and polls (`gui.tasks.TaskContext` fits)."""

    def progress(self, done: int, total: int) -> None: ...
    def status(self, text: str) -> None: ...
    def event(self, event: object) -> None: ...
    def should_stop(self) -> bool: ...


def in_process() -> bool:
    """Whether the GUI trains in its own process (`SKIN_LESION_TRAIN_IN_PROCESS=1`)."""
    return os.environ.get(IN_PROCESS_ENV, "").strip() == "1"


def unexpected_end(exit_code: int | None) -> str:
    """The one line shown when the training process dies."""
    return (f"training process ended unexpectedly (exit code {exit_code}); the run folder "
            "keeps its last finished epoch, Resume continues it")


def run_training(config: TrainConfig | None, resume_dir: str | None,
                 ctx: Context) -> dict[str, Any]:
    """Run `core.training.train` (or `resume`, or a cross-validation) in this process,
    forwarding its hooks to `ctx`; returns the plain result dict the Train view shows."""
    if "tensorflow" not in sys.modules:
        ctx.status("Loading TensorFlow…")
    from core.cross_validation import run_cv, wants_cv
    from core.training import resume, train

    last = 0.0

    def on_batch(progress: BatchProgress) -> None:
        nonlocal last
        now = time.monotonic()
        if progress.batch == progress.batches or now - last >= BATCH_EVENT_INTERVAL_S:
            last = now
            ctx.event(progress)

    hooks: dict[str, Any] = dict(on_epoch=ctx.event, on_batch=on_batch,
                                 should_stop=ctx.should_stop, on_status=ctx.status,
                                 on_load_progress=ctx.progress)
    if wants_cv(config, resume_dir or None):  # K folds: one run each, then the summary
        cv = run_cv(config, resume_dir or None, on_fold=ctx.event, **hooks)
        return {"run_dir": str(cv.last_run), "metrics": cv.last_metrics, "stopped": cv.stopped,
                "best_epoch": None, "cv": cv.summary, "group_dir": str(cv.group_dir)}
    if resume_dir:
        result = resume(resume_dir, **hooks)
    elif config is not None:
        result = train(config, **hooks)
    else:
        raise ValueError("a training needs a config or a run folder to resume")
    return {"run_dir": str(result.run_dir), "metrics": result.metrics,
            "stopped": result.stopped, "best_epoch": result.best_epoch}


# ----- the child -------------------------------------------------------------------------
class _QueueContext:
    """The child's side of `Context`: reports go into the queue, stop reads the event (or
    the parent's death, so an orphan ends its run like a stopped one)."""

    def __init__(self, out: Any, stop: Any) -> None:
        self._out, self._stop = out, stop
        self._parent = multiprocessing.parent_process()

    def progress(self, done: int, total: int) -> None:
        self._out.put(("progress", (int(done), int(total))))

    def status(self, text: str) -> None:
        self._out.put(("status", str(text)))

    def event(self, event: object) -> None:
        self._out.put(("event", event))

    def should_stop(self) -> bool:
        return bool(self._stop.is_set()) or (self._parent is not None
                                             and not self._parent.is_alive())


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else ""


def child_main(config: TrainConfig | None, resume_dir: str | None, out: Any,
               stop: Any) -> None:
    """The child process: train, send the outcome, then leave at once (no TensorFlow
    teardown; the operating system takes the memory back)."""
    ctx = _QueueContext(out, stop)
    code = 0
    try:
        out.put(("result", run_training(config, resume_dir, ctx)))
    except CancelledError as exc:
        out.put(("cancelled", str(exc)))
    except SkinLesionError as exc:
        out.put(("failed", str(exc)))
    except MemoryError:
        out.put(("memory", OUT_OF_MEMORY))
    except Exception as exc:  # the details on the child's stderr, one line for the user
        traceback.print_exc(file=sys.stderr)
        out.put(("failed", f"unexpected {type(exc).__name__}: {_one_line(exc)}"))
        code = 1
    out.close()
    out.join_thread()  # everything sent has reached the pipe
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


# ----- the parent ------------------------------------------------------------------------
def _dispatch(kind: str, payload: Any, ctx: Context) -> bool:
    """Forward one message to `ctx`; True when it ends the run (raises for an error)."""
    if kind == "status":
        ctx.status(payload)
    elif kind == "progress":
        ctx.progress(*payload)
    elif kind == "event":
        ctx.event(payload)
    elif kind == "result":
        return True
    elif kind == "cancelled":
        raise CancelledError(payload)
    elif kind == "memory":
        raise MemoryError(payload)
    elif kind == "failed":
        raise TrainingError(payload)
    return False


def _relay(process: Any, messages: Any, stop: Any, ctx: Context) -> dict[str, Any]:
    """Forward the child's messages until its result, error or death."""
    while True:
        if ctx.should_stop() and not stop.is_set():
            stop.set()
        try:
            kind, payload = messages.get(timeout=POLL_S)
        except queue_module.Empty:
            if process.is_alive():
                continue
            try:  # dead: what it sent last may still be on its way
                kind, payload = messages.get(timeout=DRAIN_S)
            except queue_module.Empty:
                process.join()
                raise TrainingError(unexpected_end(process.exitcode)) from None
        if _dispatch(kind, payload, ctx):
            return dict(payload)


def run_training_in_child(config: TrainConfig | None, resume_dir: str | None,
                          ctx: Context) -> dict[str, Any]:
    """`run_training` in a spawned child process; same events, result and errors."""
    mp = multiprocessing.get_context("spawn")
    messages = mp.Queue()
    stop = mp.Event()
    process = mp.Process(target=child_main, args=(config, resume_dir, messages, stop),
                         name="skin-lesion-training", daemon=True)
    ctx.status("Starting the training process…")
    process.start()
    try:
        return _relay(process, messages, stop, ctx)
    finally:
        stop.set()  # a child still running (an error in the relay) stops at its next batch
        process.join(EXIT_WAIT_S)
        if process.is_alive():  # it sent its outcome but does not exit: the run is saved
            process.terminate()
            process.join(5)
        messages.close()
        messages.join_thread()
