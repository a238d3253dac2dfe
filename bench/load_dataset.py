"""Benchmark: seconds to decode every image of a dataset, cold and warm cache, and peak memory.

    python bench/load_dataset.py --data ../shared/datasets/ham10000 --size 32 64 128 [--json]

Cold = an empty decoded-image cache (the JPEG files themselves may be in the OS page cache);
warm = the second load, from our cache. `--baseline` also times the study's way: a pandas
`map` of `np.asarray(Image.open(p).resize((s, s)))` in one process. Each measurement runs in
a fresh subprocess so its peak resident memory is its own. *cpu s* is the process's user +
system CPU time over the timed part, all threads: the work done, whatever else the machine
is running (wall seconds on a shared machine are not).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {root!r})
mode, data, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
import numpy as np
import pandas  # core.dataset imports it lazily; the app preloads it in the background,
#               and the baseline imports it before its timer too
from PIL import Image
from core.dataset import load_dataset
from core.images import load_images
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
if mode == "baseline":  # the study's way; reading the CSV is not timed
    paths = load_dataset(data).records["path"]
    start, start_cpu = time.perf_counter(), cpu()
    images = np.stack(paths.map(lambda p: np.asarray(Image.open(p).resize((size, size)))))
else:  # ours: reading the CSV, matching files, fingerprint and decoding (or cache) all timed
    start, start_cpu = time.perf_counter(), cpu()
    images = load_images(load_dataset(data), size).images
seconds, cpu_seconds = time.perf_counter() - start, cpu() - start_cpu
peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"seconds": seconds, "cpu_s": cpu_seconds, "peak_mib": peak_mib,
                  "n": len(images)}}))
"""


def measure(mode: str, data: str, size: int, home: str) -> dict[str, float]:
    """Run one load in a fresh process with SKIN_LESION_HOME=home; return its figures."""
    env = {**os.environ, "SKIN_LESION_HOME": home}
    out = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT)), mode, data,
                          str(size)], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench(data: str, size: int, repeats: int, baseline: bool) -> dict[str, object]:
    """Median cold, warm (and baseline) seconds over `repeats` runs, with peak memory."""
    cold, warm, base = [], [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as home:
            cold.append(measure("ours", data, size, home))
            warm.append(measure("ours", data, size, home))
        if baseline:
            base.append(measure("baseline", data, size, tempfile.gettempdir()))
    result: dict[str, object] = {
        "size": size, "n_images": int(cold[0]["n"]), "repeats": repeats,
        "cold_s": statistics.median(r["seconds"] for r in cold),
        "warm_s": statistics.median(r["seconds"] for r in warm),
        "cold_cpu_s": statistics.median(r["cpu_s"] for r in cold),
        "cold_peak_mib": max(r["peak_mib"] for r in cold),
        "warm_peak_mib": max(r["peak_mib"] for r in warm),
    }
    if baseline:
        result["baseline_s"] = statistics.median(r["seconds"] for r in base)
        result["baseline_peak_mib"] = max(r["peak_mib"] for r in base)
        result["baseline_cpu_s"] = statistics.median(r["cpu_s"] for r in base)
        result["cold_speedup"] = result["baseline_s"] / result["cold_s"]  # type: ignore[operator]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--size", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", action="store_true", help="also time the study's way")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    results = [bench(args.data, s, args.repeats, args.baseline) for s in args.size]
    if args.json:
        print(json.dumps(results[0] if len(results) == 1 else {"results": results}, indent=2))
        return 0
    print(f"{'size':>5} {'images':>7} {'cold s':>8} {'warm s':>8} {'peak MiB':>9} "
          f"{'cold cpu s':>11}"
          + (f" {'baseline s':>11} {'speed-up':>9} {'baseline cpu s':>15}" if args.baseline
             else ""))
    for r in results:
        line = (f"{r['size']:>5} {r['n_images']:>7} {r['cold_s']:>8.2f} {r['warm_s']:>8.2f} "
                f"{r['cold_peak_mib']:>9.0f} {r['cold_cpu_s']:>11.2f}")
        if args.baseline:
            line += (f" {r['baseline_s']:>11.2f} {r['cold_speedup']:>8.1f}x"
                     f" {r['baseline_cpu_s']:>15.2f}")
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
