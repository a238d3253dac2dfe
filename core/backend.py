"""Lazy, quiet import of TensorFlow/Keras (importing it costs seconds; only do it when needed)."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

from core.errors import ModelError

_lock = threading.Lock()


@contextmanager
def quiet_stderr() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null: C++ libraries log there before any setting applies."""
    saved = os.dup(2)
    try:
        sys.stderr.flush()
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def keras() -> ModuleType:
    """Import and return `keras`, without TensorFlow's start-up chatter on stderr."""
    if "keras" in sys.modules and "tensorflow" in sys.modules:
        return sys.modules["keras"]
    with _lock:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        try:
            with quiet_stderr():  # TensorFlow logs CUDA probing to fd 2
                import keras as keras_module
                import tensorflow  # noqa: F401  (registers kernels while fd 2 is quiet)
        except ImportError as exc:
            raise ModelError(f"TensorFlow/Keras is not installed or broken: {exc}") from exc
    return keras_module


def tf() -> ModuleType:
    """Import and return `tensorflow` quietly."""
    keras()
    return sys.modules["tensorflow"]


def release_memory() -> None:
    """Give back what a finished run leaves behind, so a long app session that trains many
    models creeps less: Keras' global state and TensorFlow's kernel caches
    (`clear_session`), unreachable objects (cycles), and the heap pages glibc keeps after
    freeing them (`malloc_trim`). Measured with `bench/memory.py --scenarios runs`: 30.5 MiB
    per run without it, 12-15 MiB with it (docs/benchmarks.md)."""
    import gc

    if "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session(free_memory=False)
    gc.collect()
    if sys.platform.startswith("linux"):
        import ctypes
        import ctypes.util

        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            libc.malloc_trim(0)
        except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to trim
            pass
