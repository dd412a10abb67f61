"""Read GTSDB-format scene folders: images plus a ``gt.txt`` of boxes.

Each ``gt.txt`` line is ``file;left;top;right;bottom;classId``. The files may be the
original ``.ppm`` or converted ``.jpg``/``.png`` with the same number; both are found.

Example:
    >>> scenes = load_scenes("data/gtsdb-train")  # doctest: +SKIP
    >>> scenes[1].boxes
    [(983, 388, 1024, 432, 40), ...]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from signcam.classes import NUM_SIGN_CLASSES
from signcam.errors import DataError
from signcam.sources import IMAGE_SUFFIXES, read_image

__all__ = ["Scene", "load_scenes", "split_scenes", "split_validation", "select_scenes", "SPLITS", "HOLDOUT_FROM",
           "VALIDATION_FROM"]


#: Scenes numbered from here on are never tuned on: they measure detection quality.
HOLDOUT_FROM = 450
#: The tune scenes from here to HOLDOUT_FROM can be kept out of a model's training to
#: compare training recipes on them (``fit-detector --validation``, ``eval-detect --split val``).
VALIDATION_FROM = 375


@dataclass
class Scene:
    """One annotated road scene.

    Args:
        number: The scene's number (``00042.ppm`` -> 42).
        path: Image file on disk.
        boxes: ``(left, top, right, bottom, class_id)`` per sign, inclusive pixel coords.
    """

    number: int
    path: Path
    boxes: list[tuple[int, int, int, int, int]] = field(default_factory=list)

    def read(self) -> np.ndarray:
        """The scene's image, BGR.

        Raises:
            SourceError: the file cannot be read or is damaged.
        """
        return read_image(self.path)


def load_scenes(folder: str | Path) -> list[Scene]:
    """Every image of a GTSDB-format folder with its boxes, signless scenes included.

    Args:
        folder: A folder holding ``gt.txt`` and the numbered images.

    Raises:
        FileNotFoundError: if the folder or its ``gt.txt`` is missing.
        DataError: a line of ``gt.txt`` is not ``file;left;top;right;bottom;classId``, or names a
            class outside the 43 signs or a box whose right or bottom edge comes before its left or top.
    """
    folder = Path(folder)
    gt_file = folder / "gt.txt"
    if not gt_file.is_file():
        raise FileNotFoundError(f"{gt_file} not found: a GTSDB folder holds gt.txt and 00000.ppm/.jpg ...")
    scenes: dict[str, Scene] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in IMAGE_SUFFIXES and path.stem.isdigit():
            scenes.setdefault(path.stem, Scene(int(path.stem), path))
    try:
        lines = gt_file.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise DataError(f"{gt_file} is not text: a GTSDB gt.txt has lines file;left;top;right;bottom;classId") from None
    for line_no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            name, left, top, right, bottom, class_id = line.strip().split(";")
            box = (int(left), int(top), int(right), int(bottom), int(class_id))
        except ValueError as exc:
            raise DataError(f"{gt_file}:{line_no}: expected file;left;top;right;bottom;classId") from exc
        if not 0 <= box[4] < NUM_SIGN_CLASSES:
            raise DataError(f"{gt_file}:{line_no}: class {box[4]} is not one of the {NUM_SIGN_CLASSES} GTSRB "
                            f"signs (0-{NUM_SIGN_CLASSES - 1})")
        if box[2] < box[0] or box[3] < box[1]:
            raise DataError(f"{gt_file}:{line_no}: the box ends before it starts (left;top;right;bottom)")
        stem = Path(name).stem
        if stem not in scenes:
            raise FileNotFoundError(f"{gt_file}:{line_no}: no image for {name} (looked for a numbered image "
                                    f"{stem}.ppm, .jpg, .png ... beside gt.txt)")
        scenes[stem].boxes.append(box)
    return sorted(scenes.values(), key=lambda s: s.number)


def split_scenes(scenes: list[Scene], holdout_from: int = HOLDOUT_FROM) -> tuple[list[Scene], list[Scene]]:
    """Split into (tune, holdout) by scene number; the holdout is never tuned on."""
    tune = [s for s in scenes if s.number < holdout_from]
    holdout = [s for s in scenes if s.number >= holdout_from]
    return tune, holdout


def split_validation(tune: list[Scene], validation_from: int = VALIDATION_FROM) -> tuple[list[Scene], list[Scene]]:
    """Split the tune scenes into (train, validation) by scene number, to compare recipes on the latter."""
    return split_scenes(tune, validation_from)


#: The named parts of a GTSDB folder (see :func:`select_scenes`).
SPLITS = ("tune", "holdout", "val", "train", "all")


def select_scenes(scenes: list[Scene], split: str) -> list[Scene]:
    """The scenes of one part: ``tune`` (below ``HOLDOUT_FROM``), ``holdout`` (from it on), ``val``
    (``VALIDATION_FROM`` up to the holdout), ``train`` (tune less val) or ``all``.

    Example:
        >>> [s.number for s in select_scenes([Scene(374, Path("a")), Scene(375, Path("b"))], "val")]
        [375]
    """
    tune, holdout = split_scenes(scenes)
    train, val = split_validation(tune)
    parts = {"tune": tune, "holdout": holdout, "val": val, "train": train, "all": scenes}
    if split not in parts:
        raise ValueError(f"unknown split {split!r}: one of {', '.join(SPLITS)}")
    return parts[split]
