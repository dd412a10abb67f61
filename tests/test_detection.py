"""IoU, containment, NMS and the Detection record."""

from __future__ import annotations

import numpy as np
import pytest

from signcam.detection import Detection, Motion, containment_matrix, inner_boxes, iou, iou_matrix, nms, vote_boxes


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((0, 0, 9, 9), (0, 0, 9, 9), 1.0),
        ((0, 0, 9, 9), (10, 10, 19, 19), 0.0),
        ((0, 0, 9, 9), (5, 0, 14, 9), 50 / 150),
        ((0, 0, 9, 9), (0, 0, 4, 4), 25 / 100),
    ],
)
def test_iou_of_inclusive_pixel_boxes(a, b, expected) -> None:
    assert iou(a, b) == pytest.approx(expected)


def test_iou_matrix_shape_and_empty_inputs() -> None:
    assert iou_matrix(np.zeros((3, 4)), np.zeros((0, 4))).shape == (3, 0)
    assert iou_matrix(np.array([[0, 0, 9, 9]]), np.array([[0, 0, 9, 9], [20, 20, 29, 29]])).tolist() == [[1.0, 0.0]]


def test_nms_keeps_the_best_of_overlapping_boxes_and_distant_ones() -> None:
    boxes = np.array([[0, 0, 9, 9], [1, 1, 10, 10], [50, 50, 59, 59], [0, 0, 9, 9]], float)
    scores = np.array([0.6, 0.9, 0.5, 0.1])
    assert nms(boxes, scores, 0.3).tolist() == [1, 2]
    assert nms(np.zeros((0, 4)), np.zeros(0)).tolist() == []


def test_box_voting_averages_the_overlapping_boxes_of_the_kept_ones_class() -> None:
    boxes = np.array([[0, 0, 99, 99],        # kept
                      [10, 10, 89, 89],      # same class, IoU 0.64: votes
                      [0, 0, 79, 79],        # another class: does not
                      [40, 40, 59, 59],      # same class, IoU 0.04: does not
                      [200, 200, 239, 239]], float)  # kept, nothing near it
    scores = np.array([0.9, 0.9, 0.99, 0.8, 0.7])
    class_ids = np.array([1, 1, 2, 1, 1])
    voted = vote_boxes(boxes, scores, class_ids, np.array([0, 4]), iou_min=0.5)
    assert voted == pytest.approx(np.array([[5, 5, 94, 94], [200, 200, 239, 239]]))
    assert vote_boxes(boxes, scores, class_ids, np.array([], int), iou_min=0.5).shape == (0, 4)
    # At 0, the small box inside votes too, but a sign elsewhere never does.
    anywhere = vote_boxes(boxes, scores, class_ids, np.array([0, 4]), iou_min=0.0)
    assert anywhere[1] == pytest.approx([200, 200, 239, 239]) and anywhere[0][2] < 94


def test_containment_and_inner_boxes() -> None:
    sign = [100, 100, 159, 159]
    core = [115, 120, 144, 149]          # the white inside of a triangle
    rescaled = [103, 103, 156, 156]      # the same sign, framed a little tighter
    elsewhere = [300, 300, 329, 329]
    boxes = np.array([sign, core, rescaled, elsewhere], float)
    assert containment_matrix(boxes, boxes)[1, 0] == pytest.approx(1.0)
    assert inner_boxes(boxes).tolist() == [False, True, False, False]


def test_detection_json_uses_plain_types() -> None:
    record = Detection((np.int64(1), 2, 3, 4), class_id=38, score=np.float32(0.5), track_id=7).to_json()
    assert record == {"box": [1, 2, 3, 4], "class_id": 38, "label": "Keep right", "score": 0.5, "track_id": 7}
    assert all(type(v) is int for v in record["box"])


def test_untracked_detections_stay_where_they_were_seen() -> None:
    detection = Detection((10, 10, 40, 40), 14, 0.97)
    assert detection.ahead(5) is detection
    assert detection.with_track(3).ahead(5).box == detection.box


def test_motion_moves_and_grows_a_box() -> None:
    moving = Detection((10, 20, 29, 39), 14, 0.97, track_id=1, motion=Motion(vx=4.0, vy=-2.0))
    assert moving.ahead(0) is moving and moving.ahead(3).box == (22, 14, 41, 33)
    growing = Detection((0, 0, 19, 19), 14, 0.97, track_id=1, motion=Motion(0.0, 0.0, growth=1.1))
    assert growing.ahead(2).width == pytest.approx(20 * 1.1**2, abs=1)
