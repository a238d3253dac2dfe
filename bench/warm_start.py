"""Benchmark: seconds from the start of a training call to its first training batch, warm cache.

    python bench/warm_start.py --data ../shared/datasets/ham10000 [--model cnn] [--size 32]
        [--balance resample:500] [--repeats 3] [--profile N] [--json]

What `train --data DIR --model cnn --image-size 32` does on a second run with the decoded-image
cache on (issue #22). Each run is a fresh process (`python bench/warm_start.py --child`) with
the same temporary SKIN_LESION_HOME: the first fills the image cache (the cold run, reported
too), the next `--repeats` are the warm starts. The child imports TensorFlow (reported as
`tf_import_s`, not part of the figure), then imports `core.training` (`core_import_s`), then
times `core.training.train(config)` from its call to the end of the first training batch
(`on_batch`'s first call; the run is then stopped, so nothing is evaluated or saved).

The phases are the functions `core.training` calls, timed by wrapping them in its namespace:
`load_dataset` (CSV and folder scan), `load_images` (the cache read), `make_split` (split and
resampling), `_start_run` (config.json and split.csv), `RunBoard` (TensorBoard writer),
`_build_models` (build and compile), `make_dataset` (tf.data pipelines) and `fit_loop` up to
the first batch's end (Keras' symbolic build, the step's trace, the first batch). `other` is
the rest. `--profile N` adds one more warm run under cProfile and prints its N functions with
the most cumulative time. Without `--data` the shared HAM10000 copy is used when present.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import median, print_table, resolve_data, run_child, temp_home

PHASES = ("load_dataset", "load_images", "make_split", "_start_run", "RunBoard", "_build_models",
          "make_dataset", "fit_loop")


def child(args: argparse.Namespace) -> dict[str, Any]:
    """One training call in this process, timed; returns its figures."""
    start = time.perf_counter()
    from core.backend import keras

    keras()
    tf_import = time.perf_counter() - start
    start = time.perf_counter()
    import core.training as training
    from core.cli import build_parser
    from core.config import from_arguments

    core_import = time.perf_counter() - start
    seconds: dict[str, float] = dict.fromkeys(PHASES, 0.0)
    marks: dict[str, float] = {}

    def timed(name: str, fn: Any) -> Any:
        def wrapper(*a: Any, **k: Any) -> Any:
            t0 = time.perf_counter()
            if name == "fit_loop":
                marks["fit_loop"] = t0
                return fn(*a, **k)  # timed up to the first batch, by on_batch
            try:
                return fn(*a, **k)
            finally:
                seconds[name] += time.perf_counter() - t0
        return wrapper

    for name in PHASES:
        setattr(training, name, timed(name, getattr(training, name)))
    argv = ["train", "--data", str(args.data), "--model", args.model, "--image-size",
            str(args.size), "--balance", args.balance]
    config = from_arguments(build_parser().parse_args(argv))

    def on_batch(_progress: Any) -> None:
        if "first_batch" not in marks:
            marks["first_batch"] = time.perf_counter()

    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    marks["start"] = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="warm-start-run-") as out:
        result = training.train(config, out_dir=Path(out) / "run", on_batch=on_batch,
                                should_stop=lambda: "first_batch" in marks)
    if profiler is not None:
        profiler.disable()
        import pstats

        stats_ = pstats.Stats(profiler, stream=sys.stderr)
        stats_.sort_stats("cumulative").print_stats(args.profile)
    if "first_batch" not in marks:
        raise RuntimeError(f"no training batch ran: {result.metrics}")
    seconds["fit_loop"] = marks["first_batch"] - marks["fit_loop"]
    total = marks["first_batch"] - marks["start"]
    return {"tf_import_s": tf_import, "core_import_s": core_import, "first_batch_s": total,
            **{f"{k}_s": v for k, v in seconds.items()},
            "other_s": total - sum(seconds.values())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="dataset folder (default: shared HAM10000 or synthetic)")
    parser.add_argument("--synthetic", type=int, metavar="N",
                        help="use a synthetic HAM10000-layout set with N images per class")
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--balance", default="resample:500")
    parser.add_argument("--repeats", type=int, default=3, help="warm runs (the median counts)")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="one more warm run under cProfile; print its top N functions")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return 0
    with temp_home("bench-warm-start-") as home:
        data, described = resolve_data(args.data, args.synthetic, home)
        argv = [__file__, "--child", "--data", str(data), "--model", args.model, "--size",
                str(args.size), "--balance", args.balance]
        cold = run_child(argv)
        warm = [run_child(argv) for _ in range(args.repeats)]
        if args.profile:
            import subprocess

            subprocess.run([sys.executable, *argv, "--profile", str(args.profile)], check=True,
                           stdout=subprocess.DEVNULL)
    keys = ["first_batch_s", *[f"{p}_s" for p in PHASES], "other_s", "tf_import_s",
            "core_import_s"]
    result = {"data": described, "model": args.model, "size": args.size,
              "balance": args.balance, "repeats": args.repeats,
              "cold": {k: cold[k] for k in keys},
              "warm_median": {k: median(r[k] for r in warm) for k in keys},
              "warm_runs": [r["first_batch_s"] for r in warm]}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{described}: {args.model} at {args.size} px, balance {args.balance}; "
          f"warm = median of {args.repeats} (runs: "
          + ", ".join(f"{s:.2f}" for s in result["warm_runs"]) + " s)")
    rows = [{"phase": k[:-2], "cold": cold[k], "warm": result["warm_median"][k]} for k in keys]
    print_table(rows, [("phase", "seconds", ""), ("cold", "cold run", ".2f"),
                       ("warm", "warm (median)", ".2f")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
