"""Turn a run's model into a shippable file with its model card (e.g. the bundled default).

    python tools/package_model.py RUN_DIR/model.keras --card docs/model-card.md \
        --out resources/models/default.keras

The optimizer state is dropped (the file holds only what prediction needs) and the Markdown
card is stored inside the file, where the app's Models view shows it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.model_io import package_model  # noqa: E402

MAX_MB = 20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="a run's model.keras")
    parser.add_argument("--card", type=Path, required=True, help="Markdown model card")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    out = package_model(args.model, args.out, args.card.read_text(encoding="utf-8"))
    size_mb = out.stat().st_size / 1e6
    print(f"wrote {out} ({size_mb:.1f} MB)")
    if size_mb > MAX_MB:
        print(f"too large: the bundled model must stay under {MAX_MB} MB", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
