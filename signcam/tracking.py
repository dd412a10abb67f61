"""Follow signs from frame to frame: steady ids, a class voted over each track, no one-frame ghosts.

A sign seen from a moving car drifts outwards and grows, so each track predicts its next box
with a constant rate of growth, and a velocity of its centre that grows at that rate too (the
sign's distance from the vanishing point is proportional to its size); detections are matched to
those predictions by IoU (greedy, best pair first). A track is shown only once it has been
matched ``min_hits`` times with its readings mostly agreeing, and its class is the
score-weighted vote of everything it was classified as, so a single misread frame neither adds
a box nor flips a label.

Example:
    >>> tracker = Tracker(min_hits=2)
    >>> tracker.update([Detection((100, 100, 120, 120), 2, 0.9)])
    []
    >>> [d.track_id for d in tracker.update([Detection((101, 100, 121, 120), 2, 0.8)])]
    [1]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from signcam.detection import Detection, Motion, iou_matrix

__all__ = ["ClassVote", "Tracker", "MIN_VOTE", "SWITCH_IOU"]

#: Least and most a sign's size changes from one frame to the next.
_GROWTH_RANGE = (0.9, 1.2)
#: A detection of another class than a confirmed track's joins that track only from this IoU on: a
#: frame where the sign itself was misread overlaps its track well, while another sign beside it
#: (or, in a clip of stitched scenes, the next scene's sign) starts a track of its own. Without it,
#: a "speed limit 80" track carried on over a cut onto a "give way" sign and named it 80 for 22
#: frames; per-frame figures on the clips of scenes 375-449 are the same either way.
SWITCH_IOU = 0.5
#: A track is confirmed only once its readings mostly agree: the winning class must hold this much
#: score per reading (readings of other classes count 0; the recognizer accepts only 0.7 and more).
#: Three readings of one sign make about 0.8; two of one and one of another about 0.55, which waits
#: for a clearer vote. Without it, the demo's "road works" sign, large and smeared as it sweeps past,
#: was read as "wild animals" in its last frames and confirmed as a second sign; on the clips of
#: scenes 375-449, 0.5-0.8 change nothing (benchmarks/clip_quality.py --split val).
MIN_VOTE = 0.6
#: Margin added around boxes before matching: a 10 px sign that jitters by 2 px would otherwise
#: lose half its IoU with its own prediction.
_MATCH_MARGIN_PX = 2.0


class ClassVote:
    """Score-weighted vote over the classes a track was given.

    Example:
        >>> vote = ClassVote()
        >>> for class_id, score in [(1, 0.9), (5, 0.6), (1, 0.8)]:
        ...     vote.add(class_id, score)
        >>> class_id, score = vote.winner()
        >>> class_id, round(score, 3)
        (1, 0.567)
    """

    def __init__(self) -> None:
        self._totals: dict[int, float] = {}
        self._count = 0

    def add(self, class_id: int, score: float) -> None:
        self._totals[class_id] = self._totals.get(class_id, 0.0) + score
        self._count += 1

    def winner(self) -> tuple[int, float]:
        """The class with the most score, and that score per vote (votes for other classes count 0)."""
        class_id = max(self._totals, key=self._totals.__getitem__)
        return class_id, self._totals[class_id] / self._count


class _Track:
    """One sign's state: its last box and frame, motion per frame, hit/miss counts and class vote."""

    def __init__(self, detection: Detection, frame_index: int) -> None:
        self.frame_index = frame_index
        self.centre, self.size = detection.centre_and_size
        self.velocity = np.zeros(2)
        self.growth = 1.0
        self.hits = 1
        self.missed = 0
        self.track_id: int | None = None
        self.vote = ClassVote()
        self.vote.add(detection.class_id, detection.score)

    @property
    def motion(self) -> Motion:
        return Motion(float(self.velocity[0]), float(self.velocity[1]), self.growth)

    def steps_to(self, frame_index: int) -> int:
        """Frames from the last sighting to ``frame_index`` (at least one)."""
        return max(frame_index - self.frame_index, 1)

    def predicted_box(self, frame_index: int) -> np.ndarray:
        """Where the sign should be in frame ``frame_index``."""
        return self.motion.box_after(self.centre, self.size, self.steps_to(frame_index))

    def update(self, detection: Detection, frame_index: int) -> None:
        centre, size = detection.centre_and_size
        steps = self.steps_to(frame_index)
        # Boxes of small signs jitter by a pixel or two, so each measurement only nudges the motion
        # estimated so far (the first is all there is), and growth stays within what approaching
        # at road speeds gives at 25 fps.
        keep = 0.7 if self.hits > 1 else 0.0
        self.velocity = keep * self.velocity + (1 - keep) * (centre - self.centre) / self.motion.drift(steps)
        growth = float(np.clip(np.sqrt(size.prod() / self.size.prod()) ** (1.0 / steps), *_GROWTH_RANGE))
        self.growth = keep * self.growth + (1 - keep) * growth
        self.centre, self.size, self.frame_index = centre, size, frame_index
        self.hits += 1
        self.missed = 0
        self.vote.add(detection.class_id, detection.score)


class Tracker:
    """Associates per-frame detections into tracks of signs.

    Args:
        min_hits: Matches a track needs before it is shown (and gets its id).
        max_missed: Updates a confirmed track survives unseen (the detector misses a frame now and
            then); an unconfirmed one is dropped as soon as it misses two updates in a row.
        iou_threshold: Least IoU between a track's predicted box and a detection to match them.
        switch_iou: Least IoU for a detection of another class to join a confirmed track
            (see ``SWITCH_IOU``).
        min_vote: Least score per reading of the winning class for a track to be confirmed
            (see ``MIN_VOTE``); once confirmed, a track stays so.

    Example:
        >>> tracker = Tracker()
        >>> for frame_detections in [[Detection((10, 10, 30, 30), 14, 0.9)]] * 3:
        ...     shown = tracker.update(frame_detections)
        >>> shown[0].track_id, shown[0].label
        (1, 'Stop')
    """

    def __init__(self, min_hits: int = 3, max_missed: int = 8, iou_threshold: float = 0.2,
                 switch_iou: float = SWITCH_IOU, min_vote: float = MIN_VOTE) -> None:
        self.min_hits = min_hits
        self.min_vote = min_vote
        self.switch_iou = switch_iou
        self.max_missed = max_missed
        self.iou_threshold = iou_threshold
        self.reset()

    def reset(self) -> None:
        """Forget all tracks (a new source, or a seek); ids start again at 1."""
        self._tracks: list[_Track] = []
        self._next_id = 1
        self._frame_index = -1
        #: Confirmed tracks that the last update found no detection for.
        self.missed_confirmed = 0

    def predicted_boxes(self, frame_index: int | None = None) -> np.ndarray:
        """Where each live track's sign should be in frame ``frame_index`` (default: the next one), N x 4."""
        frame_index = self._frame_index + 1 if frame_index is None else frame_index
        if not self._tracks:
            return np.zeros((0, 4))
        return np.stack([t.predicted_box(frame_index) for t in self._tracks])

    def update(self, detections: Sequence[Detection], frame_index: int | None = None) -> list[Detection]:
        """Add one frame's detections; returns the confirmed tracks seen in this frame.

        Rejected candidates (``accepted=False``) are ignored. Tracks that were not matched in this
        frame are not returned, so boxes never drift on where a sign was predicted to be.

        Args:
            detections: The frame's detections, in any order.
            frame_index: The frame's index in its source; motion is per frame of the source, so
                frames skipped (``--stride``, or the app keeping up with real time) are allowed
                for. Default: the frame after the previous update.

        Returns:
            One detection per confirmed, matched track: the measured box, ``track_id`` set, and
            the class and score voted over the track.
        """
        frame_index = self._frame_index + 1 if frame_index is None else frame_index
        self._frame_index = frame_index
        detections = [d for d in detections if d.accepted]
        matches = self._match(detections, frame_index)
        unmatched = set(range(len(detections))) - set(matches.values())
        self.missed_confirmed = sum(t.track_id is not None for i, t in enumerate(self._tracks) if i not in matches)
        shown: list[Detection] = []
        survivors: list[_Track] = []
        for t, track in enumerate(self._tracks):
            if t in matches:
                track.update(detections[matches[t]], frame_index)
                self._report(track, detections[matches[t]], shown)
            else:
                track.missed += 1
            if track.missed <= (self.max_missed if track.track_id is not None else 1):
                survivors.append(track)
        for i in sorted(unmatched):
            track = _Track(detections[i], frame_index)
            self._report(track, detections[i], shown)
            survivors.append(track)
        self._tracks = survivors
        return shown

    def _report(self, track: _Track, detection: Detection, shown: list[Detection]) -> None:
        """Confirm a track that has enough hits, and show it if confirmed."""
        if track.track_id is None and track.hits >= self.min_hits and track.vote.winner()[1] >= self.min_vote:
            track.track_id = self._next_id
            self._next_id += 1
        if track.track_id is not None:
            class_id, score = track.vote.winner()
            shown.append(detection.with_track(track.track_id, class_id, score, track.motion))

    def _match(self, detections: Sequence[Detection], frame_index: int) -> dict[int, int]:
        """Greedy matching of tracks to detections, best pair first: {track index: detection index}.

        Pairs are ranked by IoU, halved where the detection's class differs from the track's vote:
        two small signs far ahead overlap, and their classes keep each on its own track.
        """
        if not self._tracks or not detections:
            return {}
        margin = np.array([-1, -1, 1, 1]) * _MATCH_MARGIN_PX
        predicted = self.predicted_boxes(frame_index) + margin
        overlaps = iou_matrix(predicted, np.array([d.box for d in detections], np.float64) + margin)
        voted = np.array([t.vote.winner()[0] for t in self._tracks])
        same_class = voted[:, None] == np.array([d.class_id for d in detections])[None, :]
        # Confirmed tracks win ties against tentative ones, so a ghost cannot steal a real sign.
        confirmed = np.array([t.track_id is not None for t in self._tracks])[:, None]
        rank = overlaps * np.where(same_class, 1.0, 0.5) + 1e-6 * confirmed
        matches: dict[int, int] = {}
        used: set[int] = set()
        for flat in np.argsort(-rank, axis=None, kind="stable"):
            t, d = divmod(int(flat), len(detections))
            if rank[t, d] < 0.5 * self.iou_threshold:
                break
            if t in matches or d in used or overlaps[t, d] < self.iou_threshold:
                continue
            if not same_class[t, d] and confirmed[t, 0] and overlaps[t, d] < self.switch_iou:
                continue
            matches[t] = d
            used.add(d)
        return matches
