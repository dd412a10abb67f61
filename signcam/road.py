"""What the road has told the driver so far: one event per sign passed, and the speed limit in force.

Signs arrive as tracked detections; each track is reported once, when it is first confirmed,
unless a track of the same class was in view a moment before: the detector lost that sign for
a few frames and found it again, so it is the same sign passed. A speed-limit sign sets the
limit; "end of all restrictions" (class 32) lifts any limit, while "end of speed limit 80"
(class 6) lifts only a limit of 80 (a stale 80 sign must not erase a newer, different limit
the car has seen since). Signs count in the order the car passes them where the detector
confirms them out of order: while the sign that set the limit is still in view and farther
away (smaller), a nearer sign confirmed after it leaves the limit as it is.

Example:
    >>> road = RoadState()
    >>> events = road.update([Detection((5, 5, 40, 40), 2, 0.97, track_id=1)], frame_index=12, time_ms=480.0)
    >>> events[0].label, road.speed_limit
    ('Speed limit 50', 50)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from signcam.classes import CLASSES, label_of
from signcam.detection import Detection

__all__ = ["RoadState", "SignEvent", "SignLog", "SAME_SIGN_MS"]

#: A new track of a class seen within this time (source time) is the same sign found again. In the
#: demo clip, the first track of the "end of all restrictions" sign was last shown at frame 642
#: (34 px wide), and a second one confirmed at 675 (92 px), 1.3 s later: it was listed twice.
SAME_SIGN_MS = 1500.0
#: The limit each end-of-limit sign lifts; ``None``: any limit.
_LIFTS: dict[int, int | None] = {6: 80, 32: None}


@dataclass(frozen=True)
class SignEvent:
    """A sign passed: the first frame its track was confirmed, or a sign found in a still.

    Args:
        track_id: The tracker's id of the sign; ``None`` for a still image.
        class_id: GTSRB class voted by the track at that moment.
        label: Human name of the class.
        score: The track's voted score.
        frame_index: Index of the frame in its source.
        time_ms: Time of that frame in its source.
        box: ``(x1, y1, x2, y2)`` in that frame.
        source: The frame's source: the video, camera or stream, or the still image's path.
    """

    track_id: int | None
    class_id: int
    label: str
    score: float
    frame_index: int
    time_ms: float
    box: tuple[int, int, int, int]
    source: str = ""

    def to_json(self) -> dict:
        return {"track_id": self.track_id, "class_id": self.class_id, "label": self.label,
                "score": round(float(self.score), 4), "frame_index": self.frame_index,
                "time_ms": round(float(self.time_ms), 1), "box": [int(v) for v in self.box], "source": self.source}


def _event(d: Detection, frame_index: int, time_ms: float, source: str) -> SignEvent:
    return SignEvent(d.track_id, d.class_id, label_of(d.class_id), float(d.score), frame_index, float(time_ms),
                     tuple(int(v) for v in d.box), source)


class RoadState:
    """Turns tracked detections into sign events and the current speed limit.

    Attributes:
        speed_limit: km/h of the last speed-limit sign not lifted since, else ``None``.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget every sign and the limit (a new source, or a seek)."""
        self._reported: set[int] = set()
        self._last_seen_ms: dict[int, float] = {}  # per class, the last time a track of it was shown
        self._limit_track: int | None = None  # the track of the sign that last set or lifted the limit
        self.speed_limit: int | None = None

    def update(self, detections: Sequence[Detection], frame_index: int, time_ms: float,
               source: str = "") -> list[SignEvent]:
        """Take one frame's detections; returns the events of tracks new in this frame.

        Detections without a ``track_id`` come from stills (the engine tracks nothing in
        unrelated images): each is an event of its own, and none sets the speed limit, since
        a folder of stills is no road.

        Args:
            detections: What :meth:`signcam.tracking.Tracker.update` returned for the frame.
            frame_index: Index of the frame in its source.
            time_ms: Time of the frame in its source.
            source: The frame's source (for stills, the image), kept in each event.
        """
        events: list[SignEvent] = []
        widths = {d.track_id: d.width for d in detections if d.track_id is not None}
        for d in detections:
            if d.track_id is None:  # a still's sign
                events.append(_event(d, frame_index, time_ms, source))
                continue
            # Seen a moment ago (or on the other side of the road): the same sign, which changes
            # nothing (an "end of limit" found again must not lift a newer limit).
            seen_again = time_ms - self._last_seen_ms.get(d.class_id, -math.inf) <= SAME_SIGN_MS
            self._last_seen_ms[d.class_id] = float(time_ms)
            if d.track_id in self._reported:
                continue
            self._reported.add(d.track_id)
            if not seen_again:
                self._apply(d, widths)
                events.append(_event(d, frame_index, time_ms, source))
        return events

    def _apply(self, d: Detection, widths: dict[int, int]) -> None:
        """Set or lift the limit for a newly confirmed sign, unless it is passed before the sign that set it.

        Signs are confirmed in the order the detector manages to, not the order the car passes
        them: a faint "end of all restrictions" close by can be confirmed after the "100" further
        down the road. Road signs are about one size, so while the sign that set the limit is in
        view and smaller (farther), a larger newcomer is passed first and the limit stands.
        """
        sign = CLASSES[d.class_id]
        if sign.speed_limit is None and not sign.ends_limit:
            return
        setter_width = widths.get(self._limit_track) if self._limit_track is not None else None
        if setter_width is not None and setter_width < d.width:
            return
        if sign.speed_limit is not None:
            self.speed_limit = sign.speed_limit
        else:
            lifted = _LIFTS.get(d.class_id)
            if lifted is not None and lifted != self.speed_limit:
                return
            self.speed_limit = None
        self._limit_track = d.track_id


class SignLog:
    """The signs passed in one source, each listed once, for a list a user reads and exports.

    Playing part of a video again (a seek back, a loop) resets the road state, which then reports
    its signs anew; each reset starts a new *epoch*. A sign reported again in another epoch (same
    class, within ``SAME_SIGN_MS`` of source time) is the one listed already.

    Example:
        >>> log = SignLog()
        >>> len(log.add([event], epoch=1)), len(log.add([event], epoch=2))  # found again after a seek
        (1, 0)
    """

    def __init__(self) -> None:
        self._entries: list[tuple[SignEvent, int]] = []
        self._min_epoch = 0

    @property
    def events(self) -> list[SignEvent]:
        """The listed events, oldest first."""
        return [event for event, _ in self._entries]

    def clear(self, epoch: int = 0) -> None:
        """Empty the log; events of epochs before ``epoch`` (an older source) are ignored from now on."""
        self._entries.clear()
        self._min_epoch = epoch

    def add(self, events: Sequence[SignEvent], epoch: int) -> list[SignEvent]:
        """Log ``events`` of ``epoch``; returns those that were not logged already."""
        added = []
        for event in events:
            if epoch < self._min_epoch or self._seen(event, epoch):
                continue
            self._entries.append((event, epoch))
            added.append(event)
        return added

    def _seen(self, event: SignEvent, epoch: int) -> bool:
        return any(old.class_id == event.class_id and old_epoch != epoch
                   and abs(old.time_ms - event.time_ms) <= SAME_SIGN_MS for old, old_epoch in self._entries)
