"""`TrainConfig`: everything that defines a training run, and the one place its rules live.

Each field carries an `Option` (help, label, choices, range, the models it applies to). The
CLI's `train` parser (`add_train_arguments`) and the GUI's settings form are both built from
this metadata, so they offer the same options with the same defaults, and `resolve()` applies
every rule once: the default image size per model, fine-tuning only where a model supports
it, and whether a frozen backbone trains its head on cached features. `config.json` stores
the resolved values.
"""

from __future__ import annotations

import argparse
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any

from core.distribute import GUI_STRATEGIES, STRATEGIES
from core.errors import DatasetError
from core.images import CROP_POLICIES
from core.models import MODELS
from core.splits import SPLITS, parse_balance

MONITORS = ("val_loss", "val_balanced_accuracy")
TRANSFER = frozenset(name for name, spec in MODELS.items() if spec.uses_imagenet)
# VGG16 stays frozen (the study's)
FINE_TUNABLE = frozenset(("mobilenetv2", "efficientnetb0", "efficientnet-lite0"))


@dataclass(frozen=True)
class Option:
    """How a `TrainConfig` field is offered: CLI help, GUI label, choices, range, models."""

    help: str
    label: str
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    models: frozenset[str] | None = None  # None: every model
    kind: str = ""  # a special editor: "path" (a file), "balance", "dataset"; "" from the type
    cli: str = ""  # the CLI flag when it is not --the-field-name
    gui: bool = True  # False: a command-line setting only (not in the app's form)
    gui_choices: tuple[str, ...] | None = None  # the choices the app offers (None: all)


def _opt(default: Any, **option: Any) -> Any:
    return field(default=default, metadata={"option": Option(**option)})


@dataclass
class TrainConfig:
    """Everything that defines a training run (the study's values are the defaults)."""

    data_dir: str = _opt("", help="dataset folder", label="Dataset", kind="dataset",
                         cli="--data")
    model: str = _opt("cnn", help="model to train", label="Model", choices=tuple(MODELS))
    image_size: int | None = _opt(None, help="input size in pixels (default: the model's: "
                                  + ", ".join(f"{k} {v.image_size}" for k, v in MODELS.items())
                                  + ")", label="Image size", low=8, high=1024)
    epochs: int = _opt(50, help="training epochs", label="Epochs", low=1, high=10000)
    batch_size: int = _opt(32, help="images per batch on each replica (the global batch is "
                           "this times the replicas)", label="Batch size", low=1, high=4096)
    learning_rate: float = _opt(1e-3, help="Adam learning rate", label="Learning rate",
                                low=1e-10, high=0.99)
    balance: str = _opt("resample:500", help="resample:N (training part only), class-weights "
                        "or none", label="Balancing", kind="balance")
    split: str = _opt("lesion", help="lesion: honest, grouped by lesion; seed-leaky: the "
                      "study's (inflated)", label="Split", choices=SPLITS)
    seed: int = _opt(42, help="seed of the split and the training", label="Split seed", low=0,
                     high=2**31 - 1)
    crop: str = _opt("squash", help="squash: whole frame resized (the study's); center: the "
                     "largest centred square", label="Crop", choices=CROP_POLICIES)
    val_fraction: float = _opt(0.15, help="share of lesions in the validation part",
                               label="Validation part", low=0.05, high=0.4)
    test_fraction: float = _opt(0.15, help="share of lesions in the test part",
                                label="Test part", low=0.05, high=0.4)
    folds: int = _opt(1, help="cross-validate: train K runs on lesion-grouped folds (patient-"
                      "grouped where the data has patient ids), each tested on its held-out "
                      "fold, and report mean ± SD over them (1: one split; the test part is "
                      "then 1/K)", label="Cross-validate", low=1, high=10)
    fold: int = _opt(0, help="with --folds K: train only fold N (1..K) as one run (0: every "
                     "fold)", label="Fold", low=0, high=10, gui=False)
    weights: str = _opt("imagenet", help="local ImageNet weights file (no top), 'none' for "
                        "random, or 'imagenet' to download", label="ImageNet weights",
                        models=TRANSFER, kind="path")
    fine_tune: int = _opt(0, help="train the backbone's last N layers (0: frozen)",
                          label="Fine-tune layers", low=0, high=1000, models=FINE_TUNABLE)
    augment: bool = _opt(False, help="random flips, rotations, zoom, brightness and contrast "
                         "(with a frozen backbone this turns the feature cache off)",
                         label="Augmentation")
    label_smoothing: float = _opt(0.0, help="label smoothing of the loss",
                                  label="Label smoothing", low=0.0, high=0.5)
    lr_schedule: str = _opt("constant", help="learning-rate schedule", label="LR schedule",
                            choices=("constant", "cosine"))
    early_stopping: int = _opt(0, help="stop after N epochs without a better monitored value "
                               "(0: off)", label="Early stopping", low=0, high=10000)
    monitor: str = _opt("val_loss", help="which epoch's weights the model keeps",
                        label="Keep the epoch with", choices=MONITORS)
    cache_features: bool = _opt(True, help="frozen backbone without augmentation: compute "
                                "its features once and train only the head on them",
                                label="Cache backbone features", models=TRANSFER,
                                cli="--feature-cache")
    init_from: str | None = _opt(None, help="start from this saved model's weights (same model "
                                 "and size), e.g. fine-tune a frozen run", label="Start from",
                                 kind="path")
    use_cache: bool = _opt(True, help="keep decoded images in the per-user cache",
                           label="Cache decoded images", cli="--image-cache")
    stream: bool = _opt(False, help="read images from disk batch by batch while training "
                        "instead of decoding them all into memory (for data larger than "
                        "memory; with the image cache on, they are read from the cache file)",
                        label="Stream images from disk")
    # where the run trains (core.distribute)
    strategy: str = _opt("default", help="default: one device; mirrored: every local GPU (or "
                         "the --cpu-devices); multi-worker: the hosts in TF_CONFIG (command "
                         "line only)", label="Strategy", choices=STRATEGIES,
                         gui_choices=GUI_STRATEGIES)
    cpu_devices: int = _opt(0, help="split the CPU into N logical devices (0: do not), e.g. "
                            "to run mirrored without a GPU; command line only", label="CPU "
                            "devices", low=0, high=64, gui=False)
    mixed_precision: bool = _opt(False, help="compute in float16 with float32 weights and a "
                                 "float32 softmax (mixed_float16; fast on recent GPUs, slow on "
                                 "CPUs)", label="Mixed precision")

    @property
    def size(self) -> int:
        """The image size in pixels this run uses."""
        return self.image_size or MODELS[self.model].image_size

    def validate(self) -> None:
        """Raise `DatasetError` with a clear message for any impossible setting."""
        for f in fields(self):
            opt, value = option(f.name), getattr(self, f.name)
            if opt.choices and value not in opt.choices:
                raise DatasetError(f"unknown {f.name.replace('_', ' ')} {value!r}; choose from "
                                   f"{', '.join(opt.choices)}")
            if value is not None and not isinstance(value, bool | str) and (
                    (opt.low is not None and value < opt.low)
                    or (opt.high is not None and value > opt.high)):
                raise DatasetError(f"{opt.label.lower()} must be between {opt.low:g} "
                                   f"and {opt.high:g}, not {value}")
        parse_balance(self.balance)
        if self.folds > 1 and self.split != "lesion":
            raise DatasetError("cross-validation needs the lesion split")
        if self.fold > self.folds or (self.fold and self.folds == 1):
            raise DatasetError(f"fold must be between 1 and the folds ({self.folds}), not "
                               f"{self.fold}")
        if self.val_fraction + self.test_fraction >= 0.7:
            raise DatasetError("the validation and test parts must leave most lesions for "
                               "training")
        for name in ("weights", "fine_tune"):  # cache_features is derived: see `resolve`
            if not applies(name, self.model) and getattr(self, name) != default(name):
                raise DatasetError(f"{flag(name)} does not apply to the {self.model} model "
                                   f"(only to {', '.join(sorted(option(name).models or []))})")

    def uses_feature_cache(self) -> bool:
        """A frozen transfer backbone without augmentation trains its head on cached features."""
        return (self.cache_features and self.model in TRANSFER and self.fine_tune == 0
                and not self.augment)

    def resolve(self) -> TrainConfig:
        """A validated copy with every rule applied: what the run really uses.

        `image_size` becomes the model's default when unset, and `cache_features` says
        whether the feature cache is used (false when the backbone trains or augmentation is
        on: cached features would repeat the same un-augmented images every epoch).
        """
        self.validate()
        return replace(self, image_size=self.size, cache_features=self.uses_feature_cache())


def option(name: str) -> Option:
    """The `Option` of a `TrainConfig` field."""
    return TrainConfig.__dataclass_fields__[name].metadata["option"]


def default(name: str) -> Any:
    """The default value of a `TrainConfig` field."""
    f = TrainConfig.__dataclass_fields__[name]
    return None if f.default is MISSING else f.default


def applies(name: str, model: str) -> bool:
    """Whether a field matters for `model` (e.g. fine-tuning only for MobileNetV2 and
    EfficientNetB0)."""
    models = option(name).models
    return models is None or model in models


def field_names() -> list[str]:
    """Every `TrainConfig` field, in form order."""
    return [f.name for f in fields(TrainConfig)]


def flag(name: str) -> str:
    """The CLI flag of a field: its `Option.cli`, else `--name-with-dashes`."""
    return option(name).cli or "--" + name.replace("_", "-")


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one CLI option per `TrainConfig` field, from its metadata."""
    for f in fields(TrainConfig):
        opt, dflt = option(f.name), default(f.name)
        help_text = opt.help + ("" if dflt in (None, "", False, True) else f" (default {dflt})")
        if isinstance(dflt, bool):
            parser.add_argument(flag(f.name), dest=f.name, action=argparse.BooleanOptionalAction,
                                default=dflt, help=help_text)
            continue
        base = str(f.type).split(" ")[0]
        kind = {"int": int, "float": float}.get(base, str)
        metavar = {"int": "N", "float": "X"}.get(base) or {
            "dataset": "DIR", "path": "PATH", "balance": "MODE"}.get(opt.kind, "VALUE")
        parser.add_argument(flag(f.name), dest=f.name, type=kind, default=dflt,
                            choices=list(opt.choices) or None, help=help_text,
                            metavar=None if opt.choices else metavar)


def from_arguments(args: argparse.Namespace) -> TrainConfig:
    """The `TrainConfig` that parsed CLI options describe."""
    values = {name: getattr(args, name) for name in field_names()}
    values["data_dir"] = str(values["data_dir"] or "")
    if values["init_from"] is not None:
        values["init_from"] = str(values["init_from"])
    return TrainConfig(**values)


DERIVED = ("replicas",)  # written beside the settings in config.json, not settings


def from_json(data: dict[str, Any]) -> TrainConfig:
    """A `TrainConfig` from a run's `config.json` (unknown keys are refused)."""
    data = {k: v for k, v in data.items() if k not in DERIVED}
    known = set(field_names())
    unknown = sorted(set(data) - known)
    if unknown:
        raise DatasetError(f"config.json has unknown settings: {', '.join(unknown)}")
    return TrainConfig(**data)
