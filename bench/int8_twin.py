"""Benchmark: the int8 LiteRT twin against the float twin (and Keras): agreement and speed.

    python bench/int8_twin.py [--model resources/models/default.keras] [--data FOLDER]
        [--images 62] [--repeats 20] [--tta recipe|on|off] [--json]

For one model with its stored recipe (flip views, temperature, gate), per runtime:

* one image, whole recipe: `Classifier.classify` of one decoded image, median ms over
  `--repeats` calls after a warm-up (decoding excluded: it is the same for every runtime);
* batch: `classify` of `--images` decoded images at once, images/s (median of 3);
* with `--data` (a labelled HAM10000-layout folder, e.g. `main.py data export --part val`):
  balanced accuracy and macro AUC of each runtime on it, and the int8 twin's top-1 agreement
  with the float twin and with Keras.

Without an int8 twin (`tools/package_model.py --int8 N` builds one) the float twin and
Keras are measured.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

import numpy as np
from _common import ROOT, print_table, timed_ms

RUNTIMES = {"int8 twin": "litert", "float twin": "litert-float", "Keras": "keras"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "resources" / "models" / "default.keras"))
    parser.add_argument("--data", help="labelled folder for agreement and accuracy")
    parser.add_argument("--images", type=int, default=62)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--tta", choices=("recipe", "on", "off"), default="recipe",
                        help="flip views: as the model's recipe says (default), or forced")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from core.dataset import load_dataset
    from core.images import load_images
    from core.metrics import compute_metrics
    from core.twin import open_model

    models = {name: open_model(args.model, runtime) for name, runtime in RUNTIMES.items()}
    if models["int8 twin"].runtime != "LiteRT int8":
        print(f"{os.path.basename(args.model)} has no current int8 twin "
              "(tools/package_model.py --int8 N builds it): float twin and Keras only")
        del models["int8 twin"]
    info = models["Keras"].info
    tta = {"recipe": None, "on": True, "off": False}[args.tta]
    results: dict[str, Any] = {"model": os.path.basename(args.model), "cpus": os.cpu_count(),
                               "tta": info.tta if tta is None else tta}
    images = labels = None
    if args.data:
        dataset = load_dataset(args.data)
        images = load_images(dataset, info.image_size, info.crop, use_cache=False).images
        index = {c: i for i, c in enumerate(info.classes)}
        labels = dataset.records["dx"].map(index).to_numpy()
    else:
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, (args.images, info.image_size, info.image_size, 3),
                              dtype=np.uint8)
    batch = images[: args.images]
    rows = []
    answers = {}
    for name, model in models.items():
        one = timed_ms(lambda m=model: m.classify(batch[:1], tta=tta), args.repeats)
        many = timed_ms(lambda m=model: m.classify(batch, tta=tta), 3)
        row: dict[str, Any] = {"runtime": name, "one_ms": one,
                               "batch_per_s": len(batch) / many * 1e3}
        if labels is not None:
            proba = model.classify(images, tta=tta).probabilities
            answers[name] = proba.argmax(1)
            figures = compute_metrics(labels, proba, info.classes)
            row.update(balanced_accuracy=figures["balanced_accuracy"],
                       macro_auc=figures["macro_auc"])
        rows.append(row)
    if "int8 twin" in answers:
        for other in ("float twin", "Keras"):
            agree = float((answers["int8 twin"] == answers[other]).mean())
            results[f"int8_top1_agreement_with_{other.split()[0].lower()}"] = agree
    results["runtimes"] = rows
    results["images"] = None if labels is None else len(labels)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    columns = [("runtime", "runtime", ""), ("one_ms", "one image, recipe (ms)", ".1f"),
               ("batch_per_s", f"batch of {len(batch)} (images/s)", ".0f")]
    if labels is not None:
        columns += [("balanced_accuracy", "balanced accuracy", ".4f"),
                    ("macro_auc", "macro AUC", ".4f")]
    print_table(rows, columns)
    for key, value in results.items():
        if key.startswith("int8_top1"):
            print(f"{key}: {value:.4f} on {results['images']} images")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
