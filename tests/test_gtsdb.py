"""Reading GTSDB-format folders."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from signcam.errors import DataError, SourceError
from signcam.gtsdb import (
    HOLDOUT_FROM,
    VALIDATION_FROM,
    Scene,
    load_scenes,
    select_scenes,
    split_scenes,
    split_validation,
)


def _folder(tmp_path: Path, lines: str, images: dict[str, str]) -> Path:
    for stem, suffix in images.items():
        cv2.imwrite(str(tmp_path / f"{stem}{suffix}"), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "gt.txt").write_bytes(lines.encode("latin-1"))
    return tmp_path


def test_ppm_names_find_jpg_files_and_signless_scenes_are_kept(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "00001.ppm;1;2;3;4;40\n00001.ppm;5;6;7;8;14\n",
                     {"00000": ".jpg", "00001": ".jpg", "00460": ".ppm"})
    scenes = load_scenes(folder)
    assert [s.number for s in scenes] == [0, 1, 460]
    assert scenes[0].boxes == [] and scenes[1].boxes == [(1, 2, 3, 4, 40), (5, 6, 7, 8, 14)]
    assert scenes[1].path.suffix == ".jpg"
    tune, holdout = split_scenes(scenes)
    assert [s.number for s in tune] == [0, 1] and [s.number for s in holdout] == [460]
    assert HOLDOUT_FROM == 450


def test_validation_scenes_are_the_last_tune_scenes() -> None:
    tune = [Scene(n, Path(f"{n:05d}.jpg")) for n in (0, 374, 375, 449)]
    train, validation = split_validation(tune)
    assert [s.number for s in train] == [0, 374] and [s.number for s in validation] == [375, 449]
    assert VALIDATION_FROM < HOLDOUT_FROM


@pytest.mark.parametrize(("split", "numbers"), [("tune", [0, 374, 375, 449]), ("holdout", [450, 599]),
                                               ("val", [375, 449]), ("train", [0, 374]),
                                               ("all", [0, 374, 375, 449, 450, 599])])
def test_select_scenes_by_split_name(split: str, numbers: list[int]) -> None:
    scenes = [Scene(n, Path(f"{n:05d}.jpg")) for n in (0, 374, 375, 449, 450, 599)]
    assert [s.number for s in select_scenes(scenes, split)] == numbers


def test_a_scene_reads_its_image_or_says_it_cannot(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "00001.png"), np.full((8, 12, 3), 7, np.uint8))
    (tmp_path / "00002.jpg").write_bytes(b"not an image")
    assert Scene(1, tmp_path / "00001.png").read().shape == (8, 12, 3)
    with pytest.raises(SourceError, match="00002.jpg: not an image"):
        Scene(2, tmp_path / "00002.jpg").read()


@pytest.mark.parametrize(("lines", "error", "message"),
                         [("00001.ppm;1;2;3\n", DataError, "gt.txt:1: expected file;left"),
                          ("00009.ppm;1;2;3;4;5\n", FileNotFoundError, "gt.txt:1: no image for 00009"),
                          ("00001.ppm;1;2;3;4;5\n00001.ppm;1;2;3;4;99\n", DataError, "gt.txt:2: class 99 is not one"),
                          ("00001.ppm;1;2;3;4;-1\n", DataError, "gt.txt:1: class -1 is not one"),
                          ("00001.ppm;9;2;3;4;5\n", DataError, "gt.txt:1: the box ends before it starts"),
                          ("00001.ppm;1;2;3;4;5 \xe9\n", DataError, "gt.txt is not text")],
                         ids=["fields", "image", "class-99", "class-minus-1", "box", "not-utf8"])
def test_bad_ground_truth_says_where(tmp_path: Path, lines: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        load_scenes(_folder(tmp_path, lines, {"00001": ".jpg"}))


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="gt.txt"):
        load_scenes(tmp_path / "nope")


def test_shared_data_has_the_documented_scenes(gtsdb_dir: Path) -> None:
    scenes = load_scenes(gtsdb_dir)
    assert len(scenes) == 600 and sum(len(s.boxes) for s in scenes) == 852
