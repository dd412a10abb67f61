"""Where in a frame a sign might be: candidate boxes, cheap enough for every frame.

Proposers share one call, ``proposer(image) -> N x 4 boxes``:
:class:`SignDetProposer` runs the small learned detector (``assets/signdet.onnx``);
:class:`ColourProposer` needs no model and looks for sign colours; :class:`DiamondProposer`
looks for the priority-road diamond by its colours, which the detector knows least well.
:class:`UnionProposer` joins several; :func:`default_proposer` is the runtime's.

German signs announce themselves by colour: red rims (prohibitory, danger, give way,
stop), blue discs (mandatory), the yellow priority diamond. A rim merged with a red
background still encloses the sign's white interior, so the holes inside red regions
are candidates too. Candidates are loose; the classifier decides.

Example:
    >>> boxes = default_proposer()(frame)   # N x 4 float (x1, y1, x2, y2)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from signcam.onnx_session import open_onnx

if TYPE_CHECKING:
    import onnxruntime as ort

__all__ = ["ColourProposer", "DiamondProposer", "SignDetProposer", "UnionProposer", "default_proposer",
           "DEFAULT_DETECTOR", "DEFAULT_COARSE_DETECTOR", "DETECTOR_METADATA_KEY", "PEAK_THRESHOLD", "MAX_PEAKS",
           "UPSCALE", "LEVELS", "COARSE_MIN_PX", "COARSE_MIN_SIDE"]

DEFAULT_DETECTOR = Path(__file__).resolve().parent.parent / "assets" / "signdet.onnx"
#: The finder for the coarser levels: trained with more large signs in its crops (zoomed in
#: up to 1.8 times, rare classes more often), so it also knows signs such as "no entry" when
#: they are large, which the first finder only knows small.
DEFAULT_COARSE_DETECTOR = DEFAULT_DETECTOR.with_name("signdet-coarse.onnx")
DETECTOR_METADATA_KEY = "signcam-detector"

_KERNEL = np.ones((3, 3), np.uint8)


def _scaled(x: np.ndarray, y: np.ndarray, w: np.ndarray, h: np.ndarray, scale: float) -> np.ndarray:
    cx, cy = x + w / 2, y + h / 2
    return np.stack([cx - w * scale / 2, cy - h * scale / 2, cx + w * scale / 2 - 1, cy + h * scale / 2 - 1], 1)


@dataclass
class ColourProposer:
    """Candidate sign boxes from red/blue/yellow regions and the holes inside red/blue rims.

    Args:
        min_side: Smallest region side in pixels.
        max_side: Largest region side in pixels.
        min_saturation: HSV saturation a sign colour needs (0..255).
        min_value: HSV value a sign colour needs (0..255); low, signs are often in shade.
        max_candidates: Cap per frame, largest regions first, to bound classification time.
    """

    min_side: int = 8
    max_side: int = 220
    min_saturation: int = 50
    min_value: int = 25
    max_candidates: int = 150

    def masks(self, image: np.ndarray) -> dict[str, np.ndarray]:
        hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
        s, v = self.min_saturation, self.min_value
        red = cv2.inRange(hsv, (0, s, v), (10, 255, 255)) | cv2.inRange(hsv, (160, s, v), (180, 255, 255))
        blue = cv2.inRange(hsv, (95, s + 20, v), (135, 255, 255))
        yellow = cv2.inRange(hsv, (15, s + 30, 60), (35, 255, 255))
        return {"red": red, "blue": blue, "yellow": yellow}

    def _regions(self, mask: np.ndarray) -> np.ndarray:
        closed = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, _KERNEL)
        _, _, stats, _ = cv2.connectedComponentsWithStats(closed, connectivity=8)
        return stats[1:, :4].astype(np.float64)

    @staticmethod
    def _holes(mask: np.ndarray) -> np.ndarray:
        contours, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
        if hierarchy is None:
            return np.zeros((0, 4))
        rects = [cv2.boundingRect(c) + (cv2.contourArea(c),)
                 for c, h in zip(contours, hierarchy[0], strict=True) if h[3] >= 0]
        rects = np.array(rects, np.float64).reshape(-1, 5)
        # A sign's interior fills its bounding box well; thin slivers between blobs do not.
        return rects[rects[:, 4] >= 0.3 * rects[:, 2] * rects[:, 3], :4]

    def _keep(self, rects: np.ndarray) -> np.ndarray:
        w, h = rects[:, 2], rects[:, 3]
        ok = (w >= self.min_side) & (h >= self.min_side) & (w <= self.max_side) & (h <= self.max_side)
        return rects[ok & (w < 2.5 * h) & (h < 2.5 * w)]

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """Candidate boxes, N x 4 float ``(x1, y1, x2, y2)``, most promising first."""
        boxes = []
        for name, mask in self.masks(image).items():
            regions = self._keep(self._regions(mask))
            x, y, w, h = regions.T
            if name == "yellow":  # the diamond's yellow core sits inside a white border
                boxes += [_scaled(x, y, w, h, 1.0), _scaled(x, y, w, h, 1.4)]
                continue
            boxes.append(_scaled(x, y, w, h, 1.0))
            tall = regions[h > 1.4 * w]  # stacked signs merge into one tall region
            tx, ty, tw, _ = tall.T
            boxes += [np.stack([tx, ty, tx + tw - 1, ty + tw - 1], 1),
                      np.stack([tx, ty + tall[:, 3] - tw, tx + tw - 1, ty + tall[:, 3] - 1], 1)]
            holes = self._keep(self._holes(mask))
            hx, hy, hw, hh = holes.T
            boxes += [_scaled(hx, hy, hw, hh, 1.25), _scaled(hx, hy, hw, hh, 1.45)]
        out = np.concatenate(boxes) if boxes else np.zeros((0, 4))
        area = (out[:, 2] - out[:, 0]) * (out[:, 3] - out[:, 1])
        return out[np.argsort(-area, kind="stable")[: self.max_candidates]]


#: Most a diamond's core is wider than tall, or taller than wide (seen at an angle, or not quite found).
_DIAMOND_ASPECT = 1.4


def _diamond_aspect(w: np.ndarray | float, h: np.ndarray | float) -> np.ndarray | bool:
    """Whether a core of width ``w`` and height ``h`` is near enough square to be a diamond."""
    return (w < _DIAMOND_ASPECT * h) & (h < _DIAMOND_ASPECT * w)


@dataclass
class DiamondProposer:
    """Candidate boxes for the "priority road" diamond: a yellow core inside a white border.

    The learned finder saw few of these diamonds and misses some in scenes it did not learn
    from, so this looks for them by colour. In GTSDB's JPEGs the core's yellow ranges from
    orange (hue 10) to lemon (30), and from dark (value 25) to glare, so the colour test is
    loose; what sorts out the brick, leaves and car paint it also lets in is the shape (a
    diamond about as wide as tall fills half its bounding box) and the unsaturated border
    around it: samples just outside each corner of the core must be far paler than its centre.
    About two candidates a frame reach the classifier, which decides.

    Args:
        min_side: Smallest core side in pixels of the image looked at (5 at half scale: a
            sign about 21 px wide).
        max_side: Largest core side, likewise (a sign about 250 px wide).
        hue: OpenCV hue range (0..180) of the core's yellow.
        min_saturation: Saturation a pixel of the core needs (0..255).
        min_value: Value a pixel of the core needs (0..255).
        core_saturation: Mean saturation the core's centre needs.
        border_ratio: Most the border's mean saturation may be, as a share of the centre's.
        box_scales: The sign's box, once per entry, as a multiple of its core's (2.08: on the
            tune scenes, the median ratio of 36 annotated diamonds to their core, p10-p90
            1.92-2.40; a second box at 2.35, 2.5 or 2.6 named no more of them and let in
            one or two more false alarms).
        scale: Size of the image looked at, relative to the one given; sides are in its pixels.
        grow: Look at each core again at full size, to find the edges the colour test lost
            (see :meth:`_grown`).
    """

    min_side: int = 5
    max_side: int = 60
    hue: tuple[int, int] = (8, 32)
    min_saturation: int = 90
    min_value: int = 20
    core_saturation: float = 120.0
    border_ratio: float = 0.45
    box_scales: tuple[float, ...] = (2.08,)
    scale: float = 0.5
    grow: bool = True
    #: Windows around tracked signs need not snap to any grid.
    grid_px = 1

    def cores(self, image: np.ndarray) -> np.ndarray:
        """Yellow regions shaped like a diamond's core: N x 4 ``(x, y, w, h)``."""
        hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
        mask = cv2.inRange(hsv, (self.hue[0], self.min_saturation, self.min_value), (self.hue[1], 255, 255))
        _, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
        x, y, w, h, area = stats[1:].T.astype(np.float64)
        shaped = ((w >= self.min_side) & (h >= self.min_side) & (w <= self.max_side) & (h <= self.max_side)
                  & _diamond_aspect(w, h) & (area > 0.35 * w * h) & (area < 0.75 * w * h))
        cores = np.stack([x, y, w, h], 1)[shaped]
        if not len(cores):
            return cores
        saturation = cv2.integral(np.ascontiguousarray(hsv[:, :, 1]))
        return cores[self._bordered(cores, saturation)]

    def _bordered(self, cores: np.ndarray, saturation: np.ndarray) -> np.ndarray:
        """Which cores have a saturated centre and a pale border (``saturation``: integral image)."""
        x, y, w, h = cores.T
        cx, cy, r = x + w / 2, y + h / 2, (w + h) / 4
        # One square on the centre, and one just outside each of the core's four corners.
        dx, dy = np.array([0, -1, 1, 0, 0])[:, None], np.array([0, 0, 0, -1, 1])[:, None]
        halves = np.where(dx | dy, np.maximum(1, 0.2 * r), np.maximum(1, 0.35 * r))
        means = _box_mean(saturation, cx + dx * 1.45 * r, cy + dy * 1.45 * r, halves)
        centre, border = means[0], means[1:].mean(0)
        return (centre > self.core_saturation) & (border < self.border_ratio * centre)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """Candidate boxes, N x 4 float ``(x1, y1, x2, y2)``."""
        small = image
        if self.scale != 1:
            size = (max(1, round(image.shape[1] * self.scale)), max(1, round(image.shape[0] * self.scale)))
            small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        fx, fy = image.shape[1] / small.shape[1], image.shape[0] / small.shape[0]
        cores = self.cores(small) * [fx, fy, fx, fy]
        if self.grow:
            cores = [self._grown(image, core) for core in cores]
        x, y, w, h = np.array(cores, np.float64).reshape(-1, 4).T
        return np.concatenate([_scaled(x, y, w, h, scale) for scale in self.box_scales])

    def _grown(self, image: np.ndarray, core: np.ndarray) -> np.ndarray:
        """``core`` (x, y, w, h) grown to the whole yellow diamond around its centre, at full size.

        The fixed colour thresholds lose a dark or washed-out core's edges, which only ever
        makes a core look smaller, so the core is looked at again with thresholds relative to
        its own centre, and kept only if that made it larger and still diamond-shaped. On the
        tune scenes this moved the smallest box of a diamond from 0.71 to 0.88 of the sign's
        width (a core in shade), and the largest stayed at 1.14.
        """
        x, y, w, h = core
        cx, cy, reach = x + w / 2, y + h / 2, 0.9 * max(w, h)
        x1, y1 = max(0, int(cx - reach)), max(0, int(cy - reach))
        x2, y2 = min(image.shape[1], int(cx + reach) + 1), min(image.shape[0], int(cy + reach) + 1)
        hsv = cv2.cvtColor(image[y1:y2, x1:x2], cv2.COLOR_BGR2HSV)
        px, py, r = int(cx) - x1, int(cy) - y1, max(1, int(min(w, h) / 6))
        centre = hsv[max(0, py - r):py + r + 1, max(0, px - r):px + r + 1].reshape(-1, 3)
        saturation, value = np.median(centre[:, 1]), np.median(centre[:, 2])
        mask = cv2.inRange(hsv, (self.hue[0], 0.5 * saturation, 0.4 * value), (self.hue[1], 255, 255))
        _, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
        label = labels[min(py, labels.shape[0] - 1), min(px, labels.shape[1] - 1)]
        if label == 0:
            return core
        gx, gy, gw, gh, _ = stats[label]
        if gw >= w and gh >= h and _diamond_aspect(gw, gh) and gw < 1.6 * w:
            return np.array([gx + x1, gy + y1, gw, gh], np.float64)
        return core


class UnionProposer:
    """The boxes of several proposers together, the first one's first.

    Args:
        proposers: Callables ``image -> N x 4 boxes``; the first one's ``grid_px`` (if any)
            is the union's, so windows around tracked signs snap to the grid it needs.
    """

    def __init__(self, *proposers: Callable[[np.ndarray], np.ndarray]) -> None:
        if not proposers:
            raise ValueError("UnionProposer needs at least one proposer")
        self.proposers = proposers
        self.grid_px = getattr(proposers[0], "grid_px", 1)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """Every proposer's candidate boxes, N x 4 float ``(x1, y1, x2, y2)``."""
        return np.concatenate([np.asarray(proposer(image), np.float64).reshape(-1, 4) for proposer in self.proposers])


def _box_mean(integral: np.ndarray, cx: np.ndarray, cy: np.ndarray, half: np.ndarray) -> np.ndarray:
    """Mean of the image under squares centred on (cx, cy), clipped to it, from its integral image."""
    h, w = integral.shape[0] - 1, integral.shape[1] - 1
    x1 = np.clip(np.round(cx - half), 0, w - 1).astype(int)
    x2 = np.clip(np.round(cx + half), x1 + 1, w).astype(int)
    y1 = np.clip(np.round(cy - half), 0, h - 1).astype(int)
    y2 = np.clip(np.round(cy + half), y1 + 1, h).astype(int)
    total = integral[y2, x2] - integral[y1, x2] - integral[y2, x1] + integral[y1, x1]
    return total / ((x2 - x1) * (y2 - y1))


def _grid_px(scale: float) -> int:
    """The fewest whole pixels that ``scale`` maps to a whole multiple of 16 (1 if none up to 128)."""
    for pixels in range(1, 129):
        cells = pixels * scale / 16
        if cells >= 1 and abs(cells - round(cells)) < 1e-6:
            return pixels
    return 1


#: Heatmap level a peak needs. Low, since the classifier turns down the rest: 0.15 keeps 97 %
#: of the tune scenes' signs with 20 peaks a frame (0.1: 98 % with 44). 0.05 found 1-2 more of
#: the 124 signs of scenes 375-449 with three finder pairs trained without them, but on the
#: held-out scenes it let in three times the false alarms (docs/experiments.md, "A lower peak
#: threshold"). The classifier's hard negatives are the finder's peaks above 0.15.
PEAK_THRESHOLD = 0.15
#: Most peaks taken per frame, over all levels. Each costs two crops to classify.
MAX_PEAKS = 40
#: The finder runs on the frame at 1.2 times the scale it learnt at (0.6 for the shipped one).
#: Chosen on scenes 375-449 with two finders trained without them (recipes A and B of
#: reports/finder-recipes.json): F1 0.950 -> 0.967 and 0.967 -> 0.968, recall of signs >= 32 px
#: 0.943 -> 0.966 and 0.977 -> 1.0, no false positive on the sign-free scenes either way. Finding
#: costs about 1.4 times as much.
UPSCALE = 1.2
#: Scales the finder looks at, each half the one before, for signs too large for the first:
#: a sign over about 60 px where the network sees it, as when a webcam is held up to one.
LEVELS = 3
#: Width in the network's pixels from which a coarser level's peaks are kept: smaller ones
#: are the finer level's, which places them better.
COARSE_MIN_PX = 24
#: A coarser level runs only where the image's shorter side is at least this long there, so
#: small windows around small tracked signs cost no more than before.
COARSE_MIN_SIDE = 64


class SignDetProposer:
    """Peaks of the learned sign-centre heatmap, each with a few box sizes around its estimate.

    Args:
        path: ONNX file written by ``signcam-train fit-detector``.
        threshold: Heatmap level a peak needs (see ``PEAK_THRESHOLD``).
        max_peaks: Most peaks taken per frame, over all levels, highest first (see ``MAX_PEAKS``).
        box_scales: Sizes tried around each predicted box, for the classifier to pick from
            ((0.95, 1.1) beat (0.9, 1.05) and (1.0,) on the tune scenes: F1 0.971, 0.966, 0.961).
        threads: Intra-op threads for ONNX Runtime.
        scale: Size of the frame the network sees, relative to the original; default:
            ``UPSCALE`` times the scale it was trained at (in its metadata).
        levels: How many scales to look at, each half the one before (see ``LEVELS``).
        coarse_path: ONNX file of the finder for the coarser levels; None: the first finder at
            every level.

    Raises:
        ModelError: the file is missing, corrupt or not a signcam detector.
    """

    def __init__(self, path: str | os.PathLike | None = None, threshold: float = PEAK_THRESHOLD,
                 max_peaks: int = MAX_PEAKS, box_scales: tuple[float, ...] = (0.95, 1.1), threads: int | None = None,
                 scale: float | None = None, levels: int = LEVELS,
                 coarse_path: str | os.PathLike | None = DEFAULT_COARSE_DETECTOR) -> None:
        self.path = Path(path) if path is not None else DEFAULT_DETECTOR
        # The classifier runs right after the detector on every frame: threads left spinning
        # here would steal the cores it needs.
        self._session, info = open_onnx(self.path, "detector", DETECTOR_METADATA_KEY, threads, spin=False,
                                        required=("scale", "stride"))
        self.scale = UPSCALE * float(info["scale"]) if scale is None else scale
        self.stride = int(info["stride"])
        self.coarse_path = Path(coarse_path) if coarse_path is not None and levels > 1 else None
        self._coarse_session, self._coarse_stride = self._session, self.stride
        if self.coarse_path is not None:
            self._coarse_session, coarse = open_onnx(self.coarse_path, "detector", DETECTOR_METADATA_KEY, threads,
                                                     spin=False, required=("stride",))
            self._coarse_stride = int(coarse["stride"])
        #: Pixels of the original frame whose multiples the network sees as whole multiples of 16
        #: (its input sides); windows on this grid see what a whole-frame search sees (1: none).
        self.grid_px = _grid_px(self.scale)
        self.threshold, self.max_peaks, self.box_scales, self.levels = threshold, max_peaks, box_scales, levels

    @classmethod
    def from_files(cls, path: str | os.PathLike | None = None, coarse: str | os.PathLike | None = None,
                   **options: Any) -> SignDetProposer:
        """The finder in ``path`` with ``coarse`` for the coarser levels, as the command lines name them:
        ``None`` for the shipped file, ``"none"`` for no coarse finder (``path`` at every level)."""
        if coarse is not None:
            options["coarse_path"] = None if str(coarse) == "none" else coarse
        return cls(path, **options)

    def heatmap(self, image: np.ndarray) -> np.ndarray:
        """The raw 5 x H/s x W/s output maps for a BGR frame."""
        h, w = image.shape[:2]
        small = cv2.resize(image, self._input_size(w, h, self.scale), interpolation=cv2.INTER_AREA)
        return self._run(self._session, small)

    @staticmethod
    def _input_size(w: int, h: int, scale: float) -> tuple[int, int]:
        # Multiples of 16 keep the encoder's strides aligned with the output grid.
        return max(16, round(w * scale / 16) * 16), max(16, round(h * scale / 16) * 16)

    @staticmethod
    def _run(session: ort.InferenceSession, small: np.ndarray) -> np.ndarray:
        batch = small.transpose(2, 0, 1)[None].astype(np.float32)
        return session.run(None, {session.get_inputs()[0].name: batch})[0][0]

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """Candidate boxes, N x 4 float ``(x1, y1, x2, y2)``, strongest peaks first."""
        h, w = image.shape[:2]
        levels, small = [], image
        for level in range(self.levels):
            scale = self.scale / 2 ** level
            if level and min(h, w) * scale < COARSE_MIN_SIDE:
                break
            # Each level is made from the one before: a fraction of the cost of the whole frame.
            small = cv2.resize(small, self._input_size(w, h, scale), interpolation=cv2.INTER_AREA)
            session, stride, min_px = ((self._session, self.stride, 0.0) if level == 0 else
                                       (self._coarse_session, self._coarse_stride, COARSE_MIN_PX))
            levels.append(self._peaks(self._run(session, small), w, h, stride, min_px))
        logit, cx, cy, bw, bh = np.concatenate(levels, 1)
        order = np.argsort(-logit, kind="stable")[: self.max_peaks]
        cx, cy, bw, bh = cx[order], cy[order], bw[order], bh[order]
        boxes = [np.stack([cx - s * bw / 2, cy - s * bh / 2, cx + s * bw / 2 - 1, cy + s * bh / 2 - 1], 1)
                 for s in self.box_scales]
        return np.stack(boxes, 1).reshape(-1, 4) if len(cx) else np.zeros((0, 4))

    def _peaks(self, maps: np.ndarray, w: int, h: int, stride: int, min_px: float) -> np.ndarray:
        """Peaks of one level's output maps: 5 x N (logit, centre x, y, width, height) in pixels of
        the w x h image; only signs at least ``min_px`` wide as the network saw them."""
        logit = maps[0]
        threshold_logit = np.log(self.threshold / (1 - self.threshold))
        peaks = (logit == cv2.dilate(logit, _KERNEL)) & (logit > threshold_logit)
        ys, xs = np.nonzero(peaks)
        fx = w / (maps.shape[2] * stride)
        fy = h / (maps.shape[1] * stride)
        bw = np.exp(maps[1, ys, xs]) * stride
        keep = np.flatnonzero(bw >= min_px)
        keep = keep[np.argsort(-logit[ys[keep], xs[keep]])[: self.max_peaks]]
        ys, xs = ys[keep], xs[keep]
        return np.stack([logit[ys, xs], (xs + maps[3, ys, xs]) * stride * fx,
                         (ys + maps[4, ys, xs]) * stride * fy, bw[keep] * fx,
                         np.exp(maps[2, ys, xs]) * stride * fy])


def default_proposer(threads: int | None = None, finder: SignDetProposer | None = None) -> UnionProposer:
    """The runtime's proposer: the shipped finder's peaks, and the priority-road diamonds by colour.

    ``finder`` replaces the shipped finder (as ``eval-detect`` does to try its options);
    ``threads`` sets the shipped one's ONNX Runtime threads.

    On the 450 tune scenes the diamonds alone let the classifier name 31 of the 44 diamonds
    with one false alarm (``benchmarks/diamonds.py``; none with the classifier shipped before
    the motion-blur fine-tuning); the finder, which learnt on those scenes, names all 44, and
    together they score F1 0.984 there against the finder's 0.985. They cost 2-3 ms per whole
    frame (docs/experiments.md, "Priority-road diamonds by colour").

    Raises:
        ModelError: a shipped finder file is missing or corrupt.
    """
    return UnionProposer(finder or SignDetProposer(threads=threads), DiamondProposer())
