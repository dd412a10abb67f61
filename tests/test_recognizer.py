"""The recognizer on real held-out road scenes and on frames without signs."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from signcam.classifier import DEFAULT_MODEL
from signcam.detection import Detection, iou
from signcam.gtsdb import load_scenes, split_scenes
from signcam.proposals import DEFAULT_DETECTOR
from signcam.recognizer import Recognizer

pytestmark = pytest.mark.skipif(not (DEFAULT_MODEL.is_file() and DEFAULT_DETECTOR.is_file()),
                                reason="shipped models not built")


@pytest.fixture(scope="module")
def recognizer() -> Recognizer:
    return Recognizer()


def test_names_clear_signs_in_held_out_scenes(recognizer: Recognizer, gtsdb_dir: Path) -> None:
    """Signs at least 40 px wide in scenes never tuned on: found, in place, with the right class."""
    _, holdout = split_scenes(load_scenes(gtsdb_dir))
    right = total = 0
    for scene in holdout:
        signs = [b for b in scene.boxes if b[2] - b[0] + 1 >= 40]
        if not signs:
            continue
        found = recognizer(cv2.imread(str(scene.path)))
        for *box, class_id in signs:
            total += 1
            right += any(d.class_id == class_id and iou(d.box, box) >= 0.5 for d in found)
        if total >= 25:
            break
    assert total >= 25 and right / total >= 0.8


@pytest.mark.parametrize("fill", ["grey", "noise", "gradient"])
def test_frames_without_signs_give_no_detections(recognizer: Recognizer, fill: str) -> None:
    rng = np.random.default_rng(0)
    frame = {"grey": np.full((720, 1280, 3), 120, np.uint8),
             "noise": rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8),
             "gradient": np.repeat(np.linspace(0, 255, 1280, dtype=np.uint8)[None, :, None], 720, 0).repeat(3, 2)}[fill]
    assert recognizer(frame) == []


def test_rejected_candidates_are_marked_and_boxes_stay_in_the_frame(recognizer: Recognizer, gtsdb_dir: Path) -> None:
    image = cv2.imread(str(gtsdb_dir / "00001.jpg"))
    found = recognizer(image, keep_rejected=True)
    assert any(not d.accepted for d in found)
    h, w = image.shape[:2]
    assert all(0 <= d.box[0] <= d.box[2] < w and 0 <= d.box[1] <= d.box[3] < h for d in found)
    assert set(recognizer.timings_ms) == {"proposals", "classify"}


def test_threshold_is_applied(recognizer: Recognizer, gtsdb_dir: Path) -> None:
    image = cv2.imread(str(gtsdb_dir / "00001.jpg"))
    strict = Recognizer(recognizer.classifier, conf=0.999, proposer=recognizer.proposer)
    assert all(isinstance(d, Detection) and d.score >= 0.999 for d in strict(image))
    assert len(strict(image)) <= len(recognizer(image))
