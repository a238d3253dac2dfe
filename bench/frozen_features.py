"""Benchmark: per-epoch seconds of a frozen transfer model, backbone every epoch vs cached.

    python bench/frozen_features.py --data ../shared/datasets/ham10000 --model mobilenetv2
        --size 96 --weights PATH|none [--images 2000] [--epochs 3] [--repeats 5] [--json]

Both ways run `core.training.train` with the same config and seed, except
`cache_features`: the study's way (`False`) pushes every image through the frozen backbone
in every epoch; ours (`True`) runs the backbone once over all images (the one-off
extraction, timed from the training's status messages, before epoch 1) and then trains only
the head on the cached features. Epoch seconds come from the `on_epoch` hook
(`EpochResult.seconds`); epochs 2..E count. The feature cache on disk is deleted before each
run, so the extraction is always measured (with `--weights none` nothing is cached anyway).

Reported (medians over `--repeats`): epoch seconds of both ways, the speed-up, the one-off
extraction, total training seconds (extraction + all epochs), and both runs' last-epoch
validation accuracy / loss and test balanced accuracy / accuracy (they should agree within
noise; the cached features are float16). `--images N` trains on a random N-image subset
(a temporary HAM10000-layout folder of symlinks, lesion ids kept). Without `--data` the
shared HAM10000 copy is used when present, else a synthetic set (`--synthetic N`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from _common import median, print_table, resolve_data, subset_dataset, temp_home

METRICS = ("val_accuracy", "val_loss", "test_balanced_accuracy", "test_accuracy")


def one_run(args: argparse.Namespace, data: Path, home: Path, cache: bool) -> dict[str, Any]:
    """Train once (cache_features=`cache`) and return epoch seconds, extraction and metrics."""
    from core.training import EpochResult, TrainConfig, train

    shutil.rmtree(home / "cache" / "features", ignore_errors=True)
    epochs: list[float] = []
    marks: dict[str, float] = {}

    def on_status(message: str) -> None:
        if message.startswith("computing the frozen backbone"):
            marks["extract_start"] = time.perf_counter()
        elif message.startswith("backbone features"):
            marks["extract_end"] = time.perf_counter()

    def on_epoch(result: EpochResult) -> None:
        epochs.append(result.seconds)

    config = TrainConfig(data_dir=str(data), model=args.model, image_size=args.size,
                         epochs=args.epochs, batch_size=args.batch_size, balance=args.balance,
                         seed=args.seed, weights=args.weights, cache_features=cache)
    t0 = time.perf_counter()
    result = train(config, out_dir=home / "runs" / f"{'ours' if cache else 'baseline'}-"
                   f"{time.time_ns()}", on_epoch=on_epoch, on_status=on_status)
    wall = time.perf_counter() - t0
    extraction = marks.get("extract_end", 0.0) - marks.get("extract_start", 0.0)
    last = result.history[-1] if result.history else {}
    return {"epoch_s": epochs, "extraction_s": extraction, "wall_s": wall,
            "training_s": extraction + sum(epochs),
            "feature_cache": result.metrics["feature_cache"],
            "val_accuracy": last.get("val_accuracy", float("nan")),
            "val_loss": last.get("val_loss", float("nan")),
            "test_balanced_accuracy": result.metrics["balanced_accuracy"],
            "test_accuracy": result.metrics["accuracy"],
            "train_images": result.metrics["train_images"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="dataset folder (default: shared HAM10000 or synthetic)")
    parser.add_argument("--synthetic", type=int, metavar="N",
                        help="use a synthetic HAM10000-layout set with N images per class")
    parser.add_argument("--model", default="mobilenetv2",
                        help="a transfer model: mobilenetv2, efficientnetb0 or vgg16")
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--weights", default="none",
                        help="'none' (random backbone), 'imagenet' (download) or a weights file")
    parser.add_argument("--images", type=int, default=2000,
                        help="random subset of the dataset (0: all images)")
    parser.add_argument("--epochs", type=int, default=3, help="E: epochs 2..E are compared")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--balance", default="resample:500", help="as TrainConfig.balance")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (epochs 2..E are compared)")

    with temp_home() as home:
        data, described = resolve_data(args.data, args.synthetic, home)
        data = subset_dataset(data, args.images or None, home / "subset")
        runs: dict[str, list[dict[str, Any]]] = {"baseline": [], "ours": []}
        for repeat in range(args.repeats):
            order = (False, True) if repeat % 2 == 0 else (True, False)
            for cache in order:
                runs["ours" if cache else "baseline"].append(one_run(args, data, home, cache))
    summary = {way: {"epoch_s": median(median(r["epoch_s"][1:]) for r in rs),
                     "first_epoch_s": median(r["epoch_s"][0] for r in rs),
                     "extraction_s": median(r["extraction_s"] for r in rs),
                     "training_s": median(r["training_s"] for r in rs),
                     "wall_s": median(r["wall_s"] for r in rs),
                     "feature_cache": rs[0]["feature_cache"],
                     **{m: median(r[m] for r in rs) for m in METRICS}}
               for way, rs in runs.items()}
    result: dict[str, Any] = {
        "data": described, "images": args.images or "all", "model": args.model,
        "size": args.size, "weights": args.weights, "epochs": args.epochs,
        "balance": args.balance, "train_images": runs["ours"][0]["train_images"],
        "repeats": args.repeats, **summary,
        "epoch_speedup": summary["baseline"]["epoch_s"] / summary["ours"]["epoch_s"],
        "training_speedup": summary["baseline"]["training_s"] / summary["ours"]["training_s"],
        "val_accuracy_difference": summary["ours"]["val_accuracy"]
        - summary["baseline"]["val_accuracy"],
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{args.model} at {args.size} px, weights {args.weights}, {args.epochs} epochs on "
          f"{result['train_images']} training images ({described}, subset "
          f"{result['images']}), {args.repeats} repeats")
    rows = [{"way": f"{way} ({'cache_features' if way == 'ours' else 'backbone each epoch'})",
             **summary[way]} for way in ("baseline", "ours")]
    print_table(rows, [("way", "way", ""), ("epoch_s", "epoch 2..E s", ".2f"),
                       ("first_epoch_s", "epoch 1 s", ".2f"),
                       ("extraction_s", "extraction s", ".2f"),
                       ("training_s", "total s", ".2f"), ("val_accuracy", "val acc", ".3f"),
                       ("val_loss", "val loss", ".3f"),
                       ("test_balanced_accuracy", "test bal acc", ".3f")])
    print(f"per-epoch speed-up (epochs 2..E, baseline / ours): {result['epoch_speedup']:.1f}x; "
          f"whole training incl. extraction: {result['training_speedup']:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
