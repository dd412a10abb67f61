"""The engine: one frame in, signs out (recognize → track → road state), with stage timings.

Used alike by the ``signcam detect`` command and the desktop app; it never touches Qt.

Example:
    >>> engine = Engine()                                # assets/signnet.onnx
    >>> with open_source("drive.mp4") as source:         # doctest: +SKIP
    ...     for frame in source:
    ...         result = engine.process(frame)
    ...         print(frame.index, [d.label for d in result.detections], result.speed_limit)
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from signcam.detection import Detection
from signcam.road import RoadState, SignEvent
from signcam.sources import Frame
from signcam.tracking import Tracker

__all__ = ["Engine", "FrameResult", "RecognizerLike", "DEFAULT_SCAN_EVERY", "MAX_AHEAD", "model_files"]


class RecognizerLike(Protocol):
    """What the engine needs of a recognizer: ``signcam.recognizer.Recognizer`` or a test double."""

    conf: float
    timings_ms: dict[str, float]

    def __call__(self, image: np.ndarray, keep_rejected: bool = False,
                 windows: np.ndarray | None = None) -> list[Detection]: ...


@dataclass(frozen=True, eq=False)
class FrameResult:
    """What the engine found in one frame.

    Args:
        frame: The frame processed.
        detections: Signs to show: confirmed tracks (``track_id`` set) when tracking, else
            every accepted detection (``track_id`` None).
        rejected: Candidates the classifier turned down (for debugging overlays).
        events: Signs confirmed for the first time in this frame.
        speed_limit: The speed limit in force after this frame, km/h, or ``None``.
        timings_ms: Milliseconds per stage: the recognizer's (``proposals``, ``classify``),
            ``track`` (tracker and road state) and ``total``.
        scanned: Whether the whole frame was searched, or only around the tracked signs.
    """

    frame: Frame
    detections: list[Detection]
    rejected: list[Detection] = field(default_factory=list)
    events: list[SignEvent] = field(default_factory=list)
    speed_limit: int | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    scanned: bool = True

    def detections_at(self, frame_index: int) -> list[Detection]:
        """The detections to draw on a later frame (recognition is slower than the video):
        tracked boxes moved on along their track's motion, by at most ``MAX_AHEAD`` frames."""
        return [d.ahead(min(frame_index - self.frame.index, MAX_AHEAD)) for d in self.detections]


#: Most frames a tracked box is moved on along its track's motion when the result drawn is of an
#: earlier frame: a third of a second at 25 fps, beyond which the motion estimate says little
#: about where the sign is.
MAX_AHEAD = 8


#: A followed sign is looked for in a square this many times its predicted size, and at least
#: this many pixels wide: with the centre guessed 15 % of a side off, scenes 375-449 gave every
#: sign found in the whole frame (2 and 64 px lost 4 %, and 4 lost a big sign to a neighbour).
FOLLOW_WINDOW_FACTOR = 3.0
FOLLOW_WINDOW_MIN_PX = 128.0
#: Search whole frames every 3rd frame: on clips of scenes 375-449 (benchmarks/clip_quality.py)
#: per-frame recall was 0.893 (0.894 searching every frame, 0.892 every 5th) with every sign
#: named, in a third of the time per frame. Every 5th would delay new signs more for little gain.
DEFAULT_SCAN_EVERY = 3


def model_files(model: str | os.PathLike | None = None, detector: str | os.PathLike | None = None,
                coarse_detector: str | os.PathLike | None = None) -> list[Path]:
    """The network files recognition reads, the shipped ones where ``None``: what no output may replace.

    A ``coarse_detector`` of ``"none"`` (no finder for the coarser scales) names no file.
    """
    from signcam.classifier import DEFAULT_MODEL
    from signcam.proposals import DEFAULT_COARSE_DETECTOR, DEFAULT_DETECTOR

    files = [Path(model or DEFAULT_MODEL), Path(detector or DEFAULT_DETECTOR)]
    return files if str(coarse_detector) == "none" else [*files, Path(coarse_detector or DEFAULT_COARSE_DETECTOR)]


class Engine:
    """Recognize, track and follow the road state, frame after frame.

    Args:
        recognizer: Finds and classifies signs in a full frame; default
            ``signcam.recognizer.Recognizer()`` with the shipped model.
        track: Confirm signs over consecutive frames. Off for unrelated stills (image
            folders): every accepted detection is then reported as it is, without a track.
        scan_every: Search the whole frame once every N frames of the source; in between, look
            only around the signs being tracked (a few ms instead of about 17 for a 1360x800
            frame). A new sign is then found up to N - 1 frames later; 1 searches every frame.
            When a confirmed sign is not found around where it should be (it left the view, or
            the scene cut), the next frame is searched whole. Without ``track`` every frame is.

    Example:
        >>> engine = Engine(track=False)
        >>> result = engine.process(Frame(image, 0, 0.0, "scene.jpg"))   # doctest: +SKIP
        >>> result.timings_ms
        {'proposals': 9.1, 'classify': 3.2, 'track': 0.1, 'total': 12.5}
    """

    def __init__(self, recognizer: RecognizerLike | None = None, track: bool = True,
                 scan_every: int = DEFAULT_SCAN_EVERY) -> None:
        if scan_every < 1:
            raise ValueError(f"scan_every must be at least 1, not {scan_every}")
        if recognizer is None:
            from signcam.recognizer import Recognizer  # loads ONNX Runtime and the model

            recognizer = Recognizer()
        self.recognizer = recognizer
        self.track = track
        self.scan_every = scan_every
        self.tracker = Tracker()
        self.road = RoadState()
        self._last_scan: int | None = None
        self._lost_sign = False

    @classmethod
    def from_model(cls, model: str | os.PathLike | None = None, conf: float | None = None, track: bool = True,
                   scan_every: int = DEFAULT_SCAN_EVERY, threads: int | None = None,
                   detector: str | os.PathLike | None = None, coarse_detector: str | os.PathLike | None = None
                   ) -> Engine:
        """The engine on the classifier in ``model`` and the finders given (the shipped ones where ``None``).

        Args:
            model: ONNX classifier written by ``signcam-train export``.
            conf: Least probability of an accepted sign; default: the recognizer's.
            track: See the class.
            scan_every: See the class.
            threads: ONNX Runtime threads for each network; default: all cores, at most 4.
            detector: ONNX finder written by ``signcam-train fit-detector``.
            coarse_detector: ONNX finder for the coarser scales (signs close up); ``"none"``:
                ``detector`` at every scale.

        Raises:
            ModelError: a model file is missing, corrupt or not a signcam model.
        """
        from signcam.classifier import Classifier  # loads ONNX Runtime and the models
        from signcam.proposals import SignDetProposer, default_proposer
        from signcam.recognizer import DEFAULT_CONF, Recognizer

        finder = SignDetProposer.from_files(detector, coarse_detector, threads=threads)
        recognizer = Recognizer(Classifier(model, threads=threads, spin=False),
                                conf=DEFAULT_CONF if conf is None else conf, proposer=default_proposer(finder=finder))
        return cls(recognizer, track=track, scan_every=scan_every)

    @property
    def conf(self) -> float:
        """The acceptance threshold: candidates whose best sign scores less are rejected."""
        return self.recognizer.conf

    @conf.setter
    def conf(self, value: float) -> None:
        self.recognizer.conf = value

    @property
    def frames_to_confirm(self) -> int:
        """Frames before the one where a sign seen in each is first shown (0 without tracking): what a
        player recognises before a frame it jumps to, for that frame's signs to be shown."""
        return self.tracker.min_hits - 1 if self.track else 0

    def process(self, frame: Frame) -> FrameResult:
        """Run every stage on one frame."""
        start = time.perf_counter()
        windows = self._follow_windows(frame.index)
        if windows is None:
            found = self.recognizer(frame.image, keep_rejected=True)
            self._last_scan = frame.index
        else:
            found = self.recognizer(frame.image, keep_rejected=True, windows=windows)
        timings = {name: float(ms) for name, ms in self.recognizer.timings_ms.items()}
        accepted = [d for d in found if d.accepted]
        rejected = [d for d in found if not d.accepted]
        after_recognize = time.perf_counter()
        detections = self.tracker.update(accepted, frame.index) if self.track else accepted
        self._lost_sign = windows is not None and self.tracker.missed_confirmed > 0
        events = self.road.update(detections, frame.index, frame.time_ms, frame.source)
        end = time.perf_counter()
        timings["track"] = (end - after_recognize) * 1000.0
        timings["total"] = (end - start) * 1000.0
        return FrameResult(frame, detections, rejected, events, self.road.speed_limit, timings, windows is None)

    def _follow_windows(self, frame_index: int) -> np.ndarray | None:
        """Squares around the tracked signs when this frame need not be searched whole, else None."""
        if not self.track or self.scan_every == 1 or self._last_scan is None or self._lost_sign:
            return None
        if not 0 < frame_index - self._last_scan < self.scan_every:  # also a seek backwards
            return None
        boxes = self.tracker.predicted_boxes(frame_index)
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        half = np.maximum(FOLLOW_WINDOW_FACTOR * (boxes[:, 2:] - boxes[:, :2] + 1).max(1),
                          FOLLOW_WINDOW_MIN_PX)[:, None] / 2
        return np.hstack([centres - half, centres + half])

    def reset(self, track: bool | None = None) -> None:
        """Forget tracks and road state: call on seek or when the source changes.

        Args:
            track: For a new source, whether to track its signs (see the class); ``None`` keeps it.
        """
        if track is not None:
            self.track = track
        self.tracker.reset()
        self.road.reset()
        self._last_scan = None
        self._lost_sign = False
