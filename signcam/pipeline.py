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

import time
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from signcam.detection import Detection
from signcam.road import RoadState, SignEvent
from signcam.sources import Frame
from signcam.tracking import Tracker

__all__ = ["Engine", "FrameResult", "RecognizerLike"]


class RecognizerLike(Protocol):
    """What the engine needs of a recognizer: ``signcam.recognizer.Recognizer`` or a test double."""

    conf: float
    timings_ms: dict[str, float]

    def __call__(self, image: np.ndarray, keep_rejected: bool = False) -> list[Detection]: ...


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
    """

    frame: Frame
    detections: list[Detection]
    rejected: list[Detection] = field(default_factory=list)
    events: list[SignEvent] = field(default_factory=list)
    speed_limit: int | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)


class Engine:
    """Recognize, track and follow the road state, frame after frame.

    Args:
        recognizer: Finds and classifies signs in a full frame; default
            ``signcam.recognizer.Recognizer()`` with the shipped model. Its ``conf`` is the
            acceptance threshold (``engine.recognizer.conf = 0.7``).
        track: Confirm signs over consecutive frames. Off for unrelated stills (image
            folders): every accepted detection is then reported as it is, without a track.

    Example:
        >>> engine = Engine(track=False)
        >>> result = engine.process(Frame(image, 0, 0.0, "scene.jpg"))   # doctest: +SKIP
        >>> result.timings_ms
        {'proposals': 9.1, 'classify': 3.2, 'track': 0.1, 'total': 12.5}
    """

    def __init__(self, recognizer: RecognizerLike | None = None, track: bool = True) -> None:
        if recognizer is None:
            from signcam.recognizer import Recognizer  # loads ONNX Runtime and the model

            recognizer = Recognizer()
        self.recognizer = recognizer
        self.track = track
        self.tracker = Tracker()
        self.road = RoadState()

    def process(self, frame: Frame) -> FrameResult:
        """Run every stage on one frame."""
        start = time.perf_counter()
        found = self.recognizer(frame.image, keep_rejected=True)
        timings = {name: float(ms) for name, ms in self.recognizer.timings_ms.items()}
        accepted = [d for d in found if d.accepted]
        rejected = [d for d in found if not d.accepted]
        after_recognize = time.perf_counter()
        detections = self.tracker.update(accepted, frame.index) if self.track else accepted
        events = self.road.update(detections, frame.index, frame.time_ms)
        end = time.perf_counter()
        timings["track"] = (end - after_recognize) * 1000.0
        timings["total"] = (end - start) * 1000.0
        return FrameResult(frame, detections, rejected, events, self.road.speed_limit, timings)

    def reset(self) -> None:
        """Forget tracks and road state: call on seek or when the source changes."""
        self.tracker.reset()
        self.road.reset()
