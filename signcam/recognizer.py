"""Find and name the signs in one full frame: proposals -> classifier -> NMS.

Example:
    >>> recognizer = Recognizer()
    >>> for det in recognizer(frame):
    ...     print(det.label, det.score, det.box)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import cv2
import numpy as np

from signcam.classes import NOT_A_SIGN
from signcam.classifier import Classifier, best_signs
from signcam.detection import Detection, inner_boxes, nms, vote_boxes
from signcam.proposals import default_proposer

__all__ = ["Recognizer", "DEFAULT_CONF", "SEARCH_WIDTH", "VOTE_IOU", "shrink"]

#: Chosen on the GTSDB tune scenes (best F1 of 0.5 / 0.7 / 0.85), never on the held-out ones.
DEFAULT_CONF = 0.7
#: Signs are looked for in frames at most this wide, the width of the GTSDB scenes the finder
#: learnt on. A wider frame from a camera with a similar view shows every sign larger by as
#: much, so bringing it down shows the finder signs of the sizes it knows; the classifier
#: still cuts its crops from the full frame. Scenes 375-449 enlarged to 1920 and 2720 px wide,
#: two finders trained without them: F1 0.95-0.97 brought down (0.955 and 0.959 at the scenes'
#: own size), 0.87-0.92 searched as they came, which is also slower.
SEARCH_WIDTH = 1360
#: Box voting: a detection's box is the score-weighted mean of the accepted candidates of its
#: class overlapping it at IoU >= this. On the tune scenes, F1 0.984 -> 0.989 and mean IoU of the
#: signs found 0.823 -> 0.853: three large signs boxed half as wide again, and one boxed too
#: small, are now boxed right. 0.6 scored the same, 0.7 F1 0.988 (docs/experiments.md, "Box voting").
VOTE_IOU = 0.5
#: Blur (sigma, in source pixels) that :func:`shrink` applies per unit of 1 / factor.
SHRINK_BLUR = 0.4

Proposer = Callable[[np.ndarray], np.ndarray]


def shrink(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` brought down to ``size`` (width, height) without aliasing, fast at any factor.

    OpenCV's INTER_AREA is slow unless the factor is a whole fraction: 11 ms from 1920x1080 to
    1360x765 on 2 cores. A Gaussian blur that grows as the factor shrinks, then bilinear
    sampling, takes 4.5 ms and leaves less of detail finer than the new pixels.
    """
    h, w = image.shape[:2]
    factor = min(size[0] / w, size[1] / h)
    if factor < 1:
        sigma = SHRINK_BLUR / factor
        taps = 2 * round(2 * sigma) + 1  # +-2 sigma: OpenCV's default of +-3 costs more and changes little
        image = cv2.GaussianBlur(image, (taps, taps), sigma)
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)


class Recognizer:
    """Signs in a frame, each classified, rejected non-signs removed, duplicates suppressed.

    Args:
        classifier: The sign classifier; default: the shipped model, its threads not spinning
            between frames (the detector needs the cores in between).
        conf: Minimum probability of the best sign class for a detection to count.
        proposer: Callable ``image -> N x 4 boxes``; default: the shipped detector's peaks and
            the priority-road diamonds (:func:`~signcam.proposals.default_proposer`).
        nms_iou: Overlap above which the weaker of two detections is dropped.
        max_rejected: How many rejected candidates to return for debugging.
        search_width: Wider frames are brought down to this width to look for signs (None: never).
        vote_iou: Each detection's box becomes the score-weighted mean of the accepted candidates
            of its class that overlap it at least this much (box voting); None: the best-scoring box.
    """

    def __init__(self, classifier: Classifier | None = None, conf: float = DEFAULT_CONF,
                 proposer: Proposer | None = None, nms_iou: float = 0.3, max_rejected: int = 30,
                 search_width: int | None = SEARCH_WIDTH, vote_iou: float | None = VOTE_IOU) -> None:
        self.classifier = classifier or Classifier(spin=False)
        self.proposer = proposer or default_proposer()
        self.conf = conf
        self.nms_iou = nms_iou
        self.max_rejected = max_rejected
        self.search_width = search_width
        self.vote_iou = vote_iou
        self.timings_ms: dict[str, float] = {}

    def __call__(self, image: np.ndarray, keep_rejected: bool = False,
                 windows: np.ndarray | None = None) -> list[Detection]:
        """Detections in ``image`` (BGR), best first; with ``keep_rejected`` also rejected candidates.

        Args:
            image: The full frame.
            keep_rejected: Also return the candidates the classifier turned down.
            windows: ``N x 4`` boxes ``(x1, y1, x2, y2)``: look for signs only inside these parts
                of the frame (around the signs being tracked), which costs a fraction of the
                whole frame. Default: the whole frame.
        """
        started = time.perf_counter()
        boxes = self._propose(image, windows)
        proposed = time.perf_counter()
        probs = self.classifier.predict_boxes(image, boxes)
        self.timings_ms = {"proposals": (proposed - started) * 1e3,
                           "classify": (time.perf_counter() - proposed) * 1e3}
        if len(boxes) == 0:
            return []
        class_ids, scores, _, accepted = best_signs(probs, self.conf)
        h, w = image.shape[:2]
        candidates = np.flatnonzero(accepted)
        found = candidates[~inner_boxes(boxes[candidates])]
        keep = found[nms(boxes[found], scores[found], self.nms_iou)]
        if self.vote_iou is not None and len(keep):
            boxes = boxes.copy()
            # Candidates dropped as inner boxes vote too: beside an oversized box, they are the right size.
            at = np.searchsorted(candidates, keep)
            boxes[keep] = vote_boxes(boxes[candidates], scores[candidates], class_ids[candidates], at, self.vote_iou)
        int_boxes = np.round(boxes).astype(int)
        np.clip(int_boxes, 0, [w - 1, h - 1, w - 1, h - 1], out=int_boxes)
        detections = [self._detection(int_boxes[i], class_ids[i], scores[i]) for i in keep]
        if keep_rejected:
            rejected = np.flatnonzero(~accepted)
            sign_prob = 1.0 - probs[rejected, NOT_A_SIGN]
            rejected = rejected[np.argsort(-sign_prob)[: self.max_rejected]]
            detections += [self._detection(int_boxes[i], class_ids[i], scores[i], accepted=False) for i in rejected]
        return detections

    def _propose(self, image: np.ndarray, windows: np.ndarray | None) -> np.ndarray:
        """Candidate boxes in frame coordinates, looked for in the frame brought down to ``search_width``."""
        h, w = image.shape[:2]
        size = (w, h) if self.search_width is None or w <= self.search_width else \
            (self.search_width, max(1, round(h * self.search_width / w)))
        # Pixel centres map onto pixel centres: x_search + 0.5 = (x + 0.5) * scale.
        scale = np.array([size[0] / w, size[1] / h] * 2)
        if windows is None:
            boxes = self.proposer(image if size == (w, h) else shrink(image, size))
        else:
            boxes = self._propose_in(image, (np.asarray(windows, np.float64).reshape(-1, 4) + 0.5) * scale - 0.5, size)
        return (np.asarray(boxes, np.float64).reshape(-1, 4) + 0.5) / scale - 0.5

    def _propose_in(self, image: np.ndarray, windows: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """The proposer's boxes inside each window, in the coordinates of the frame at ``size``.

        Window edges snap outwards to the proposer's ``grid_px`` where it has one, so it sees the
        pixels at the scale and on the grid of a whole-frame search: on the 711 signs of the tune
        scenes, windows placed a tenth of a side off lost 7 of the signs the whole frame gave,
        against 13 without the grid (the finder at half scale, a 32 px grid). Only the windows
        are brought down to ``size``, not the whole frame.
        """
        h, w = image.shape[:2]
        fx, fy = w / size[0], h / size[1]
        grid = getattr(self.proposer, "grid_px", 1)
        windows = np.hstack([np.floor(windows[:, :2] / grid) * grid, np.ceil((windows[:, 2:] + 1) / grid) * grid - 1])
        found = [np.zeros((0, 4))]
        for x1, y1, x2, y2 in np.round(windows).astype(int):
            x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, size[0] - 1), min(y2, size[1] - 1)
            if x2 - x1 < 8 or y2 - y1 < 8:
                continue
            if (fx, fy) == (1, 1):
                part = image[y1:y2 + 1, x1:x2 + 1]
            else:  # the frame's pixels under the window, brought down to the window's size
                rows = slice(int(y1 * fy), min(h, math.ceil((y2 + 1) * fy)))
                part = shrink(image[rows, int(x1 * fx):min(w, math.ceil((x2 + 1) * fx))], (x2 - x1 + 1, y2 - y1 + 1))
            boxes = self.proposer(part)
            found.append(np.asarray(boxes, np.float64).reshape(-1, 4) + [x1, y1, x1, y1])
        return np.concatenate(found)

    @staticmethod
    def _detection(box: np.ndarray, class_id: np.integer, score: np.floating, accepted: bool = True) -> Detection:
        return Detection(tuple(int(v) for v in box), int(class_id), float(score), accepted=accepted)
