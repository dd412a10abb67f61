"""Detections and the operations on them that every stage shares (IoU, NMS).

Example:
    >>> d = Detection((10, 10, 40, 40), class_id=14, score=0.97)
    >>> d.label, d.category, d.width
    ('Stop', 'other', 31)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from signcam.classes import category_of, label_of

__all__ = ["Detection", "Motion", "containment_matrix", "inner_boxes", "iou", "iou_matrix", "nms", "vote_boxes"]


@dataclass(frozen=True)
class Motion:
    """How a tracked sign moves per frame: its centre's velocity (px) and its size's growth factor.

    A sign seen from a moving car drifts outwards and grows; its speed grows with its size, so
    each frame's step is the previous one times ``growth``.
    """

    vx: float
    vy: float
    growth: float = 1.0

    def drift(self, steps: int) -> float:
        """How many times the velocity the centre moves in ``steps`` frames."""
        return float((self.growth ** np.arange(1, steps + 1)).sum())

    def box_after(self, centre: np.ndarray, size: np.ndarray, steps: int) -> np.ndarray:
        """Where a box of ``centre`` and ``size`` (width, height) is ``steps`` frames later, as x1, y1, x2, y2."""
        centre = np.asarray(centre, np.float64) + np.array([self.vx, self.vy]) * self.drift(steps)
        half = (np.asarray(size, np.float64) * self.growth**steps - 1) / 2  # inclusive pixel coordinates
        return np.concatenate([centre - half, centre + half])


@dataclass(frozen=True)
class Detection:
    """A sign found in a frame.

    Args:
        box: ``(x1, y1, x2, y2)`` inclusive pixel coordinates in the original frame.
        class_id: Best of the 43 GTSRB classes.
        score: Probability of ``class_id``.
        track_id: Id of the track it belongs to, ``None`` for stills or unconfirmed.
        accepted: False for a candidate the classifier rejected (shown only when debugging).
        motion: The track's motion per frame, for drawing the box on a later frame; ``None``
            when not tracked.
    """

    box: tuple[int, int, int, int]
    class_id: int
    score: float
    track_id: int | None = None
    accepted: bool = True
    motion: Motion | None = None

    @property
    def label(self) -> str:
        return label_of(self.class_id)

    @property
    def category(self) -> str:
        return category_of(self.class_id)

    @property
    def width(self) -> int:
        return self.box[2] - self.box[0] + 1

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1] + 1

    @property
    def centre_and_size(self) -> tuple[np.ndarray, np.ndarray]:
        """The box's centre (x, y) and size (width, height), float pixels."""
        x1, y1, x2, y2 = self.box
        return np.array([(x1 + x2) / 2, (y1 + y2) / 2]), np.array([x2 - x1 + 1, y2 - y1 + 1], np.float64)

    def with_track(self, track_id: int | None, class_id: int | None = None, score: float | None = None,
                   motion: Motion | None = None) -> Detection:
        """A copy assigned to a track (and, after voting, maybe another class and score)."""
        return replace(self, track_id=track_id,
                       class_id=self.class_id if class_id is None else class_id,
                       score=self.score if score is None else score, motion=motion)

    def ahead(self, steps: int) -> Detection:
        """This detection moved ``steps`` frames on along its track's motion (itself if untracked).

        Recognition takes time: when a frame's result is drawn on a later frame, the boxes
        would trail behind moving signs.
        """
        if self.motion is None or steps <= 0:
            return self
        moved = self.motion.box_after(*self.centre_and_size, steps)
        return replace(self, box=tuple(int(v) for v in np.floor(moved + 0.5)))

    def to_json(self) -> dict:
        return {"box": [int(v) for v in self.box], "class_id": int(self.class_id), "label": self.label,
                "score": round(float(self.score), 4), "track_id": self.track_id}


def _overlap(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Intersection areas (N x M) and the areas of ``a`` (N) and ``b`` (M), inclusive coordinates."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1 + 1, 0, None) * np.clip(y2 - y1 + 1, 0, None)
    area_a = (a[:, 2] - a[:, 0] + 1) * (a[:, 3] - a[:, 1] + 1)
    area_b = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
    return inter, area_a, area_b


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (N x 4) with every box in ``b`` (M x 4), inclusive coordinates."""
    inter, area_a, area_b = _overlap(a, b)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def inner_boxes(boxes: np.ndarray, inside: float = 0.8, area_ratio: float = 2.0) -> np.ndarray:
    """Mask of boxes lying mostly (``inside``) within another box at least ``area_ratio`` times larger.

    The white core of a triangle or the centre of a stop sign can look like a sign of its
    own; the box around the whole sign is the right one.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    area = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)
    larger = area[None, :] >= area_ratio * area[:, None]
    return ((containment_matrix(boxes, boxes) >= inside) & larger).any(1)


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two boxes."""
    return float(iou_matrix(np.asarray(a)[None], np.asarray(b)[None])[0, 0])


def containment_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Share of each box in ``a`` that lies inside each box in ``b`` (N x M)."""
    inter, area_a, _ = _overlap(a, b)
    return inter / np.maximum(area_a[:, None], 1e-9)


def vote_boxes(boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, kept: np.ndarray,
               iou_min: float) -> np.ndarray:
    """Each kept box replaced by the score-weighted mean of the boxes of its class overlapping it.

    Box voting (Gidaris and Komodakis, 2015): the candidates around one sign come from several
    finder peaks and box sizes, and the classifier scores them all about alike, so the single
    best-scoring one is placed no better than their consensus, and an oversized outlier can win.

    Args:
        boxes: N x 4 candidate boxes.
        scores: N scores, the weights.
        class_ids: N class ids; a box votes only for kept boxes of its class.
        kept: Indices of the boxes that become detections.
        iou_min: Overlap with a kept box from which a candidate votes for it (at 0, any overlap).

    Returns:
        len(kept) x 4 voted boxes.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores, class_ids, kept = np.asarray(scores, np.float64), np.asarray(class_ids), np.asarray(kept, np.int64)
    if len(kept) == 0:
        return np.zeros((0, 4))
    overlap = iou_matrix(boxes[kept], boxes)
    votes = (overlap >= iou_min) & (overlap > 0) & (class_ids[kept][:, None] == class_ids[None, :])
    votes[np.arange(len(kept)), kept] = True
    weights = votes * scores[None, :]
    return weights @ boxes / weights.sum(1, keepdims=True)


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float = 0.3) -> np.ndarray:
    """Indices of the boxes kept by greedy non-maximum suppression, best first."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    if len(order) == 0:
        return order
    overlaps = iou_matrix(boxes, boxes)
    keep: list[int] = []
    suppressed = np.zeros(len(order), bool)
    for i in order:
        if suppressed[i]:
            continue
        keep.append(int(i))
        suppressed |= overlaps[i] > threshold
    return np.array(keep, dtype=np.int64)
