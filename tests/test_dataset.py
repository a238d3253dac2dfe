"""Dataset layouts, validation and summary on synthetic folders."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.classes import HAM10000_CLASSES
from core.dataset import load_dataset, summarize
from core.errors import DatasetError
from core.images import load_images
from tests.synthetic import CLASS_COLOURS, make_ham, make_image, make_image_folder, make_isic


def kinds(dataset) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for p in dataset.problems:
        found.setdefault(p.kind, []).append(p.item)
    return found


def test_ham_layout_is_detected_and_matched_across_part_folders(ham_dir: Path) -> None:
    ds = load_dataset(ham_dir)
    assert ds.layout == "ham10000"
    assert ds.classes == list(HAM10000_CLASSES)
    assert len(ds.records) == 42
    assert ds.records["path"].str.contains("part_2").any()
    assert ds.problems == []


def test_image_folder_layout_uses_folder_names_as_classes(tmp_path: Path) -> None:
    ds = load_dataset(make_image_folder(tmp_path, ("malignant", "benign")))
    assert ds.layout == "image-folder"
    assert ds.classes == ["benign", "malignant"]
    assert (ds.records["dx"] == "benign").sum() == 4


def test_image_folder_with_ham_codes_keeps_canonical_order(tmp_path: Path) -> None:
    ds = load_dataset(make_image_folder(tmp_path, ("nv", "mel", "bcc")))
    assert ds.classes == ["bcc", "mel", "nv"]


def test_isic2018_layout_reads_one_hot_labels(tmp_path: Path) -> None:
    ds = load_dataset(make_isic(tmp_path))
    assert ds.layout == "isic2018"
    assert len(ds.records) == 21
    assert sorted(ds.records["dx"].unique()) == sorted(HAM10000_CLASSES)


def test_csv_with_bom_and_windows_line_endings(tmp_path: Path) -> None:
    make_image(tmp_path / "imgs" / "a.jpg", CLASS_COLOURS["mel"])
    make_image(tmp_path / "imgs" / "b.jpg", CLASS_COLOURS["nv"])
    text = "lesion_id,image_id,dx\r\nL1,a,mel\r\nL2,b,NV \r\n"
    (tmp_path / "HAM10000_metadata.csv").write_bytes(b"\xef\xbb\xbf" + text.encode())
    ds = load_dataset(tmp_path)
    assert list(ds.records["dx"]) == ["mel", "nv"]


def test_problems_are_reported_and_loading_continues(tmp_path: Path) -> None:
    root = make_ham(tmp_path, per_class=2, classes=("mel", "nv"))
    csv = root / "HAM10000_metadata.csv"
    lines = csv.read_text().splitlines()
    lines.append("HAM_x,ISIC_missing,mel,histo,40,male,back")   # row without an image
    lines.append("HAM_y,ISIC_0000000,nv,histo,40,male,back")    # duplicate id
    lines.append("HAM_z,ISIC_0000003,zzz,histo,40,male,back")   # unknown label (dup id too)
    csv.write_text("\n".join(lines) + "\n")
    make_image(root / "extra" / "ISIC_9999999.jpg", (1, 2, 3))     # image without a row
    ds = load_dataset(root)
    found = kinds(ds)
    assert found["missing-image"] == ["ISIC_missing"]
    assert found["duplicate-id"] == ["ISIC_0000000"]
    assert any("zzz" in item for item in found["unknown-label"])
    assert found["unlisted-image"] == ["ISIC_9999999"]
    assert len(ds.records) == 4


def test_unreadable_images_are_skipped_and_listed(ham_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "ham"
    shutil.copytree(ham_dir, root)
    victim = next((root / "HAM10000_images_part_1").glob("*.jpg"))
    victim.write_bytes(b"not a jpeg at all")
    ds = load_dataset(root)
    images = load_images(ds, 16).images
    assert len(images) == len(ds.records) == 41
    assert kinds(ds)["unreadable-image"] == [victim.stem]
    # The cached second load reports the same problem and the same images.
    again = load_dataset(root)
    cached = load_images(again, 16)
    assert cached.from_cache and len(cached.images) == 41
    assert kinds(again)["unreadable-image"] == [victim.stem]


@pytest.mark.parametrize(("csv_text", "message"), [
    ("", "is empty"),
    ("lesion_id,image_id,diagnosis\nL1,a,mel\n", "lacks column(s) dx"),
    ("lesion_id,image_id,dx\nL1,a,banana\n", "no usable labelled images"),
])
def test_unusable_metadata_raises_one_clear_error(tmp_path: Path, csv_text: str,
                                                  message: str) -> None:
    make_image(tmp_path / "a.jpg", (10, 10, 10))
    (tmp_path / "HAM10000_metadata.csv").write_text(csv_text)
    with pytest.raises(DatasetError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_dataset(tmp_path)


@pytest.mark.parametrize("with_text_file", [False, True])
def test_folder_without_dataset_raises(tmp_path: Path, with_text_file: bool) -> None:
    if with_text_file:  # a sub-folder, but no images in it
        (tmp_path / "notes").mkdir()
        (tmp_path / "notes" / "a.txt").write_text("x")
    with pytest.raises(DatasetError, match="holds no dataset"):
        load_dataset(tmp_path)


def test_missing_folder_raises(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="is not a folder"):
        load_dataset(tmp_path / "nope")


def test_summary_counts_images_lesions_and_metadata(ham_dir: Path) -> None:
    s = summarize(load_dataset(ham_dir))
    assert s["n_images"] == 42 and s["n_lesions"] == 21
    assert s["per_class"]["mel"] == {"full_name": "Melanoma", "images": 6, "lesions": 3}
    assert sum(s["sex"].values()) == 42
    assert s["localization"] == {"back": 42}
    assert sum(s["age"]["by_decade"].values()) == 42


def test_fingerprint_changes_when_the_records_change_at_equal_size(ham_dir: Path) -> None:
    ds = load_dataset(ham_dir)
    records = ds.records
    ds.records = records.iloc[1:].reset_index(drop=True)
    first = ds.fingerprint()
    ds.records = records.iloc[:-1].reset_index(drop=True)  # same size, other files
    assert ds.fingerprint() != first


def test_the_portable_fingerprint_is_the_same_for_a_copy_and_changes_with_a_label(
        ham_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "elsewhere" / "ham"
    shutil.copytree(ham_dir, copy)
    original, copied = load_dataset(ham_dir), load_dataset(copy)
    assert copied.portable_fingerprint() == original.portable_fingerprint()
    copied.records.loc[0, "dx"] = "mel" if copied.records.loc[0, "dx"] != "mel" else "nv"
    assert copied.portable_fingerprint() != original.portable_fingerprint()
