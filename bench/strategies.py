"""Benchmark: seconds per epoch and training images/s under each strategy.

    python bench/strategies.py [--data DIR | --synthetic N] [--model cnn] [--size 32]
        [--epochs 3] [--batch-size 32] [--cpu-devices 2] [--mixed-precision] [--json]

Each variant is a fresh `main.py train` process (so `--cpu-devices` can split the CPU) in a
temporary SKIN_LESION_HOME, with the same seed and the same global batch: `default` with
`--batch-size B`, and `mirrored` with `--batch-size B / replicas`, where the replicas are
every local GPU or, without one, `--cpu-devices`. `--mixed-precision` adds the same two
variants with mixed_float16. Epoch seconds are read from `train`'s epoch lines; epochs 2..E
count (the first holds tracing), images/s = training images / median epoch seconds. The
first-epoch training loss is printed beside them: with one global batch it should agree
across variants up to dropout noise.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import ROOT, median, print_table, resolve_data, temp_home

EPOCH_LINE = re.compile(r"epoch (\d+)/\d+ \(([\d.]+)s\)\s+loss ([\d.]+)")


def gpu_count() -> int:
    from core.backend import tf

    return len(tf().config.list_physical_devices("GPU"))


def run_variant(data: Path, args: argparse.Namespace, extra: list[str],
                out: Path) -> dict[str, Any]:
    command = [sys.executable, str(ROOT / "main.py"), "train", "--data", str(data),
               "--model", args.model, "--image-size", str(args.size), "--epochs",
               str(args.epochs), "--seed", "1", "--json", "--out", str(out), *extra]
    done = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ),
                          check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(extra)} failed:\n{done.stderr[-3000:]}")
    epochs = [(int(n), float(s), float(loss)) for n, s, loss in
              EPOCH_LINE.findall(done.stderr)]
    result = json.loads(done.stdout)
    seconds = median(s for n, s, _ in epochs if n >= 2)
    return {"variant": " ".join(extra), "device": result["metrics"]["device"],
            "replicas": result["metrics"]["replicas"],
            "train_images": result["metrics"]["train_images"],
            "epoch_s": round(seconds, 3),
            "images_per_s": round(result["metrics"]["train_images"] / seconds, 1),
            "first_epoch_loss": round(epochs[0][2], 4)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="dataset folder (default: shared HAM10000 or synthetic)")
    parser.add_argument("--synthetic", type=int, metavar="N",
                        help="use a synthetic HAM10000-layout set with N images per class")
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32, help="the global batch")
    parser.add_argument("--cpu-devices", type=int, default=2,
                        help="logical CPU devices for mirrored when there is no GPU")
    parser.add_argument("--mixed-precision", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    gpus = gpu_count()
    replicas = gpus or args.cpu_devices
    if args.batch_size % replicas:
        parser.error(f"--batch-size must be a multiple of the {replicas} replicas")
    mirrored = ["--strategy", "mirrored", "--batch-size", str(args.batch_size // replicas)]
    if not gpus:
        mirrored += ["--cpu-devices", str(args.cpu_devices)]
    variants = [["--strategy", "default", "--batch-size", str(args.batch_size)], mirrored]
    if args.mixed_precision:
        variants += [[*v, "--mixed-precision"] for v in variants]
    rows = []
    with temp_home(), tempfile.TemporaryDirectory(prefix="bench-strategies-") as work:
        data, described = resolve_data(args.data, args.synthetic, Path(work))
        for index, extra in enumerate(variants):
            rows.append(run_variant(data, args, extra, Path(work) / f"run{index}"))
    if args.json:
        print(json.dumps({"data": described, "model": args.model, "size": args.size,
                          "global_batch": args.batch_size, "rows": rows}, indent=2))
    else:
        print(f"{described}, {args.model} at {args.size} px, global batch {args.batch_size}")
        print_table(rows, [("variant", "variant", ""), ("device", "device", ""),
                           ("epoch_s", "epoch s", ".3f"), ("images_per_s", "images/s", ".1f"),
                           ("first_epoch_loss", "epoch-1 loss", ".4f")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
