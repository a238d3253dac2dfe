"""`main.py predict IMAGE_OR_FOLDER ...`: classify image files and folders.

Registered by `core.cli.build_parser` through `add_predict_parser`.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path
from typing import Any

from core import refusal
from core.cli import NO_CHECK_HELP, NO_GATE_NOTICE, Progress, _add_runtime, _check, _emit, _say
from core.errors import SkinLesionError


def cmd_predict(args: argparse.Namespace) -> int:
    from core.inference import (
        expand_paths,
        keras_model,
        predict_files,
        predictions_csv,
        resolve_model,
    )

    files = expand_paths(args.images)
    if not files:
        raise SkinLesionError("no image files found in what was given")
    model = resolve_model(args.model, args.runtime, status=_say)
    predictions = []
    progress = Progress("classifying")
    for start in range(0, len(files), 256):
        predictions += predict_files(model, files[start:start + 256], tta=args.tta,
                                     check=_check(args))
        if len(files) > 256:
            progress(len(predictions), len(files))
    if args.csv is not None:
        from core.paths import write_text_atomic

        write_text_atomic(args.csv, predictions_csv(predictions))
        _say(f"wrote {args.csv} ({len(predictions)} rows)")
    if args.isic_csv is not None:
        from core.export import isic_submission_csv
        from core.paths import write_text_atomic

        text = isic_submission_csv(predictions)
        write_text_atomic(args.isic_csv, text)
        _say(f"wrote {args.isic_csv} (ISIC 2018 submission, {text.count(chr(10)) - 1} images)")
    if model.domain is None:
        _say(NO_GATE_NOTICE)
    lines = []
    for p in predictions:
        if p.error:
            lines.append(f"{p.path}: error: {p.error}")
        elif p.in_domain is False:
            lines.append(f"{p.path}: refused, {refusal.checks_text(p)}: {refusal.TEXT[p.refusal]}")
        else:
            checks = f"  [{refusal.checks_text(p)}]" if p.in_domain else ""
            lines.append(f"{p.path}: {p.label} ({p.full_name}) {p.confidence:.1%}{checks}")
    if args.gradcam is not None:
        lines += _write_gradcams(keras_model(model),
                                 [p.path for p in predictions if not p.error], args.gradcam)
    if any(not p.error for p in predictions):
        _say(f"answered by {model.runtime}")
    rows = [asdict(p) for p in predictions]
    if args.similar is not None:  # the nearest training images (core.similar)
        from core.similar import add_similar

        lines += add_similar(model, predictions, rows, args.similar, args.similar_data,
                             status=_say, on_progress=Progress("indexing training images"))
    _emit(args, rows, "\n".join(lines)
          + "\n(research software, not a medical device)")
    return 1 if any(p.error for p in predictions) else 0


def _write_gradcams(model: Any, files: list[str], out_dir: Path) -> list[str]:
    """Save a Grad-CAM overlay PNG per image; return one line per file written."""
    from PIL import Image

    from core.gradcam import display_image, gradcam, overlay
    from core.paths import atomic_path

    out_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for path in files:
        cam = gradcam(model, path)
        target = out_dir / f"{Path(path).stem}_gradcam.png"
        with atomic_path(target) as tmp:
            Image.fromarray(overlay(display_image(path), cam.heatmap)).save(tmp, format="PNG")
        lines.append(f"Grad-CAM ({cam.class_name}): {target}")
    return lines



def add_predict_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register `predict` (called by `core.cli.build_parser`)."""
    pr = sub.add_parser("predict", parents=[common], help="classify image files and folders")
    pr.add_argument("--model", type=Path, default=None, help="model file (default: bundled)")
    pr.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                    help="average over flips (test-time aug.; default: the model's recipe)")
    _add_runtime(pr)
    pr.add_argument("--no-modality-check", action="store_true", help=NO_CHECK_HELP)
    pr.add_argument("--gradcam", type=Path, default=None, metavar="OUT_DIR",
                    help="write a Grad-CAM overlay PNG per image into OUT_DIR")
    pr.add_argument("--csv", type=Path, default=None, metavar="OUT.csv",
                    help="also write one row per image (path, label, confidence, in_domain, "
                    "domain_score, one column per class, error)")
    pr.add_argument("--isic-csv", type=Path, default=None, metavar="OUT.csv",
                    help="also write the ISIC 2018 Task 3 submission format "
                    "(image,MEL,NV,BCC,AKIEC,BKL,DF,VASC), for the challenge's own scorer")
    pr.add_argument("--similar", type=int, default=None, metavar="K",
                    help="also list the K training images nearest to each classified image "
                    "in the model's feature space (refused images get none)")
    pr.add_argument("--similar-data", type=Path, default=None, metavar="DIR",
                    help="the HAM10000 folder, to give the similar images' paths (a "
                    "training run's own data folder is used when it exists)")
    pr.add_argument("images", nargs="+", type=Path, metavar="IMAGE_OR_FOLDER",
                    help="image files, or folders (searched recursively for images)")
    pr.set_defaults(func=cmd_predict)
