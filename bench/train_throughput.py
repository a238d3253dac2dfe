"""Benchmark: training and evaluation images/s, the study's way versus ours.

    python bench/train_throughput.py --data ../shared/datasets/ham10000 --model cnn --size 32
        [--images 2000] [--epochs 3] [--batch-size 32] [--repeats 5] [--json]

A fixed random subset of `--images` images (seed 0) is decoded at `--size` px through
`core.images.load_images` (into a temporary SKIN_LESION_HOME). Training, same fresh model
(same seed) each time:
(a) baseline, the study's way: `model.fit(x.astype(float32), y_onehot, batch_size, epochs,
verbose=0)` on in-memory NumPy arrays; (b) ours: `core.pipeline.make_dataset` (tf.data,
uint8 kept until the batch is cast, prefetch) + `fit`. A Keras callback times each epoch;
epochs 2..E count (the first holds the compile/trace time), images/s = images / median epoch
seconds. Evaluation: `core.model_io.predict_probabilities` through `compiled_call` (as
`LoadedModel.predict` in the app) versus `model.predict(x,
verbose=0)` on the same images, after one warm-up call each. Medians over `--repeats`; the
two ways alternate order between repeats. Ratios are ours / baseline (above 1: ours faster).
Without `--data` the shared HAM10000 copy is used when present, else a synthetic set.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import numpy as np
from _common import median, print_table, resolve_data, temp_home


def epoch_timer(keras: Any) -> Any:
    """A Keras callback collecting each epoch's seconds in `.seconds`."""

    class EpochTimer(keras.callbacks.Callback):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []
            self._t0 = 0.0

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self._t0 = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            self.seconds.append(time.perf_counter() - self._t0)

    return EpochTimer()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="dataset folder (default: shared HAM10000 or synthetic)")
    parser.add_argument("--synthetic", type=int, metavar="N",
                        help="use a synthetic HAM10000-layout set with N images per class")
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--images", type=int, default=2000, help="fixed subset size")
    parser.add_argument("--epochs", type=int, default=3, help="E: epochs 2..E are timed")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first epoch is not timed)")

    with temp_home() as home:
        data, described = resolve_data(args.data, args.synthetic, home)
        result = bench(args, data)
    result["data"] = described
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{args.model} at {args.size} px, {result['images']} images, batch "
          f"{args.batch_size}, epochs 2..{args.epochs} timed, {args.repeats} repeats; "
          f"{described}")
    rows = [{"what": "train", "baseline": result["train_baseline_images_per_s"],
             "ours": result["train_ours_images_per_s"], "ratio": result["train_ratio"]},
            {"what": "evaluate", "baseline": result["eval_baseline_images_per_s"],
             "ours": result["eval_ours_images_per_s"], "ratio": result["eval_ratio"]}]
    print_table(rows, [("what", "images/s", ""), ("baseline", "baseline", ".1f"),
                       ("ours", "ours", ".1f"), ("ratio", "ours/baseline", ".2f")])
    return 0


def bench(args: argparse.Namespace, data: Any) -> dict[str, Any]:
    """All measurements; TensorFlow is imported here, after SKIN_LESION_HOME is set."""
    from core.backend import keras
    from core.dataset import load_dataset
    from core.images import load_images
    from core.model_io import compiled_call, predict_probabilities
    from core.models import build_model
    from core.pipeline import make_dataset

    k = keras()
    dataset = load_dataset(data)
    all_images = load_images(dataset, args.size).images
    classes = dataset.classes
    all_labels = dataset.records["dx"].map({c: i for i, c in enumerate(classes)}).to_numpy()
    rng = np.random.default_rng(0)
    pick = np.sort(rng.permutation(len(all_images))[:args.images])
    images, labels = all_images[pick], all_labels[pick]
    n = len(images)
    onehot = np.eye(len(classes), dtype=np.float32)[labels]

    def fresh_model() -> Any:
        k.utils.set_random_seed(42)
        model = build_model(args.model, args.size, len(classes), weights=None)
        model.compile(optimizer=k.optimizers.Adam(1e-3), loss="categorical_crossentropy",
                      metrics=["accuracy"])
        return model

    def train_baseline() -> list[float]:
        model, timer = fresh_model(), epoch_timer(k)
        x = images.astype(np.float32)  # the study's float arrays (conversion not timed)
        model.fit(x, onehot, batch_size=args.batch_size, epochs=args.epochs, verbose=0,
                  callbacks=[timer])
        return timer.seconds

    def train_ours() -> list[float]:
        model, timer = fresh_model(), epoch_timer(k)
        ds = make_dataset(images, labels, len(classes), args.batch_size, shuffle_seed=42)
        model.fit(ds, epochs=args.epochs, verbose=0, callbacks=[timer], shuffle=False)
        return timer.seconds

    eval_model = fresh_model()
    compiled = compiled_call(eval_model)  # as `LoadedModel.predict` in the app

    def eval_baseline() -> float:
        t0 = time.perf_counter()
        eval_model.predict(images.astype(np.float32), verbose=0)
        return time.perf_counter() - t0

    def eval_ours() -> float:
        t0 = time.perf_counter()
        predict_probabilities(eval_model, images, call=compiled)
        return time.perf_counter() - t0

    eval_baseline()
    eval_ours()  # warm-up (tracing) of both
    train: dict[str, list[float]] = {"baseline": [], "ours": []}
    evaluate: dict[str, list[float]] = {"baseline": [], "ours": []}
    epochs: dict[str, list[list[float]]] = {"baseline": [], "ours": []}
    for repeat in range(args.repeats):
        order = ("baseline", "ours") if repeat % 2 == 0 else ("ours", "baseline")
        for way in order:
            seconds = train_baseline() if way == "baseline" else train_ours()
            epochs[way].append(seconds)
            train[way].append(n / median(seconds[1:]))
            evaluate[way].append(n / (eval_baseline() if way == "baseline" else eval_ours()))
    result: dict[str, Any] = {"model": args.model, "size": args.size, "images": n,
                              "epochs": args.epochs, "batch_size": args.batch_size,
                              "repeats": args.repeats}
    for way in ("baseline", "ours"):
        result[f"train_{way}_images_per_s"] = median(train[way])
        result[f"eval_{way}_images_per_s"] = median(evaluate[way])
        result[f"first_epoch_{way}_s"] = median(s[0] for s in epochs[way])
    result["train_ratio"] = result["train_ours_images_per_s"] / result[
        "train_baseline_images_per_s"]
    result["eval_ratio"] = result["eval_ours_images_per_s"] / result["eval_baseline_images_per_s"]
    return result


if __name__ == "__main__":
    sys.exit(main())
