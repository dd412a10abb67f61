"""Output files: refused before a run when they cannot be written or would overwrite an input, written whole."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from signcam.errors import SignCamError
from signcam.files import (
    check_writable,
    make_folder,
    refuse_overwriting,
    refuse_shared_outputs,
    write_text_whole,
    written_whole,
)


def test_written_whole_keeps_the_old_file_when_the_write_fails(tmp_path: Path) -> None:
    target = tmp_path / "signs.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError), written_whole(target) as partial:
        partial.write_text("half")
        raise RuntimeError("the disk filled up")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["signs.csv"]
    with written_whole(target) as partial:
        assert partial.suffix == ".csv"  # some writers choose the format by it
        partial.write_text("new")
    assert target.read_text() == "new" and os.listdir(tmp_path) == ["signs.csv"]


def test_write_text_whole_replaces_the_file_or_says_why_it_cannot(tmp_path: Path) -> None:
    target = tmp_path / "bench.json"
    target.write_text("old")
    write_text_whole(target, "new\n")
    assert target.read_text() == "new\n" and os.listdir(tmp_path) == ["bench.json"]
    with pytest.raises(SignCamError, match="cannot write .*missing/bench.json: No such file or directory"):
        write_text_whole(tmp_path / "missing" / "bench.json", "new\n")


def test_check_writable_refuses_a_missing_folder_a_folder_and_makes_one_when_asked(tmp_path: Path) -> None:
    with pytest.raises(SignCamError, match="its folder does not exist"):
        check_writable(tmp_path / "nowhere" / "out.mp4")
    with pytest.raises(SignCamError, match="it is a folder"):
        check_writable(tmp_path)
    assert check_writable(tmp_path / "made" / "out.mp4", create_folder=True) == tmp_path / "made" / "out.mp4"
    assert (tmp_path / "made").is_dir() and not (tmp_path / "made" / "out.mp4").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_check_writable_refuses_a_read_only_folder(tmp_path: Path) -> None:
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(SignCamError, match="permission denied"):
            check_writable(tmp_path / "out.json")
    finally:
        tmp_path.chmod(0o700)


def test_make_folder_says_why_it_cannot(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    assert make_folder(tmp_path / "a" / "b").is_dir()
    with pytest.raises(SignCamError, match="cannot create folder .*file/sub"):
        make_folder(tmp_path / "file" / "sub")


def test_an_output_may_not_overwrite_an_input_by_any_name(tmp_path: Path) -> None:
    video = tmp_path / "drive.mp4"
    video.write_bytes(b"")
    os.link(video, tmp_path / "same.mp4")
    for name in (video, tmp_path / "sub" / ".." / "drive.mp4", tmp_path / "same.mp4"):
        with pytest.raises(SignCamError, match="would overwrite the input"):
            refuse_overwriting("--output", name, [video])
    refuse_overwriting("--output", tmp_path / "other.mp4", [video])
    # A folder of annotated images is refused where the images it was made from are.
    with pytest.raises(SignCamError, match="would overwrite the input"):
        refuse_overwriting("--output", tmp_path, [video], folder=True)
    refuse_overwriting("--output", tmp_path / "out", [video], folder=True)


def test_two_outputs_may_not_name_one_file(tmp_path: Path) -> None:
    refuse_shared_outputs({"--json": "-", "--events": "-", "--output": None})  # standard output is no file
    refuse_shared_outputs({"--json": tmp_path / "a.jsonl", "--events": tmp_path / "a.csv"})
    with pytest.raises(SignCamError, match="--json and --events name the same file"):
        refuse_shared_outputs({"--json": tmp_path / "a.json", "--events": str(tmp_path / "." / "a.json")})
