"""Road state: one event per sign passed, and the speed limit set, changed and lifted."""

from __future__ import annotations

import pytest

from signcam.detection import Detection
from signcam.road import SAME_SIGN_MS, RoadState, SignEvent, SignLog


def _sign(track_id: int | None, class_id: int, score: float = 0.9) -> Detection:
    return Detection((100, 100, 140, 140), class_id, score, track_id=track_id)


def _drive(road: RoadState, tracks: list[tuple[int, int]], frames_each: int = 4) -> list[SignEvent]:
    """Pass (track_id, class_id) signs one after the other, each seen for a few frames."""
    events: list[SignEvent] = []
    frame = 0
    for track_id, class_id in tracks:
        for _ in range(frames_each):
            events += road.update([_sign(track_id, class_id)], frame, frame * 40.0)
            frame += 1
    return events


def test_one_event_per_track_when_first_seen() -> None:
    road = RoadState()
    events = _drive(road, [(1, 14), (2, 13)])
    assert [(e.track_id, e.class_id, e.label, e.frame_index, e.time_ms) for e in events] == [
        (1, 14, "Stop", 0, 0.0), (2, 13, "Give way", 4, 160.0)]
    assert events[0].box == (100, 100, 140, 140) and events[0].score == pytest.approx(0.9)


def test_a_sign_lost_for_a_moment_and_found_again_is_one_event() -> None:
    road = RoadState()
    assert len(road.update([_sign(1, 32)], 0, 0.0)) == 1
    assert road.update([], 1, 40.0) == []                                     # lost...
    assert road.update([_sign(2, 32)], 30, 0.0 + SAME_SIGN_MS) == []          # ...found again: the same sign
    assert road.update([_sign(3, 38)], 31, 40.0 + SAME_SIGN_MS)[0].label == "Keep right"  # another class counts
    later = road.update([_sign(4, 32)], 200, 3 * SAME_SIGN_MS)                 # long after: another sign
    assert [(e.track_id, e.label) for e in later] == [(4, "End of all restrictions")]


def test_a_sign_lost_for_over_a_second_is_still_the_same_sign() -> None:
    """The demo's "end of all restrictions" was lost and found again 1.3 s later: one sign, listed once."""
    road = RoadState()
    road.update([_sign(1, 32)], 0, 0.0)
    assert road.update([_sign(2, 32)], 33, 1300.0) == []


def test_an_end_of_limit_sign_found_again_does_not_lift_the_limit_set_after_it() -> None:
    road = RoadState()
    road.update([_sign(1, 32)], 0, 0.0)                  # end of all restrictions
    road.update([_sign(2, 7)], 10, 400.0)                # then 100
    assert road.update([_sign(3, 32)], 20, 800.0) == []  # the end sign found again, as the demo did
    assert road.speed_limit == 100


def _sized(track_id: int, class_id: int, width: int) -> Detection:
    return Detection((100, 100, 100 + width - 1, 100 + width - 1), class_id, 0.9, track_id=track_id)


@pytest.mark.parametrize(("end_width", "limit"), [(60, 100), (15, None)])
def test_a_sign_confirmed_late_but_nearer_than_the_limit_sign_is_passed_first(end_width: int,
                                                                              limit: int | None) -> None:
    """A faint "end of all restrictions" close by, confirmed after the 100 farther on, must not lift it."""
    road = RoadState()
    road.update([_sized(1, 7, 20)], 0, 0.0)                               # 100, 20 px: far ahead
    road.update([_sized(1, 7, 22), _sized(2, 32, end_width)], 5, 200.0)   # end sign confirmed now
    assert road.speed_limit == limit


def test_the_same_sign_on_both_sides_of_the_road_is_one_event() -> None:
    assert len(RoadState().update([_sign(1, 7), _sign(2, 7)], frame_index=3, time_ms=120.0)) == 1


def test_several_new_tracks_in_one_frame() -> None:
    road = RoadState()
    events = road.update([_sign(1, 2), _sign(2, 38)], frame_index=7, time_ms=280.0)
    assert [e.track_id for e in events] == [1, 2]


def test_stills_give_an_event_per_sign_and_set_no_limit() -> None:
    road = RoadState()
    for frame in range(2):   # the same sign in two stills: two events
        (event,) = road.update([_sign(None, 2)], frame, frame * 1000.0)
        assert (event.track_id, event.class_id, event.frame_index) == (None, 2, frame)
    assert road.speed_limit is None


@pytest.mark.parametrize("signs, limit", [
    ([], None),
    ([2], 50),
    ([2, 1], 30),                  # a new limit replaces the old one
    ([2, 14, 38], 50),             # other signs leave it alone
    ([5, 6], None),                # end of 80 lifts an 80 limit ...
    ([2, 6], 50),                  # ... but not another one
    ([7, 32], None),               # end of all restrictions lifts any limit
    ([8, 32, 3], 60),
    ([32], None),
])
def test_speed_limit(signs: list[int], limit: int | None) -> None:
    road = RoadState()
    _drive(road, [(k + 1, c) for k, c in enumerate(signs)])
    assert road.speed_limit == limit


def test_limit_set_from_the_first_confirmed_frame() -> None:
    road = RoadState()
    _drive(road, [(1, 4), (2, 18)])
    assert road.speed_limit == 70
    _drive(road, [(3, 32)])
    assert road.speed_limit is None


def test_a_track_reported_once_even_if_its_vote_changes() -> None:
    road = RoadState()
    road.update([_sign(1, 1)], 0, 0.0)
    assert road.update([_sign(1, 5)], 1, 40.0) == [] and road.speed_limit == 30


def test_reset() -> None:
    road = RoadState()
    _drive(road, [(1, 2)])
    road.reset()
    assert road.speed_limit is None
    assert len(road.update([_sign(1, 2)], 0, 0.0)) == 1


def test_event_to_json() -> None:
    (event,) = RoadState().update([_sign(3, 17, 0.87654)], 12, 480.0, "drive.mp4")
    assert event.to_json() == {"track_id": 3, "class_id": 17, "label": "No entry", "score": 0.8765,
                               "frame_index": 12, "time_ms": 480.0, "box": [100, 100, 140, 140], "source": "drive.mp4"}


def test_the_sign_log_lists_a_sign_found_again_after_a_seek_once() -> None:
    log = SignLog()
    fifty = SignEvent(1, 2, "Speed limit 50", 0.9, 30, 1200.0, (5, 5, 40, 40), "drive.mp4")
    again = SignEvent(1, 2, "Speed limit 50", 0.9, 31, 1240.0, (5, 5, 40, 40), "drive.mp4")  # a seek back, epoch 2
    later = SignEvent(2, 2, "Speed limit 50", 0.9, 300, 12000.0, (5, 5, 40, 40), "drive.mp4")  # another sign
    assert log.add([fifty], epoch=1) == [fifty]
    assert log.add([again], epoch=2) == [] and log.add([later], epoch=2) == [later]
    assert log.events == [fifty, later]
    log.clear(epoch=3)  # a new source: what the old one still reports is not listed
    assert log.add([fifty], epoch=2) == [] and log.events == []
