"""Benchmark: single-image classification latency and batch throughput, as the app classifies.

    python bench/classify_latency.py --data ../shared/datasets/ham10000 --model cnn [--json]
    python bench/classify_latency.py --model-file MODEL.keras --files 50 --batch-images 1000

The model is built (untrained: speed does not depend on the weights; transfer models get
random backbone weights unless `--weights` says otherwise) or taken from `--model-file`,
saved with `core.model_io.save_model` and reloaded with `load_model`, as the app does.

(a) single image: `read_image` + `LoadedModel.predict` for one file at a time, median over
`--files` files after a warm-up; also with `tta=True`, and the baseline `read_image` +
`model.predict(x, verbose=0)` (Keras' own loop). (b) batch: `core.inference.predict_files` on
`--batch-images` files (the dataset's cycled when fewer) in chunks of `--chunk`, images/s.
Each figure is the median over `--repeats`. Without `--data` the shared HAM10000 copy is used
when present, else a synthetic set (`--synthetic N` forces one with N images per class).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import median, print_table, resolve_data, temp_home


def single_image(predict: Any, read: Any, files: list[str], warmup: int) -> dict[str, float]:
    """Median milliseconds per file of decoding, predicting and both, after `warmup` calls."""
    for f in files[:warmup]:
        predict(read(f))
    decode, infer, total = [], [], []
    for f in files:
        t0 = time.perf_counter()
        x = read(f)
        t1 = time.perf_counter()
        predict(x)
        t2 = time.perf_counter()
        decode.append((t1 - t0) * 1e3)
        infer.append((t2 - t1) * 1e3)
        total.append((t2 - t0) * 1e3)
    return {"decode_ms": median(decode), "predict_ms": median(infer), "total_ms": median(total)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="dataset folder (default: shared HAM10000 or synthetic)")
    parser.add_argument("--synthetic", type=int, metavar="N",
                        help="use a synthetic HAM10000-layout set with N images per class")
    parser.add_argument("--model", default="cnn", help="architecture to build (core.models)")
    parser.add_argument("--model-file", help="a .keras model to load instead of building one")
    parser.add_argument("--size", type=int, help="image size (default: the model's)")
    parser.add_argument("--weights", default="none",
                        help="transfer models: 'none' (random), 'imagenet' or a weights file")
    parser.add_argument("--files", type=int, default=50, help="files timed one at a time")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch-images", type=int, default=1000)
    parser.add_argument("--chunk", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    with temp_home() as home:
        data, described = resolve_data(args.data, args.synthetic, home)
        result = bench(args, data)
        result["data"] = described
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"model {result['model']} at {result['size']} px on {described}; "
          f"{result['files']} single files, {result['batch_images']} batch images, "
          f"{args.repeats} repeats")
    rows = [{"mode": k, **result["single"][k]} for k in ("baseline", "ours", "ours_tta")]
    print_table(rows, [("mode", "single image", ""), ("decode_ms", "decode ms", ".2f"),
                       ("predict_ms", "predict ms", ".2f"), ("total_ms", "total ms", ".2f")])
    print(f"single-image speed-up (baseline total / ours total): "
          f"{result['single_speedup']:.2f}x")
    print(f"batch: predict_files in chunks of {args.chunk}: "
          f"{result['batch_images_per_s']:.1f} images/s "
          f"({result['batch_seconds']:.2f} s for {result['batch_images']} images)")
    return 0


def bench(args: argparse.Namespace, data: Path) -> dict[str, Any]:
    """All measurements; TensorFlow is imported here, after SKIN_LESION_HOME is set."""
    from core.dataset import load_dataset
    from core.images import read_image
    from core.inference import predict_files
    from core.model_io import ModelInfo, load_model, save_model
    from core.models import MODELS, build_model

    dataset = load_dataset(data)
    paths_ = [str(p) for p in dataset.records["path"]]
    with tempfile.TemporaryDirectory(prefix="bench-model-") as tmp:
        if args.model_file:
            source = load_model(args.model_file)
            model, info = source.model, source.info
        else:
            size = args.size or MODELS[args.model].image_size
            weights = None if args.weights == "none" else args.weights
            model = build_model(args.model, size, len(dataset.classes), weights=weights)
            info = ModelInfo(classes=list(dataset.classes), image_size=size,
                             architecture=args.model)
        loaded = load_model(save_model(model, Path(tmp) / "model.keras", info))
    size, crop = loaded.info.image_size, loaded.info.crop
    files = list(itertools.islice(itertools.cycle(paths_), args.files))
    batch_files = list(itertools.islice(itertools.cycle(paths_), args.batch_images))

    def read(f: str) -> Any:
        return read_image(f, size, crop)[None]

    modes = {
        "baseline": lambda x: loaded.model.predict(x.astype("float32"), verbose=0),
        "ours": lambda x: loaded.predict(x),
        "ours_tta": lambda x: loaded.predict(x, tta=True),
    }
    single: dict[str, list[dict[str, float]]] = {k: [] for k in modes}
    batch_seconds = []
    predict_files(loaded, batch_files[:args.chunk], args.chunk)  # warm-up
    for _ in range(args.repeats):
        for name, fn in modes.items():
            single[name].append(single_image(fn, read, files, args.warmup))
        t0 = time.perf_counter()
        for start in range(0, len(batch_files), args.chunk):
            predict_files(loaded, batch_files[start:start + args.chunk], args.chunk)
        batch_seconds.append(time.perf_counter() - t0)
    summary = {name: {key: median(r[key] for r in runs) for key in runs[0]}
               for name, runs in single.items()}
    seconds = median(batch_seconds)
    return {
        "model": loaded.info.architecture or args.model, "size": size, "crop": crop,
        "files": len(files), "repeats": args.repeats, "single": summary,
        "single_speedup": summary["baseline"]["total_ms"] / summary["ours"]["total_ms"],
        "tta_cost": summary["ours_tta"]["total_ms"] / summary["ours"]["total_ms"],
        "batch_images": len(batch_files), "chunk": args.chunk, "batch_seconds": seconds,
        "batch_images_per_s": len(batch_files) / seconds,
    }


if __name__ == "__main__":
    sys.exit(main())
