"""`main.py compare RUN_A RUN_B [--data FOLDER] [--json]`: is B really better than A?

Registered by `core.cli.build_parser` through `add_compare_parser`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core.cli import Progress, _add_runtime, _emit, _say
from core.compare import format_delta, format_value

DESCRIPTION = ("Classify the same images with two models (run folders or model files) and "
               "test whether B differs from A beyond noise: balanced accuracy and melanoma "
               "recall with paired lesion-resampled bootstrap 95% CIs, and McNemar's exact "
               "test on per-image correctness. Without --data, the images are the test part "
               "of the first run's split.")


def comparison_text(data: dict[str, Any]) -> str:
    """The text report of a `Comparison.to_dict()`: names, a table, McNemar, the sentence."""
    r = data["result"]
    unit = "lesions" if r["ci_unit"] == "lesion" else "images"
    rows = [("balanced accuracy", r["balanced_accuracy"], r["delta_balanced_accuracy"],
             r["delta_balanced_accuracy_ci95"])]
    if r["melanoma_recall"] is not None:
        rows.append(("melanoma recall", r["melanoma_recall"], r["delta_melanoma_recall"],
                     r["delta_melanoma_recall_ci95"]))
    lines = [f"A: {data['a']} ({data['runtimes'][0]})", f"B: {data['b']} ({data['runtimes'][1]})",
             f"images: {r['n_images']}, {data['part']} ({data['data']}); "
             f"CIs resample {r['n_units']} {unit}",
             f"{'':18s} {'A':>6s} {'B':>6s}  B - A (95% CI)"]
    lines += [f"{name:18s} {format_value(pair[0]):>6s} {format_value(pair[1]):>6s}  "
              f"{format_delta(delta, ci)}" for name, pair, delta, ci in rows]
    lines.append(f"McNemar exact test: A right/B wrong {r['a_right_b_wrong']}, "
                 f"A wrong/B right {r['a_wrong_b_right']}, p = {r['mcnemar_p']:.4g}")
    for name, seen in zip("AB", data["seen_in_training"], strict=True):
        if seen:
            lines.append(f"warning: {seen} of these images were used to train {name}; "
                         "its scores here are inflated")
    lines.append(r["sentence"])
    return "\n".join(lines)


def cmd_compare(args: argparse.Namespace) -> int:
    """Run the comparison and print it."""
    from core.compare import compare_models

    comparison = compare_models(args.run_a, args.run_b, args.data, runtime=args.runtime,
                                on_progress=Progress("decoding images"), status=_say)
    data = comparison.to_dict()
    _emit(args, data, comparison_text(data))
    return 0


def add_compare_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the `compare` subcommand to `sub` (the subparsers of `core.cli.build_parser`)."""
    parser = sub.add_parser("compare", parents=[common], description=DESCRIPTION,
                            help="paired test: is model B better than model A beyond noise?")
    parser.add_argument("run_a", type=Path, metavar="RUN_A", help="run folder or model file")
    parser.add_argument("run_b", type=Path, metavar="RUN_B", help="run folder or model file")
    parser.add_argument("--data", type=Path, default=None, metavar="FOLDER",
                        help="labelled folder to compare on (default: the first run's test "
                        "part)")
    _add_runtime(parser)
    parser.set_defaults(func=cmd_compare)
