"""Atomic writes are also durable: the old file survives a failed write, fsync brackets rename."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from core import paths


def test_a_failure_between_write_and_rename_leaves_the_old_file_intact(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "metrics.json"
    paths.write_text_atomic(target, '{"epoch": 1}')

    def power_cut(*_args: object) -> None:
        raise OSError("injected: the machine stopped before the rename")

    monkeypatch.setattr(os, "replace", power_cut)
    with pytest.raises(OSError, match="injected"):
        paths.write_text_atomic(target, '{"epoch": 2}')
    assert target.read_text() == '{"epoch": 1}'
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temporary file left


def test_the_data_is_synced_before_the_rename_and_the_folder_after(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        kind = "folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"
        events.append(f"fsync {kind}")
        real_fsync(fd)

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        events.append("rename")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    target = tmp_path / "state.json"
    paths.write_text_atomic(target, "{}")
    expected = ["fsync file", "rename"] + ([] if os.name == "nt" else ["fsync folder"])
    assert events == expected
    assert target.read_text() == "{}"
