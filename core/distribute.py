"""Where a run trains: the `tf.distribute` strategy, logical CPU devices, mixed precision.

`default` trains on one device (the first GPU, else the CPU); `mirrored` mirrors the model on
every local GPU (or on the logical CPU devices `--cpu-devices N` makes); `multi-worker` runs
`MultiWorkerMirroredStrategy` across the hosts the `TF_CONFIG` environment variable lists.
Worker 0 (or the task called "chief") is the chief: only it writes the run folder.

TensorFlow fixes its devices when it first uses them, so the CPU split and a multi-worker
strategy must be set up before anything else touches TensorFlow; `make_distribution` is the
first thing a run does.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from core.backend import keras, tf
from core.errors import DatasetError, TrainingError

STRATEGIES = ("default", "mirrored", "multi-worker")
GUI_STRATEGIES = ("default", "mirrored")  # multi-worker needs TF_CONFIG and a fresh process


@dataclass
class Distribution:
    """The strategy a run uses and what the rest of the run needs to know about it."""

    name: str
    strategy: Any
    mixed_precision: bool = False
    description: str = "CPU"
    _stop_fn: Any = field(default=None, repr=False)

    @property
    def replicas(self) -> int:
        """Replicas in sync across every worker (1 for `default`)."""
        return int(self.strategy.num_replicas_in_sync)

    @property
    def multi_worker(self) -> bool:
        return self.name == "multi-worker"

    @property
    def is_chief(self) -> bool:
        """Whether this process writes the run folder (always, except multi-worker workers
        other than the chief)."""
        if not self.multi_worker:
            return True
        resolver = self.strategy.cluster_resolver
        task_type, task_id = resolver.task_type, resolver.task_id
        if task_type in (None, "chief"):
            return True
        has_chief = "chief" in resolver.cluster_spec().as_dict()
        return task_type == "worker" and task_id == 0 and not has_chief

    @property
    def plain(self) -> bool:
        """One device in float32: the model that trains is the model that is saved."""
        return self.name == "default" and not self.mixed_precision

    @contextmanager
    def scope(self) -> Iterator[None]:
        """Build or load the model that trains here: the strategy's scope, and the
        mixed_float16 policy when asked (restored afterwards)."""
        mixed = keras().mixed_precision
        previous = mixed.dtype_policy()
        if self.mixed_precision:
            mixed.set_dtype_policy("mixed_float16")
        try:
            with self.strategy.scope():
                yield
        finally:
            mixed.set_dtype_policy(previous)

    def any_stop(self, local: bool) -> bool:
        """Whether any worker wants to stop. Every worker must call this at the same points,
        so all of them leave the training loop after the same batch."""
        if not self.multi_worker:
            return local
        tf_ = tf()
        if self._stop_fn is None:
            strategy = self.strategy

            @tf_.function
            def any_stop(flag: Any) -> Any:
                def replica(value: Any) -> Any:  # identity: a value of this replica
                    return tf_.distribute.get_replica_context().all_reduce(
                        "SUM", tf_.identity(value))
                return strategy.reduce("MEAN", strategy.run(replica, args=(flag,)), axis=None)

            self._stop_fn = any_stop
        return bool(self._stop_fn(tf_.constant(1.0 if local else 0.0)) > 0)


    def barrier(self) -> None:
        """Wait until every worker gets here (multi-worker only; a no-op otherwise).

        The workers leave together: a worker that exits while the chief still evaluates
        makes the chief's coordination service log that "the tasks have crashed". Raises
        `TrainingError` when another worker died instead of arriving.
        """
        if not self.multi_worker:
            return
        try:
            self.any_stop(False)
        except Exception as exc:  # TensorFlow raises several types when a peer is gone
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise TrainingError("another worker stopped before the run was saved (it was "
                                f"killed or failed): {first[:200]}") from exc


def split_cpu(devices: int) -> None:
    """Split the CPU into `devices` logical devices (before TensorFlow initialises them)."""
    tf_ = tf()
    cpus = tf_.config.list_physical_devices("CPU")
    wanted = [tf_.config.LogicalDeviceConfiguration() for _ in range(devices)]
    try:
        tf_.config.set_logical_device_configuration(cpus[0], wanted)
    except RuntimeError as exc:  # devices already initialised in this process
        have = len(tf_.config.list_logical_devices("CPU"))
        if have != devices:
            raise DatasetError(
                f"--cpu-devices {devices} must be set before TensorFlow starts; this process "
                f"already runs it with {have} CPU device(s) (use the command line)") from exc


def _gpu_names() -> list[str]:
    tf_ = tf()
    names = []
    for gpu in tf_.config.list_physical_devices("GPU"):
        try:
            details = tf_.config.experimental.get_device_details(gpu)
        except (ValueError, RuntimeError):
            details = {}
        names.append(str(details.get("device_name") or gpu.name))
    return names


def describe(strategy: Any, name: str = "default") -> str:
    """The devices in words, e.g. "CPU", "CPU (2 replicas)", "GPU: NVIDIA H100 (2 replicas)"."""
    tf_ = tf()
    try:
        devices = list(strategy.extended.worker_devices)
    except RuntimeError:  # the default strategy: TF's first GPU, else the CPU
        devices = []
    on_gpu = any("GPU" in d.upper() for d in devices) if devices else bool(
        tf_.config.list_logical_devices("GPU"))
    replicas = int(strategy.num_replicas_in_sync)
    kind = "CPU"
    if on_gpu:
        names = sorted(set(_gpu_names())) or ["GPU"]
        kind = "GPU: " + ", ".join(names)
    extra = []
    if replicas > 1:
        extra.append(f"{replicas} replicas")
    if name == "multi-worker":
        workers = len(strategy.cluster_resolver.cluster_spec().as_dict().get("worker", [])) or 1
        extra.append(f"{workers} worker{'s' * (workers != 1)}")
    return kind + (f" ({', '.join(extra)})" if extra else "")


def _strategy(name: str, cpu_devices: int) -> Any:
    tf_ = tf()
    if name == "multi-worker":
        try:
            return tf_.distribute.MultiWorkerMirroredStrategy()
        except (RuntimeError, ValueError) as exc:
            raise DatasetError("the multi-worker strategy must start in a fresh process (the "
                               "command line) with a valid TF_CONFIG: "
                               f"{str(exc).splitlines()[0][:200]}") from exc
    if name == "mirrored":
        if tf_.config.list_logical_devices("GPU"):
            return tf_.distribute.MirroredStrategy()  # every local GPU
        cpus = [d.name for d in tf_.config.list_logical_devices("CPU")]
        return tf_.distribute.MirroredStrategy(cpus[:cpu_devices] if cpu_devices else cpus)
    return tf_.distribute.get_strategy()


def make_distribution(strategy: str, cpu_devices: int = 0,
                      mixed_precision: bool = False) -> Distribution:
    """Set up the devices and the strategy a run asks for; call before any other TF work."""
    if strategy not in STRATEGIES:
        raise DatasetError(f"unknown strategy {strategy!r}; choose from {', '.join(STRATEGIES)}")
    if strategy == "multi-worker" and "TF_CONFIG" in os.environ:
        try:
            json.loads(os.environ["TF_CONFIG"])
        except ValueError as exc:
            raise DatasetError(f"TF_CONFIG is not valid JSON: {exc}") from exc
    if cpu_devices:
        split_cpu(cpu_devices)
    made = _strategy(strategy, cpu_devices)
    return Distribution(strategy, made, mixed_precision, describe(made, strategy))

