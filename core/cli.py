"""Command line: `python main.py {data summary,train,evaluate,predict,report} ...`.

Progress goes to stderr; results to stdout (as JSON with --json). Errors print one line and
exit non-zero, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from core import refusal
from core.arg_checks import check_folders
from core.config import add_train_arguments
from core.errors import CancelledError, SkinLesionError


class Progress:
    """Throttled progress lines on stderr (a rewritten line on a terminal)."""

    def __init__(self, label: str) -> None:
        self.label, self._last, self._tty = label, 0.0, sys.stderr.isatty()

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self._last < (0.2 if self._tty else 5.0):
            return
        self._last = now
        end = "\n" if (done >= total or not self._tty) else ""
        print(f"\r{self.label}: {done}/{total}", end=end, file=sys.stderr, flush=True)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2) if args.json else text)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


NO_GATE_NOTICE = ("notice: this model file has no familiarity gate (an older file): images "
                  "that are not dermoscopic are still refused, but a dermoscopic image unlike "
                  "its training images is diagnosed")


NO_CHECK_HELP = ("skip the app-wide check that refuses images that are not dermoscopic "
                 "(clinical photos, slides, scans, photos); the model's own gate still applies")


def _check(args: argparse.Namespace) -> str | None:
    from core.inference import SHIPPED

    return None if args.no_modality_check else SHIPPED


def _trust_lines(m: dict[str, Any]) -> list[str]:
    """Calibration, the gate's count and the seen-in-training warning, as text lines."""
    lines = []
    if m.get("ece") is not None:
        lines.append(f"calibration error (ECE, 15 bins): {m['ece']:.3f}")
    if m.get("out_of_domain") is not None:
        lines.append(refusal.refused_summary(m))
    seen = m.get("seen_in_training")
    if seen:
        lines.append(f"warning: {seen} of these images were used to train this model; "
                     "its scores here are inflated")
    return lines


def _metrics_text(m: dict[str, Any]) -> str:
    ci = m.get("balanced_accuracy_ci95")
    unit = {"lesion": ", resampling lesions", "image": ", resampling images"}.get(
        str(m.get("ci_unit")), "")
    interval = f", 95% CI {ci[0]:.3f}-{ci[1]:.3f}{unit}" if ci else ""
    lines = [
        f"balanced accuracy: {_fmt(m['balanced_accuracy'])}  (ISIC 2018 metric{interval})",
        f"images: {m['n_images']}",
        f"accuracy: {_fmt(m['accuracy'])}  (always '{m['majority_class']}': "
        f"{_fmt(m['majority_baseline_accuracy'])})",
        f"macro AUC: {_fmt(m['macro_auc'])}",
        f"melanoma recall: {_fmt(m['melanoma_recall'])}",
        "per class: " + ", ".join(f"{c} {_fmt(v['recall'])} (n={v['support']})"
                                  for c, v in m["per_class"].items()),
        *_trust_lines(m),
    ]
    return "\n".join(lines)


def cmd_data_summary(args: argparse.Namespace) -> int:
    from core.dataset import load_dataset, summarize
    from core.images import load_images
    from core.inference import modality_check
    from core.modality import not_dermoscopic

    dataset = load_dataset(args.data)
    load_images(dataset, args.image_size, on_progress=Progress("decoding images"))
    summary = summarize(dataset)
    per_class = "\n".join(f"  {c:6s} {v['images']:6d} images {v['lesions']:6d} lesions  "
                          f"{v['full_name']}" for c, v in summary["per_class"].items())
    problems = "\n".join(f"  {p['kind']}: {p['item']} {p['detail']}".rstrip()
                         for p in summary["problems"]) or "  none"
    health = ""
    check = modality_check(_check(args))
    if check is not None:
        flagged = not_dermoscopic(dataset, check,
                                  on_progress=Progress("checking that the images are dermoscopic"))
        summary["not_dermoscopic"] = flagged
        health = "\n" + refusal.health_text(flagged)
    _emit(args, summary, f"{summary['root']} ({summary['layout']}): {summary['n_images']} "
          f"images, {summary['n_lesions']} lesions\n{per_class}\nproblems:\n{problems}{health}")
    return 0


def cmd_data_export(args: argparse.Namespace) -> int:
    from core.export import export_part

    truth = export_part(args.run, args.part, args.out, data_dir=args.data,
                        center_crop=args.center_crop,
                        on_progress=Progress(f"exporting the {args.part} part"))
    _emit(args, {"ground_truth": str(truth), "folder": str(args.out)},
          f"wrote {truth} and its images; evaluate with: main.py evaluate --data {args.out}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from core.config import from_arguments
    from core.training import BatchProgress, EpochResult, resume, train

    if args.resume is None and args.data_dir is None:
        raise SkinLesionError("train needs --data DIR (or --resume RUN_DIR)")
    config = from_arguments(args)
    stop = threading.Event()

    def on_interrupt(_sig: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        _say("\nstopping after this batch (Ctrl-C again to abort)")
        stop.set()

    previous = signal.signal(signal.SIGINT, on_interrupt)
    batch_progress = Progress("batches")

    def on_epoch(e: EpochResult) -> None:
        logs = "  ".join(f"{k} {v:.4f}" for k, v in e.logs.items() if k != "epoch")
        _say(f"\repoch {e.epoch}/{e.epochs} ({e.seconds:.1f}s)  {logs}")

    def on_batch(b: BatchProgress) -> None:
        batch_progress(b.batch, b.batches)

    hooks: dict[str, Any] = dict(on_epoch=on_epoch,
                                 on_batch=on_batch if sys.stderr.isatty() else None,
                                 should_stop=stop.is_set, on_status=_say,
                                 on_load_progress=Progress("images"))
    try:
        from core.cross_validation import wants_cv

        if wants_cv(config, args.resume):  # --folds K, or resuming a group (core.cli_cv)
            from core.cli_cv import train_folds

            return train_folds(args, config, hooks)
        if args.resume is not None:
            result = resume(args.resume, **hooks)
        else:
            result = train(config, out_dir=args.out, **hooks)
    finally:
        signal.signal(signal.SIGINT, previous)
    data = {"run_dir": str(result.run_dir), "stopped": result.stopped,
            "best_epoch": result.best_epoch, "metrics": result.metrics}
    if not result.chief:
        _emit(args, {**data, "chief": False}, "worker finished; the chief worker wrote "
              f"the run folder ({result.run_dir} on its host)")
        return 0
    if result.metrics.get("unfinished"):
        _emit(args, data, f"run: {result.run_dir} (stopped before its first epoch ended: "
              "not evaluated, no model saved; `train --resume` starts it again)")
        return 0
    head = f"run: {result.run_dir}" + (" (stopped early)" if result.stopped else "")
    if result.metrics.get("leaky"):
        head += "\nwarning: seed-leaky split; these figures are inflated"
    _emit(args, data, f"{head}\n{_metrics_text(result.metrics)}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from core.inference import evaluate, resolve_model

    model = resolve_model(args.model, args.runtime, status=_say)
    metrics = evaluate(model, args.data, tta=args.tta, on_progress=Progress("decoding images"),
                       check=_check(args))
    if model.domain is None:
        _say(NO_GATE_NOTICE)
    _say(f"answered by {model.runtime}")
    from core.subgroups import subgroup_text

    _emit(args, metrics, _metrics_text(metrics) + subgroup_text(metrics))
    return 0


def cmd_export_model(args: argparse.Namespace) -> int:
    from core.export_model import export_model, sidecar_path
    from core.inference import keras_model

    loaded = keras_model(args.model)
    out = export_model(loaded, args.format, args.out, status=_say)
    meta = sidecar_path(out, args.format)
    _emit(args, {"model": str(out), "sidecar": str(meta), "format": args.format},
          f"wrote {out} and {meta}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from core.report import write_report

    written = write_report(args.run, html=args.out, pdf=args.pdf)
    _emit(args, {"written": [str(p) for p in written]},
          "\n".join(f"wrote {p}" for p in written))
    return 0


def _add_runtime(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runtime", choices=["auto", "litert", "litert-float", "keras"],
                        default="auto",
                        help="auto (default): the model's LiteRT twin when it is current "
                        "(its int8 twin where it has one), without loading TensorFlow, else "
                        "Keras (and the twin is rebuilt); litert: the twin only; "
                        "litert-float: the float twin only; keras: the .keras file")


def program_name() -> str:
    """What the user typed: `skin-lesion` when installed, else `main.py`."""
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return "main.py" if name in ("", "-c", "cli.py", "__main__.py") else name


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(
        prog=program_name(), description="Skin-lesion classifier workbench (HAM10000). "
        "Research software, not a medical device. Run with no arguments to open the app.")
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    data = sub.add_parser("data", help="inspect a dataset folder")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    summary = data_sub.add_parser("summary", parents=[common], help="counts and problems")
    summary.add_argument("--data", required=True, type=Path, help="dataset folder")
    summary.add_argument("--no-modality-check", action="store_true",
                         help="do not check that every image looks dermoscopic")
    summary.add_argument("--image-size", type=int, default=32,
                         help="decode at this size to find unreadable images (default 32)")
    summary.set_defaults(func=cmd_data_summary)
    export = data_sub.add_parser("export", parents=[common],
                                 help="write a run's val or test part as an ISIC 2018 folder")
    export.add_argument("--run", required=True, type=Path, help="training run folder")
    export.add_argument("--part", choices=["train", "val", "test"], default="test")
    export.add_argument("--out", required=True, type=Path, help="folder to write")
    export.add_argument("--data", type=Path, default=None,
                        help="dataset folder (default: the one the run was trained on)")
    export.add_argument("--center-crop", action="store_true",
                        help="save square centre crops, as dermatoscope exports often are")
    export.set_defaults(func=cmd_data_export)

    tr = sub.add_parser("train", parents=[common], help="train a model and save a run folder",
                        description="Train a model and save a run folder. Every option is a "
                        "field of core.config.TrainConfig, as in the app's Train view.")
    add_train_arguments(tr)
    tr.add_argument("--out", type=Path, default=None, help="run folder (default: per-user)")
    tr.add_argument("--resume", type=Path, default=None, metavar="RUN_DIR",
                    help="continue a stopped or killed run from its last completed epoch "
                    "(a cross-validation group, or one of its folds: its remaining folds)")
    tr.set_defaults(func=cmd_train)

    ev = sub.add_parser("evaluate", parents=[common], help="metrics on a labelled folder")
    ev.add_argument("--model", type=Path, default=None, help="model file (default: bundled)")
    ev.add_argument("--data", required=True, type=Path)
    ev.add_argument("--no-modality-check", action="store_true", help=NO_CHECK_HELP)
    ev.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                    help="average over flips (test-time aug.; default: the model's recipe)")
    _add_runtime(ev)
    ev.set_defaults(func=cmd_evaluate)

    ex = sub.add_parser("export-model", parents=[common],
                        help="write a model as a TensorFlow SavedModel, a LiteRT or an ONNX file")
    ex.add_argument("--model", type=Path, default=None, help="model file (default: bundled)")
    ex.add_argument("--format", choices=["savedmodel", "tflite", "onnx"], required=True,
                    help="onnx needs the [export] extra (tf2onnx, onnx, onnxruntime)")
    ex.add_argument("--out", type=Path, required=True,
                    help="SavedModel folder, .tflite or .onnx file; the sidecar JSON goes inside "
                    "the folder or beside the file (OUT.json)")
    ex.set_defaults(func=cmd_export_model)

    rp = sub.add_parser("report", parents=[common],
                        help="write a run's report as one HTML file (and optionally a PDF)")
    rp.add_argument("run", type=Path, metavar="RUN_DIR", help="training run folder")
    rp.add_argument("--out", type=Path, default=None, metavar="REPORT.html",
                    help="HTML file to write (default: RUN_DIR/report.html)")
    rp.add_argument("--pdf", type=Path, default=None, metavar="REPORT.pdf",
                    help="also write the report as a PDF")
    rp.set_defaults(func=cmd_report)

    from core.cli_compare import add_compare_parser  # they import this module
    from core.cli_predict import add_predict_parser

    add_predict_parser(sub, common)
    add_compare_parser(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        check_folders(args)  # a missing --data folder is said before TensorFlow loads
        return int(args.func(args))
    except CancelledError as exc:
        _say(f"stopped: {exc}")
        return 130
    except SkinLesionError as exc:
        _say(f"error: {exc}")
        return 2
    except KeyboardInterrupt:
        _say("aborted")
        return 130
    except MemoryError:
        _say("error: out of memory; try a smaller --image-size or --batch-size")
        return 1
    except Exception as exc:  # last resort: one line, never a traceback
        _say(f"error: unexpected {type(exc).__name__}: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
