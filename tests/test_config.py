"""One TrainConfig: the CLI and the GUI offer every field, with the same defaults and rules."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest
from PySide6.QtWidgets import QComboBox
from pytestqt.qtbot import QtBot

from core.cli import build_parser
from core.config import TrainConfig, default, field_names
from core.errors import DatasetError
from gui.train_settings import NOT_IN_FORM, TrainSettings


def train_parser():  # the `train` sub-parser
    parser = build_parser()
    sub = next(a for a in parser._subparsers._group_actions  # type: ignore[union-attr]
               if a.dest == "command")
    return sub.choices["train"]


def test_every_field_is_a_cli_option_and_a_gui_editor(qtbot: QtBot) -> None:
    dests = {a.dest for a in train_parser()._actions}
    settings = TrainSettings()
    qtbot.addWidget(settings)
    for name in field_names():
        assert name in dests, f"train has no CLI option for {name}"
        assert name in settings.editors or name in NOT_IN_FORM, f"no GUI editor for {name}"


def test_cli_and_gui_defaults_are_the_configs_defaults(qtbot: QtBot) -> None:
    args = train_parser().parse_args(["--data", "DATA"])
    settings = TrainSettings()
    qtbot.addWidget(settings)
    settings.select(settings.model_box, "cnn")
    from_gui = settings.config("DATA")
    from core.config import from_arguments

    from_cli = from_arguments(args)
    expected = TrainConfig(data_dir="DATA")
    # the GUI shows the model's size where the CLI leaves it unset: both resolve the same
    assert from_cli == expected
    assert from_gui.resolve() == from_cli.resolve() == expected.resolve()


def test_gui_disables_what_does_not_apply_and_sends_the_default(qtbot: QtBot) -> None:
    settings = TrainSettings()
    qtbot.addWidget(settings)
    settings.fine_tune_spin.setValue(5)
    settings.weights_edit.setText("/some/weights.h5")
    settings.select(settings.model_box, "vgg16")  # the study's VGG16 stays frozen
    assert not settings.fine_tune_spin.isEnabled() and settings.weights_edit.isEnabled()
    config = settings.config("DATA")
    assert config.fine_tune == default("fine_tune") and config.weights == "/some/weights.h5"
    assert config.resolve().image_size == 150
    settings.select(settings.model_box, "mobilenetv2")
    assert settings.fine_tune_spin.isEnabled() and settings.config("D").fine_tune == 5
    settings.select(settings.model_box, "cnn")
    assert not settings.weights_edit.isEnabled() and settings.config("D").weights == "imagenet"


def test_augmentation_with_a_frozen_backbone_is_honoured_without_the_cache(qtbot: QtBot) -> None:
    settings = TrainSettings()
    qtbot.addWidget(settings)
    settings.select(settings.model_box, "mobilenetv2")
    assert settings.frozen_note.text().startswith("Frozen backbone")
    settings.augment_check.setChecked(True)
    config = settings.config("D")
    assert config.augment is True  # the GUI no longer drops it
    assert config.resolve().cache_features is False
    assert "every batch" in settings.frozen_note.text()
    args = train_parser().parse_args(["--data", "D", "--model", "mobilenetv2", "--augment"])
    from core.config import from_arguments

    assert from_arguments(args).resolve() == config.resolve()


def test_resolve_applies_every_rule_and_refuses_what_does_not_apply() -> None:
    resolved = TrainConfig(data_dir="D", model="efficientnetb0").resolve()
    assert resolved.image_size == 160 and resolved.cache_features is True
    assert TrainConfig(data_dir="D", model="cnn").resolve().cache_features is False
    assert TrainConfig(data_dir="D", model="mobilenetv2", fine_tune=10).resolve(
    ).cache_features is False
    with pytest.raises(DatasetError, match="--fine-tune does not apply to the vgg16 model"):
        TrainConfig(data_dir="D", model="vgg16", fine_tune=3).resolve()


def test_config_json_stores_the_resolved_size(ham_dir: Path, tmp_path: Path) -> None:
    from core.cli import main

    assert main(["train", "--data", str(ham_dir), "--model", "mlp", "--epochs", "1",
                 "--balance", "none", "--out", str(tmp_path / "run")]) == 0
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["image_size"] == 32 and saved["cache_features"] is False
    assert saved == {**asdict(TrainConfig(data_dir=str(ham_dir), model="mlp", epochs=1,
                                          balance="none").resolve()), "replicas": 1}


def test_multi_worker_and_the_cpu_split_are_command_line_only(qtbot: QtBot) -> None:
    settings = TrainSettings()
    qtbot.addWidget(settings)
    strategy = settings.editors["strategy"]
    assert isinstance(strategy, QComboBox)
    assert [strategy.itemData(i) for i in range(strategy.count())] == ["default", "mirrored"]
    assert "cpu_devices" not in settings.editors and "cpu_devices" in NOT_IN_FORM
    args = train_parser().parse_args(["--data", "D", "--strategy", "multi-worker",
                                      "--cpu-devices", "2", "--mixed-precision"])
    from core.config import from_arguments

    config = from_arguments(args)
    assert (config.strategy, config.cpu_devices, config.mixed_precision) == (
        "multi-worker", 2, True)
    with pytest.raises(DatasetError, match="unknown strategy 'ring'"):
        TrainConfig(data_dir="D", strategy="ring").resolve()
