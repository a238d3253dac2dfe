"""Bad images and metadata: each case either works correctly or fails with one clear reason."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from core.dataset import load_dataset
from core.errors import DatasetError, ImageError
from core.images import load_images, read_image
from core.training import TrainConfig, train
from tests.synthetic import CLASS_COLOURS, make_image


def jpeg(path: Path, size: tuple[int, int] = (40, 30)) -> Path:
    Image.effect_noise(size, 60).convert("RGB").save(path)
    return path


def written(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


BROKEN = {
    "zero-byte": (lambda p: written(p, b""), "the file is empty"),
    "random-bytes": (lambda p: written(p, np.random.default_rng(0).bytes(500)), "not an image"),
    "text-file": (lambda p: written(p, b"lesion notes\n"), "not an image"),
    "truncated-jpeg": (lambda p: written(p, jpeg(p, (300, 200)).read_bytes()[:400]),
                       "damaged or truncated"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_files_fail_with_a_one_line_reason(tmp_path: Path, case: str) -> None:
    make, reason = BROKEN[case]
    path = make(tmp_path / "broken image.jpg")
    with pytest.raises(ImageError, match=reason) as info:
        read_image(path, 16)
    assert "\n" not in str(info.value) and str(info.value).startswith("broken image.jpg: ")


def test_png_with_alpha_is_composited_on_white(tmp_path: Path) -> None:
    rgba = np.zeros((10, 10, 4), dtype=np.uint8)
    rgba[..., 0] = 255
    rgba[:, 5:, 3] = 255  # left half transparent, right half opaque red
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = read_image(tmp_path / "a.png", 10)
    assert out[5, 1].tolist() == [255, 255, 255] and out[5, 8].tolist() == [255, 0, 0]


def test_16_bit_png_is_scaled_to_8_bits(tmp_path: Path) -> None:
    Image.fromarray(np.full((8, 8), 65535, dtype=np.uint16)).save(tmp_path / "deep.png")
    assert read_image(tmp_path / "deep.png", 8).min() == 255


@pytest.mark.parametrize("mode", ["L", "P", "CMYK"])
def test_grayscale_palette_and_cmyk_become_rgb(tmp_path: Path, mode: str) -> None:
    path = tmp_path / ("x.jpg" if mode == "CMYK" else "x.png")
    Image.new("RGB", (20, 20), (200, 100, 50)).convert(mode).save(path)
    out = read_image(path, 8)
    assert out.shape == (8, 8, 3)
    if mode == "L":
        assert (out[..., 0] == out[..., 1]).all()


def test_exif_orientation_is_honoured(tmp_path: Path) -> None:
    pixels = np.zeros((20, 40, 3), dtype=np.uint8)
    pixels[:, :20] = (255, 0, 0)  # left half red in the stored (landscape) frame
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(pixels).save(tmp_path / "phone.jpg", exif=exif, quality=95)
    out = read_image(tmp_path / "phone.jpg", 20, "squash")
    assert out[2, 10, 0] > 200 and out[17, 10, 0] < 60  # red ends up at the top


def test_decompression_bomb_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Image.new("RGB", (200, 200)).save(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageError, match="too large to decode safely"):
        read_image(tmp_path / "bomb.png", 8)


def test_one_pixel_image_is_resized(tmp_path: Path) -> None:
    Image.new("RGB", (1, 1), (1, 2, 3)).save(tmp_path / "dot.png")
    assert read_image(tmp_path / "dot.png", 16).reshape(-1, 3)[0].tolist() == [1, 2, 3]


def test_symlink_loop_and_permission_problems_are_reasons(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    loop = tmp_path / "loop.jpg"
    loop.symlink_to(loop)
    with pytest.raises(ImageError, match="symbolic link loop"):
        read_image(loop, 8)

    def denied(*_args, **_kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Image, "open", denied)  # root can read anything, so simulate it
    import core.images

    monkeypatch.setattr(core.images, "open", denied, raising=False)  # the JPEG fast path
    with pytest.raises(ImageError, match="permission denied"):
        read_image(tmp_path / "locked.jpg", 8)


def test_paths_with_spaces_and_non_ascii_work(tmp_path: Path) -> None:
    path = make_image(tmp_path / "Läsion fötö — ü" / "bild 1.jpg", (10, 200, 30))
    assert read_image(path, 8).shape == (8, 8, 3)


def test_a_dataset_with_every_kind_of_bad_file_still_loads(ham_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "ham"
    shutil.copytree(ham_dir, root)
    victims = sorted((root / "HAM10000_images_part_1").glob("*.jpg"))[:len(BROKEN)]
    for victim, case in zip(victims, sorted(BROKEN), strict=True):
        victim.unlink()
        BROKEN[case][0](victim)
    dataset = load_dataset(root)
    images = load_images(dataset, 8).images
    assert len(images) == len(dataset.records) == 42 - len(BROKEN)
    reasons = [p.detail for p in dataset.problems if p.kind == "unreadable-image"]
    assert len(reasons) == len(BROKEN) and all(r for r in reasons)


def test_single_class_dataset_cannot_train(tmp_path: Path) -> None:
    for i in range(6):
        make_image(tmp_path / "nv" / f"{i}.png", CLASS_COLOURS["nv"], seed=i)
    config = TrainConfig(data_dir=str(tmp_path), model="mlp", image_size=8, epochs=1,
                         balance="none")
    with pytest.raises(DatasetError, match="at least 2 classes"):
        train(config, out_dir=tmp_path / "run")


def test_a_class_missing_from_the_test_part_still_trains(tmp_path: Path) -> None:
    for i in range(12):
        make_image(tmp_path / "nv" / f"{i}.png", CLASS_COLOURS["nv"], seed=i)
        make_image(tmp_path / "mel" / f"{i}.png", CLASS_COLOURS["mel"], seed=50 + i)
    make_image(tmp_path / "vasc" / "only.png", CLASS_COLOURS["vasc"])  # one image: one side
    config = TrainConfig(data_dir=str(tmp_path), model="mlp", image_size=8, epochs=1,
                         balance="class-weights")
    metrics = train(config, out_dir=tmp_path / "run").metrics
    assert metrics["per_class"]["vasc"]["support"] in (0, 1)
    present = [v["recall"] for v in metrics["per_class"].values() if v["support"]]
    # an absent class is left out of the mean, not counted as a recall of 0
    assert metrics["balanced_accuracy"] == pytest.approx(sum(present) / len(present))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=3000))
def test_any_bytes_give_an_image_or_an_image_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.jpg"
    path.write_bytes(data)
    try:
        out = read_image(path, 8)
    except ImageError:
        return
    assert out.shape == (8, 8, 3) and out.dtype == np.uint8


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=st.sampled_from(list("abcdmelnvx_,;\"'\r\n\t 0123456789\ufeff")),
                    max_size=300),
       header=st.sampled_from(["lesion_id,image_id,dx\n", "image_id,dx\n", "", "dx,lesion_id\n"]))
def test_any_metadata_text_gives_a_dataset_or_a_dataset_error(tmp_path: Path, text: str,
                                                               header: str) -> None:
    root = tmp_path / "fuzz"
    root.mkdir(exist_ok=True)
    if not (root / "a.jpg").exists():
        make_image(root / "a.jpg", (9, 9, 9))
    (root / "HAM10000_metadata.csv").write_text(header + text, encoding="utf-8")
    try:
        dataset = load_dataset(root)
    except DatasetError:
        return
    assert not dataset.records.empty
    assert set(dataset.records["dx"]) <= set(dataset.classes)
