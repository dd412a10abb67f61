"""The tracker on synthetic signs: confirmation, steady ids, class votes, memory, crossing paths."""

from __future__ import annotations

import pytest

from signcam.detection import Detection, iou
from signcam.tracking import ClassVote, Tracker


def _box(cx: float, cy: float, size: float, class_id: int = 2, score: float = 0.9) -> Detection:
    half = size / 2
    return Detection((round(cx - half), round(cy - half), round(cx + half), round(cy + half)), class_id, score)


def _approaching(frame: int, offset: tuple[float, float] = (60, -20), size0: float = 16, growth: float = 1.04,
                 class_id: int = 2, score: float = 0.9) -> Detection:
    """A sign seen from a car driving towards it: it grows and moves away from the vanishing point."""
    scale = growth**frame
    return _box(640 + offset[0] * scale, 300 + offset[1] * scale, size0 * scale, class_id, score)


@pytest.mark.parametrize("min_hits", [1, 2, 3, 5])
def test_confirmed_after_min_hits(min_hits: int) -> None:
    tracker = Tracker(min_hits=min_hits)
    shown = [tracker.update([_approaching(f)]) for f in range(min_hits + 2)]
    assert all(s == [] for s in shown[:min_hits - 1])
    assert all(len(s) == 1 and s[0].track_id == 1 for s in shown[min_hits - 1:])


def test_id_stable_while_a_sign_approaches() -> None:
    tracker = Tracker()
    ids = {d.track_id for f in range(50) for d in tracker.update([_approaching(f)])}
    assert ids == {1}


def test_shows_measured_box_with_track() -> None:
    tracker = Tracker(min_hits=2)
    tracker.update([_approaching(0)])
    (shown,) = tracker.update([_approaching(1)])
    assert shown.box == _approaching(1).box and shown.track_id == 1


def test_a_shown_box_moved_ahead_lands_where_the_sign_will_be() -> None:
    """Drawn on a later frame (recognition lagging), a track's box follows the sign's motion."""
    tracker = Tracker()
    for f in range(10):
        (shown,) = tracker.update([_approaching(f)]) or [None]
    for steps in (1, 3, 6):
        future = _approaching(9 + steps)
        assert iou(shown.ahead(steps).box, future.box) > 0.8
        assert iou(shown.ahead(steps).box, future.box) > iou(shown.box, future.box) + 0.1


@pytest.mark.parametrize("stride", [2, 3, 5])
def test_frames_skipped_between_updates_are_allowed_for(stride: int) -> None:
    """Every ``stride``-th frame processed (``--stride``, or the app keeping up): one track, motion per frame."""
    tracker = Tracker()
    frames = range(0, 12 * stride, stride)
    ids = {d.track_id for f in frames for d in tracker.update([_approaching(f)], frame_index=f)}
    (shown,) = tracker.update([_approaching(frames[-1] + stride)], frame_index=frames[-1] + stride)
    assert ids == {1}
    future = _approaching(frames[-1] + 2 * stride).box
    assert iou(shown.ahead(stride).box, future) > max(0.45, iou(shown.box, future) + 0.2)


def test_vote_outweighs_a_flicker() -> None:
    tracker = Tracker()
    classes = [1, 1, 1, 5, 1, 1, 5, 1]
    shown = [tracker.update([_approaching(f, class_id=c, score=0.9 if c == 1 else 0.95)])
             for f, c in enumerate(classes)]
    assert [s[0].class_id for s in shown[2:]] == [1] * 6
    # The voted score counts the frames that voted otherwise as zero.
    assert shown[-1][0].score == pytest.approx(0.9 * 6 / 8)


def test_vote_follows_a_consistent_change() -> None:
    tracker = Tracker()
    shown = [tracker.update([_approaching(f, class_id=1 if f < 3 else 5)]) for f in range(12)]
    assert shown[-1][0].class_id == 5


def test_a_sign_of_another_class_beside_a_track_gets_its_own_track() -> None:
    """As after a cut, or with two different signs side by side: the track must not carry its label over."""
    tracker = Tracker()
    (speed_80,) = [tracker.update([_box(500, 300, 40, class_id=5)]) for _ in range(4)][-1]
    shown = [tracker.update([_box(514, 306, 42, class_id=13)]) for _ in range(3)]   # IoU 0.40
    assert shown[-1] and all(d.class_id == 13 and d.track_id != speed_80.track_id for d in shown[-1])
    assert not any(d.class_id == 5 for frame in shown for d in frame)


@pytest.mark.parametrize("gap, same_id", [(3, True), (8, True), (9, False)])
def test_memory_through_missed_frames(gap: int, same_id: bool) -> None:
    tracker = Tracker(max_missed=8)
    for f in range(10):
        tracker.update([_approaching(f)])
    for _ in range(gap):
        assert tracker.update([]) == []
    shown = [tracker.update([_approaching(f)]) for f in range(10 + gap, 13 + gap)]
    ids = {d.track_id for s in shown for d in s}
    assert ids == ({1} if same_id else {2})
    assert len(shown[0]) == (1 if same_id else 0)


def test_one_frame_ghosts_are_never_shown() -> None:
    tracker = Tracker()
    shown = []
    for f in range(30):
        ghost = Detection((50 + 37 * f % 600, 400, 70 + 37 * f % 600, 420), 18, 0.7)
        shown += tracker.update([_approaching(f), ghost])
    assert {d.track_id for d in shown} == {1}


def test_tentative_track_dies_after_two_misses() -> None:
    tracker = Tracker(min_hits=3)
    tracker.update([_approaching(0)])
    tracker.update([_approaching(1)])
    tracker.update([])
    tracker.update([])
    assert tracker.update([_approaching(4)]) == []


def test_two_signs_crossing_keep_their_ids() -> None:
    tracker = Tracker()
    ids: dict[int, set[int]] = {2: set(), 14: set()}
    for f in range(40):
        for d in tracker.update([_box(300 + 14 * f, 300, 30, 2), _box(846 - 14 * f, 306, 30, 14)]):
            ids[d.class_id].add(d.track_id)
    assert len(ids[2]) == len(ids[14]) == 1 and ids[2] != ids[14]


def test_overlapping_small_signs_stay_apart_by_class() -> None:
    """Far ahead, two signs a few pixels apart overlap; their classes keep the tracks from swapping."""
    tracker = Tracker()
    ids: dict[int, set[int]] = {14: set(), 17: set()}
    for f in range(30):
        jitter = (-1.5, 1.5)[f % 2]          # small boxes jump by a pixel or two between frames
        pair = [_box(700 + 0.4 * f + jitter, 300, 12, 14), _box(706 - jitter, 301, 12, 17)]
        for d in tracker.update(pair if f % 3 else pair[::-1]):
            ids[d.class_id].add(d.track_id)
    assert len(ids[14]) == len(ids[17]) == 1 and ids[14] != ids[17]


def test_several_signs_get_increasing_ids() -> None:
    tracker = Tracker(min_hits=1)
    signs = [Detection((100 * k, 100, 100 * k + 30, 130), k, 0.9) for k in range(1, 5)]
    assert sorted(d.track_id for d in tracker.update(signs)) == [1, 2, 3, 4]


def test_rejected_candidates_are_ignored() -> None:
    tracker = Tracker(min_hits=1)
    assert tracker.update([Detection((10, 10, 40, 40), 2, 0.2, accepted=False)]) == []


def test_reset_forgets_tracks_and_ids() -> None:
    tracker = Tracker(min_hits=1)
    tracker.update([_approaching(0)])
    tracker.update([_approaching(1)])
    tracker.reset()
    (shown,) = tracker.update([_approaching(2)])
    assert shown.track_id == 1


def test_class_vote() -> None:
    vote = ClassVote()
    for class_id, score in [(3, 0.5), (3, 0.5), (8, 0.9)]:
        vote.add(class_id, score)
    assert vote.winner() == (3, pytest.approx(1 / 3))


def test_a_split_vote_waits_for_the_readings_to_agree() -> None:
    classes = [31, 25, 31, 31, 31]
    tracker, loose = Tracker(), Tracker(min_vote=0)
    shown = [tracker.update([_approaching(f, class_id=c, score=0.85)]) for f, c in enumerate(classes)]
    # 0.85 * 2 / 3 = 0.57 per reading after three, 0.64 after four: confirmed then, as the class most read.
    assert shown[2] == [] and shown[3][0].class_id == 31 and shown[3][0].track_id == 1
    assert [loose.update([_approaching(f, class_id=c, score=0.85)]) != [] for f, c in enumerate(classes)] == \
        [False, False, True, True, True]
