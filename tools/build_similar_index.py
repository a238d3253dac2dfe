"""Build the similar-cases index that ships beside the bundled model.

    python tools/build_similar_index.py [--model resources/models/default.keras] \\
        [--data ../shared/datasets/ham10000] [--runtime auto]

Reads the image ids the model file says it was trained on, decodes those images of the
HAM10000 folder at the model's input, takes the familiarity gate's features
(`Classifier.features`) and writes `X.similar.npz` beside `X.keras` (`core.similar`): ids,
diagnoses, PCA-reduced float16 unit vectors and the model's SHA-256. No pixels, no paths.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core import paths  # noqa: E402
from core.cli import Progress  # noqa: E402
from core.inference import resolve_model  # noqa: E402
from core.similar import build_index, index_path  # noqa: E402

DEFAULT_DATA = paths.PROJECT_ROOT.parent / "shared" / "datasets" / "ham10000"
MAX_MB = 10


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=paths.BUNDLED_MODEL)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="HAM10000 folder")
    parser.add_argument("--runtime", default="auto",
                        choices=["auto", "litert", "litert-float", "keras"])
    args = parser.parse_args()
    started = time.monotonic()
    model = resolve_model(args.model, args.runtime, status=print)
    if not model.training_ids:
        print(f"error: {args.model.name} does not record its training image ids")
        return 2
    name = args.model.name
    index = build_index(model, args.data, sorted(model.training_ids),
                        source=f"HAM10000 (CC BY-NC 4.0): the training part of {name}",
                        on_progress=Progress("indexing"))
    target = index_path(args.model)
    index.save(target)
    size_mb = target.stat().st_size / 1e6
    print(f"wrote {target} ({len(index)} of {len(model.training_ids)} training images, "
          f"{index.vectors.shape[1]} dims, {size_mb:.2f} MB) in "
          f"{time.monotonic() - started:.0f} s with {model.runtime}")
    if size_mb > MAX_MB:
        print(f"error: the index is over {MAX_MB} MB")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
