"""EfficientNet-Lite0 with ImageNet weights, offline: the restricted reader, the conversion,
and training it from the CLI and the GUI with no network."""

from __future__ import annotations

import json
import os
import pickle
import socket
from pathlib import Path

import numpy as np
import pytest

from core.cli import main
from core.errors import ModelError
from core.lite0 import LEGACY_MAGIC, bundled_weights, read_state_dict
from tests.conftest import SHARED


@pytest.fixture()
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to connect anywhere fails, as on an air-gapped machine."""
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise OSError("network is unreachable (test)")

    monkeypatch.setattr(socket.socket, "connect", refuse)


class Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def test_an_evil_pickle_is_refused_before_it_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth"
    with evil.open("wb") as f:
        for header in (LEGACY_MAGIC, 1001, {"little_endian": True}):
            pickle.dump(header, f, protocol=2)
        pickle.dump({"_conv_stem.weight": Evil(marker)}, f, protocol=2)
    with pytest.raises(ModelError, match="refusing the weights file: it asks for posix.system"):
        read_state_dict(evil)
    assert not marker.exists()


def test_a_file_that_is_not_weights_says_so(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"PK\x03\x04 not a legacy pickle")
    with pytest.raises(ModelError, match="junk.pth"):
        read_state_dict(junk)


def test_the_installed_weights_read_without_torch() -> None:
    state = read_state_dict(bundled_weights())
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_fc.weight"].shape == (1000, 1280)
    assert state["_blocks.15._project_conv.weight"].shape == (320, 1152, 1, 1)
    assert np.isfinite(state["_bn1.running_var"]).all()


@pytest.mark.realdata
def test_the_converted_network_classifies_imagenet_photos(no_network: None) -> None:
    from PIL import Image

    from core.lite0 import lite0_backbone

    folder = SHARED / "ood-photos"
    files = sorted(folder.glob("*.jpg"))
    if not files:
        pytest.skip(f"{folder} not found (only CI and dev machines have it)")
    ids = [line.split("_")[0] for line in
           (SHARED / "imagenet-1k-classes.txt").read_text().splitlines() if line]
    truth = np.array([ids.index(f.name.split("_")[0]) for f in files])
    x = np.stack([np.asarray(Image.open(f).convert("RGB").resize((224, 224)), np.float32)
                  for f in files])
    model = lite0_backbone(224, include_top=True)
    logits = model.predict((x - 127.0) / 128.0, batch_size=50, verbose=0)
    top1 = float((logits.argmax(axis=1) == truth).mean())
    assert top1 > 0.80, f"top-1 {top1:.3f}: the conversion is wrong"  # measured 0.840


def test_lite0_trains_from_the_cli_with_no_network(ham_dir: Path, tmp_path: Path,
                                                    no_network: None,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert main(["train", "--data", str(ham_dir), "--model", "efficientnet-lite0",
                 "--image-size", "32", "--epochs", "1", "--batch-size", "8", "--fine-tune",
                 "1000", "--balance", "none", "--out", str(run), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == "efficientnet-lite0" and config["weights"] == "imagenet"
    assert result["metrics"]["n_images"] > 0
    assert (run / "model.keras").is_file()


def test_the_gui_offers_lite0_with_offline_weights(qtbot) -> None:
    from gui.train_settings import TrainSettings

    settings = TrainSettings()
    qtbot.addWidget(settings)
    assert settings.model_box.findData("efficientnet-lite0") >= 0
    settings.select(settings.model_box, "efficientnet-lite0")
    assert settings.fine_tune_spin.isEnabled() and settings.weights_edit.isEnabled()
    config = settings.config("DATA")
    assert config.model == "efficientnet-lite0" and config.resolve().image_size == 160
