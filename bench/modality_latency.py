"""Benchmark: what the modality check costs per image (target: <= 5 ms on 2 cores).

    python bench/modality_latency.py [--repeats 200] [--runtime litert|keras]

Times `ModalityCheck.assess` on one image at a time (the Classify case) and on batches of
64 (a dropped folder), after a warm-up, on synthetic 224 px images resized to the check's
size; decoding is not included (`bench/litert_classify.py` times whole predictions). Prints
the median and the 90th percentile in milliseconds per image.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from _common import ROOT  # noqa: F401  (puts the project on sys.path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--runtime", choices=["litert", "keras"], default="litert")
    args = parser.parse_args()
    from core import negatives
    from core.modality import ModalityCheck

    check = ModalityCheck(runtime=args.runtime)
    rng = np.random.default_rng(0)
    kinds = list(negatives.KINDS)
    images = np.stack([negatives.KINDS[kinds[i % len(kinds)]](rng, check.size)
                       for i in range(64)])
    check.assess(images[:1])
    check.assess(images)
    single = []
    for i in range(args.repeats):
        t = time.perf_counter()
        check.assess(images[i % 64:i % 64 + 1])
        single.append((time.perf_counter() - t) * 1000)
    batch = []
    for _ in range(max(3, args.repeats // 64)):
        t = time.perf_counter()
        check.assess(images)
        batch.append((time.perf_counter() - t) * 1000 / len(images))
    q90 = statistics.quantiles(single, n=10)[-1]
    print(f"modality check ({check.runtime}, {check.size} px): one image "
          f"{statistics.median(single):.2f} ms median, {q90:.2f} ms p90; "
          f"batches of 64 {statistics.median(batch):.2f} ms per image")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
