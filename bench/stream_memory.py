"""Benchmark: peak memory and throughput of training with and without `--stream`.

    python bench/stream_memory.py --data ../shared/datasets/ham10000 --images 500 2000 8000
        [--size 128] [--modes memory,stream,stream-nocache] [--repeats 1] [--json]

For each image count N (a random subset of the dataset, symlinked) and each mode, a fresh
process with an empty SKIN_LESION_HOME does what a run does with its data: read the dataset,
decode it (`memory`: `load_images`, the whole array; `stream`: `stream_images`, one chunked
pass that fills the cache file; `stream-nocache`: the same pass without a cache, so the
epoch decodes every image from its file in the tf.data map), split it (lesion split, no
balancing), then two epochs of a tiny model (average-pool, dense) through
`core.pipeline.make_dataset` on the training part, and one chunked pass of the gate's
texture statistics over it. The model is tiny on purpose: the figures are the data's.

Printed per run: peak resident memory (`ru_maxrss` of the child), seconds to prepare the
data, and training images/s of the second epoch (the input pipeline's throughput).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import median, peak_rss_mib, print_table, resolve_data, run_child, subset_dataset

MODES = ("memory", "stream", "stream-nocache")


def child(args: argparse.Namespace) -> dict[str, Any]:
    """One mode on one dataset, in this (fresh) process."""
    from core.backend import keras
    from core.dataset import load_dataset
    from core.domain import texture_statistics
    from core.images import load_images
    from core.pipeline import make_dataset, make_split
    from core.stream import stream_images
    from core.training import TrainConfig

    keras()
    after_import = peak_rss_mib()
    t0 = time.perf_counter()
    dataset = load_dataset(args.data)
    if args.child == "memory":
        images: Any = load_images(dataset, args.size).images
    else:
        images = stream_images(dataset, args.size, use_cache=args.child == "stream")
    labels = dataset.records["dx"].map({c: i for i, c in enumerate(dataset.classes)}).to_numpy()
    config = TrainConfig(data_dir=args.data, balance="none", image_size=args.size)
    split = make_split(config, dataset.records, labels, lambda _m: None)
    prepare_s = time.perf_counter() - t0

    layers = keras().layers
    model = keras().Sequential([keras().Input((args.size, args.size, 3)),
                                layers.Rescaling(1 / 255), layers.AveragePooling2D(8),
                                layers.Flatten(), layers.Dense(len(dataset.classes),
                                                               activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    train = make_dataset(images[split.train], labels[split.train], len(dataset.classes), 32,
                         shuffle_seed=1)
    ends: list[float] = []
    timer = keras().callbacks.LambdaCallback(
        on_epoch_begin=lambda *_: ends.append(time.perf_counter()),
        on_epoch_end=lambda *_: ends.append(time.perf_counter()))
    model.fit(train, epochs=2, verbose=0, callbacks=[timer])
    epoch_s = ends[3] - ends[2]  # the second epoch: no tracing, the pipeline's steady state
    texture_statistics(images[split.train])
    return {"images": len(dataset.records), "train_images": len(split.train),
            "prepare_s": prepare_s, "epoch_s": epoch_s,
            "images_per_s": len(split.train) / epoch_s, "after_import_mib": after_import,
            "peak_mib": peak_rss_mib()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="dataset folder (default: shared HAM10000 or synthetic)")
    parser.add_argument("--synthetic", type=int, metavar="N",
                        help="use a synthetic HAM10000-layout set with N images per class")
    parser.add_argument("--images", type=int, nargs="+", default=[500, 2000, 8000])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args)), flush=True)
        return 0
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if set(modes) - set(MODES):
        parser.error(f"unknown mode(s); choose from {', '.join(MODES)}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-stream-") as tmp:
        data, described = resolve_data(args.data, args.synthetic, Path(tmp))
        for n in args.images:
            subset = subset_dataset(data, n, Path(tmp) / f"subset-{n}")
            for mode in modes:
                runs = []
                for i in range(args.repeats):
                    home = Path(tmp) / f"home-{n}-{mode}-{i}"
                    home.mkdir()
                    runs.append(run_child(
                        [str(Path(__file__).resolve()), "--child", mode, "--data", str(subset),
                         "--size", str(args.size)],
                        env={"SKIN_LESION_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "3"}))
                row: dict[str, Any] = {"n": n, "mode": mode}
                for key in runs[0]:
                    row[key] = median(r[key] for r in runs)
                row["array_mib"] = row["images"] * args.size ** 2 * 3 / 2**20
                rows.append(row)
    if args.json:
        print(json.dumps({"data": described, "size": args.size, "repeats": args.repeats,
                          "rows": rows}, indent=2))
        return 0
    print(f"{described}, {args.size} px, median of {args.repeats}, fresh process each")
    print_table(rows, [("n", "images", "d"), ("mode", "mode", ""),
                       ("array_mib", "decoded MiB", ".0f"), ("peak_mib", "peak MiB", ".0f"),
                       ("after_import_mib", "after TF import MiB", ".0f"),
                       ("prepare_s", "prepare s", ".1f"), ("images_per_s", "train img/s", ".0f")])
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.exit(main())
