"""Helpers shared by the benchmark scripts (not a benchmark itself).

Every benchmark points SKIN_LESION_HOME at a temporary folder (`temp_home`), so the user's
decoded-image cache, feature cache, runs and settings are never touched.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED_HAM = ROOT.parent / "shared" / "datasets" / "ham10000"

if str(ROOT) not in sys.path:  # so `core`, `gui` and `tests` import from a script in bench/
    sys.path.insert(0, str(ROOT))


@contextmanager
def temp_home(prefix: str = "bench-home-") -> Iterator[Path]:
    """A temporary SKIN_LESION_HOME for the duration of the block (restored afterwards)."""
    previous = os.environ.get("SKIN_LESION_HOME")
    with tempfile.TemporaryDirectory(prefix=prefix) as home:
        os.environ["SKIN_LESION_HOME"] = home
        try:
            yield Path(home)
        finally:
            if previous is None:
                os.environ.pop("SKIN_LESION_HOME", None)
            else:
                os.environ["SKIN_LESION_HOME"] = previous


def resolve_data(data: str | None, synthetic: int | None, workdir: Path,
                 default_synthetic: int = 40, prefer_shared: bool = True) -> tuple[Path, str]:
    """The dataset folder to use and a short description of it.

    `--synthetic N` always makes a synthetic HAM10000-layout set (N images per class) in
    `workdir`; otherwise `--data`, else the shared HAM10000 copy when `prefer_shared` and it
    exists, else a synthetic set of `default_synthetic` images per class.
    """
    if synthetic is None and data:
        return Path(data), str(data)
    if synthetic is None and prefer_shared and (SHARED_HAM / "HAM10000_metadata.csv").is_file():
        return SHARED_HAM, str(SHARED_HAM)
    from tests.synthetic import make_ham

    per_class = synthetic or default_synthetic
    root = make_ham(workdir / "synthetic-ham", per_class=per_class)
    return root, f"synthetic make_ham(per_class={per_class})"


def subset_dataset(data: Path, n_images: int | None, dest: Path, seed: int = 0) -> Path:
    """A HAM10000-layout copy of `n_images` random images of `data` (symlinks, not copies).

    Lesion ids are kept, so the lesion split still groups images. Returns `data` itself
    when `n_images` is None or not smaller than the dataset.
    """
    from core.dataset import load_dataset

    records = load_dataset(data).records
    if n_images is None or n_images >= len(records):
        return data
    chosen = records.sample(n=n_images, random_state=seed).reset_index(drop=True)
    images = dest / "images"
    images.mkdir(parents=True, exist_ok=True)
    rows = ["lesion_id,image_id,dx"]
    for i, row in chosen.iterrows():
        image_id = f"IMG_{int(str(i)):07d}"
        source = Path(str(row["path"]))
        os.symlink(source.resolve(), images / f"{image_id}{source.suffix.lower()}")
        rows.append(f"{row['lesion_id']},{image_id},{row['dx']}")
    (dest / "HAM10000_metadata.csv").write_text("\n".join(rows) + "\n")
    return dest


def stats(values: Sequence[float]) -> dict[str, float]:
    """Median, min and max of `values`."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def median(values: Iterable[float]) -> float:
    """The median (NaN when there is nothing to take it of)."""
    values = list(values)
    return statistics.median(values) if values else float("nan")


def timed_ms(fn: Any, repeats: int) -> float:
    """Median milliseconds of `fn()` over `repeats` calls, after two warm-up calls."""
    fn()
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return median(times)


def percentile(values: Sequence[float], q: float) -> float:
    """The `q`-th percentile (0-100), nearest-rank on sorted values; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def run_child(argv: list[str], env: dict[str, str] | None = None,
              timeout: float | None = None) -> dict[str, Any]:
    """Run `python ARGV...` and return the JSON object on its last stdout line.

    Raises RuntimeError with the child's stderr tail when it fails.
    """
    done = subprocess.run([sys.executable, *argv], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout, check=False)
    lines = [line for line in done.stdout.strip().splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"child {argv[:2]} failed (exit {done.returncode}):\n"
                           + done.stderr[-3000:])
    return json.loads(lines[-1])


def vm_rss_mib() -> float:
    """This process's current resident memory (VmRSS from /proc/self/status) in MiB."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mib() -> float:
    """This process's peak resident memory so far (ru_maxrss, KiB on Linux) in MiB."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def print_table(rows: list[dict[str, Any]], columns: list[tuple[str, str, str]]) -> None:
    """Print `rows` as a table; `columns` are (key, header, format spec) triples."""
    cells = [[format(row[key], spec) if isinstance(row.get(key), int | float)
              and not isinstance(row.get(key), bool) else str(row.get(key, ""))
              for key, _, spec in columns] for row in rows]
    widths = [max([len(header)] + [len(c[i]) for c in cells])
              for i, (_, header, _) in enumerate(columns)]
    first = True
    for line in [[h for _, h, _ in columns], *cells]:
        print("  ".join(cell.ljust(w) if j == 0 else cell.rjust(w)
                        for j, (cell, w) in enumerate(zip(line, widths, strict=True))))
        if first:
            print("  ".join("-" * w for w in widths))
            first = False


def spin_events(seconds: float, until: Any = None) -> None:
    """Run the Qt event loop for `seconds`, or until `until()` is true (checked every 20 ms)."""
    from PySide6.QtCore import QEventLoop, QTimer

    end = time.monotonic() + seconds
    loop = QEventLoop()
    while time.monotonic() < end and not (until and until()):
        QTimer.singleShot(20, loop.quit)
        loop.exec()
