"""Find and name the signs in one full frame: proposals -> classifier -> NMS.

Example:
    >>> recognizer = Recognizer()
    >>> for det in recognizer(frame):
    ...     print(det.label, det.score, det.box)
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from signcam.classes import NOT_A_SIGN
from signcam.classifier import Classifier
from signcam.detection import Detection, inner_boxes, nms
from signcam.proposals import SignDetProposer

__all__ = ["Recognizer", "DEFAULT_CONF"]

#: Chosen on the GTSDB tune scenes (best F1 of 0.5 / 0.7 / 0.85), never on the held-out ones.
DEFAULT_CONF = 0.7

Proposer = Callable[[np.ndarray], np.ndarray]


class Recognizer:
    """Signs in a frame, each classified, rejected non-signs removed, duplicates suppressed.

    Args:
        classifier: The sign classifier; default: the shipped model, its threads not spinning
            between frames (the detector needs the cores in between).
        conf: Minimum probability of the best sign class for a detection to count.
        proposer: Callable ``image -> N x 4 boxes``; default: :class:`SignDetProposer` with the
            shipped detector.
        nms_iou: Overlap above which the weaker of two detections is dropped.
        max_rejected: How many rejected candidates to return for debugging.
    """

    def __init__(self, classifier: Classifier | None = None, conf: float = DEFAULT_CONF,
                 proposer: Proposer | None = None, nms_iou: float = 0.3, max_rejected: int = 30) -> None:
        self.classifier = classifier or Classifier(spin=False)
        self.proposer = proposer or SignDetProposer()
        self.conf = conf
        self.nms_iou = nms_iou
        self.max_rejected = max_rejected
        self.timings_ms: dict[str, float] = {}

    def __call__(self, image: np.ndarray, keep_rejected: bool = False) -> list[Detection]:
        """Detections in ``image`` (BGR), best first; with ``keep_rejected`` also rejected candidates."""
        started = time.perf_counter()
        boxes = self.proposer(image)
        proposed = time.perf_counter()
        probs = self.classifier.predict_boxes(image, boxes)
        self.timings_ms = {"proposals": (proposed - started) * 1e3,
                           "classify": (time.perf_counter() - proposed) * 1e3}
        if len(boxes) == 0:
            return []
        class_ids = probs[:, :NOT_A_SIGN].argmax(1)
        scores = probs[np.arange(len(probs)), class_ids]
        accepted = (probs.argmax(1) != NOT_A_SIGN) & (scores >= self.conf)
        h, w = image.shape[:2]
        int_boxes = np.round(boxes).astype(int)
        np.clip(int_boxes, 0, [w - 1, h - 1, w - 1, h - 1], out=int_boxes)
        found = np.flatnonzero(accepted)
        found = found[~inner_boxes(boxes[found])]
        keep = found[nms(boxes[found], scores[found], self.nms_iou)]
        detections = [self._detection(int_boxes[i], class_ids[i], scores[i]) for i in keep]
        if keep_rejected:
            rejected = np.flatnonzero(~accepted)
            sign_prob = 1.0 - probs[rejected, NOT_A_SIGN]
            rejected = rejected[np.argsort(-sign_prob)[: self.max_rejected]]
            detections += [self._detection(int_boxes[i], class_ids[i], scores[i], accepted=False) for i in rejected]
        return detections

    @staticmethod
    def _detection(box: np.ndarray, class_id: np.integer, score: np.floating, accepted: bool = True) -> Detection:
        return Detection(tuple(int(v) for v in box), int(class_id), float(score), accepted=accepted)
