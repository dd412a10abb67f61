"""The engine: recognize → track → road state, with a scripted recognizer standing in for the model."""

from __future__ import annotations

import numpy as np
import pytest

from signcam.detection import Detection, Motion
from signcam.pipeline import MAX_AHEAD, Engine, FrameResult
from signcam.sources import Frame

SIGN_50 = Detection((100, 100, 139, 139), 2, 0.9)
GHOST = Detection((300, 50, 320, 70), 43, 0.8, accepted=False)


class ScriptedRecognizer:
    """Returns the same candidates for every frame, like a sign standing still in front of the camera."""

    def __init__(self, found: list[Detection]) -> None:
        self.found = found
        self.conf = 0.5
        self.timings_ms = {"proposals": 4.0, "classify": 2.0}
        self.calls: list[tuple[tuple[int, ...], bool]] = []
        self.windows: list[np.ndarray | None] = []

    def __call__(self, image: np.ndarray, keep_rejected: bool = False,
                 windows: np.ndarray | None = None) -> list[Detection]:
        self.calls.append((image.shape, keep_rejected))
        self.windows.append(windows)
        return [d for d in self.found if d.accepted or keep_rejected]


def frame(index: int) -> Frame:
    return Frame(np.zeros((240, 320, 3), np.uint8), index, index * 40.0, "drive.mp4")


def test_tracking_confirms_a_sign_after_three_frames_and_reports_it_once() -> None:
    engine = Engine(ScriptedRecognizer([SIGN_50, GHOST]))
    results = [engine.process(frame(i)) for i in range(5)]
    assert [len(r.detections) for r in results] == [0, 0, 1, 1, 1]
    assert all(r.rejected == [GHOST] for r in results)
    shown = results[2].detections[0]
    assert (shown.track_id, shown.class_id, shown.box) == (1, 2, SIGN_50.box)
    assert [len(r.events) for r in results] == [0, 0, 1, 0, 0]
    event = results[2].events[0]
    assert (event.track_id, event.label, event.frame_index, event.time_ms) == (1, "Speed limit 50", 2, 80.0)
    assert [r.speed_limit for r in results] == [None, None, 50, 50, 50]
    assert engine.recognizer.calls[0] == ((240, 320, 3), True)
    assert engine.frames_to_confirm == 2  # the two frames before the one where it was shown
    engine.track = False
    assert engine.frames_to_confirm == 0


def test_without_tracking_every_accepted_detection_is_reported_as_it_is() -> None:
    engine = Engine(ScriptedRecognizer([SIGN_50, GHOST]), track=False)
    result = engine.process(frame(0))
    assert result.detections == [SIGN_50] and result.rejected == [GHOST]
    assert result.detections[0].track_id is None
    # A still's signs are listed (one event each) but set no speed limit: stills are no road.
    assert [(e.track_id, e.class_id) for e in result.events] == [(None, SIGN_50.class_id)]
    assert result.speed_limit is None


def test_timings_cover_every_stage() -> None:
    result = Engine(ScriptedRecognizer([SIGN_50])).process(frame(0))
    assert set(result.timings_ms) == {"proposals", "classify", "track", "total"}
    assert result.timings_ms["proposals"] == 4.0 and result.timings_ms["classify"] == 2.0
    assert 0.0 <= result.timings_ms["track"] <= result.timings_ms["total"]


def test_reset_forgets_tracks_and_the_speed_limit() -> None:
    engine = Engine(ScriptedRecognizer([SIGN_50]))
    for i in range(3):
        engine.process(frame(i))
    assert engine.road.speed_limit == 50
    engine.reset()
    assert engine.road.speed_limit is None
    again = [engine.process(frame(i)) for i in range(3)]
    assert [len(r.detections) for r in again] == [0, 0, 1]
    assert again[2].detections[0].track_id == 1 and len(again[2].events) == 1


def test_a_reset_for_stills_stops_tracking_and_a_plain_reset_keeps_that() -> None:
    engine = Engine(ScriptedRecognizer([SIGN_50]))
    engine.reset(track=False)
    assert engine.process(frame(0)).detections == [SIGN_50]  # shown at once, with no track
    engine.reset()
    assert not engine.track
    engine.reset(track=True)
    assert engine.process(frame(0)).detections == []  # a track waits for its third sighting


def test_conf_is_the_recognizers_threshold() -> None:
    engine = Engine(ScriptedRecognizer([]))
    engine.conf = 0.8
    assert engine.recognizer.conf == 0.8 and engine.conf == 0.8


def test_default_engine_uses_the_shipped_model() -> None:
    engine = Engine(track=False)
    engine.conf = 0.9
    result = engine.process(frame(0))
    assert result.detections == [] and {"proposals", "classify", "total"} <= set(result.timings_ms)


def test_finders_given_replace_the_shipped_ones(tmp_path) -> None:
    import shutil

    from signcam.proposals import DEFAULT_COARSE_DETECTOR, DEFAULT_DETECTOR

    finder = tmp_path / "my-signdet.onnx"
    shutil.copy(DEFAULT_DETECTOR, finder)

    def finders(engine: Engine) -> tuple:
        signdet = engine.recognizer.proposer.proposers[0]
        return signdet.path, signdet.coarse_path

    assert finders(Engine.from_model()) == (DEFAULT_DETECTOR, DEFAULT_COARSE_DETECTOR)
    assert finders(Engine.from_model(detector=finder)) == (finder, DEFAULT_COARSE_DETECTOR)
    assert finders(Engine.from_model(coarse_detector=finder)) == (DEFAULT_DETECTOR, finder)
    assert finders(Engine.from_model(detector=finder, coarse_detector="none")) == (finder, None)


def scan_pattern(engine: Engine, indices: list[int]) -> str:
    """'S' where a frame was searched whole, 'f' where only around tracked signs."""
    return "".join("S" if engine.process(frame(i)).scanned else "f" for i in indices)


def test_whole_frames_are_searched_every_nth_frame_of_the_source() -> None:
    recognizer = ScriptedRecognizer([SIGN_50])
    engine = Engine(recognizer, scan_every=3)
    assert scan_pattern(engine, list(range(7))) == "SffSffS"
    assert [w is None for w in recognizer.windows] == [True, False, False, True, False, False, True]
    # Frames skipped (a stride, or the app catching up) count: 7 -> 9 is two frames on.
    assert scan_pattern(engine, [7, 9, 10, 11]) == "fSff"
    # A seek backwards searches at once.
    assert scan_pattern(engine, [2]) == "S"


def test_between_searches_the_engine_looks_around_each_tracked_sign() -> None:
    recognizer = ScriptedRecognizer([SIGN_50])
    engine = Engine(recognizer, scan_every=4)
    results = [engine.process(frame(i)) for i in range(4)]
    # Followed frames confirm the sign as whole-frame searches would.
    assert [len(r.detections) for r in results] == [0, 0, 1, 1]
    # SIGN_50 (100..139) stands still: 128 px around its centre (3 x 40 px is less).
    assert recognizer.windows[1].tolist() == [[55.5, 55.5, 183.5, 183.5]]


def test_a_larger_sign_is_followed_in_a_window_three_times_its_size() -> None:
    recognizer = ScriptedRecognizer([Detection((100, 60, 159, 119), 2, 0.9)])  # 60 px: a 180 px window
    engine = Engine(recognizer, scan_every=4)
    for i in range(2):
        engine.process(frame(i))
    assert recognizer.windows[1].tolist() == [[39.5, -0.5, 219.5, 179.5]]


def test_with_nothing_tracked_followed_frames_look_nowhere() -> None:
    recognizer = ScriptedRecognizer([])
    engine = Engine(recognizer, scan_every=3)
    assert scan_pattern(engine, [0, 1, 2]) == "Sff"
    assert recognizer.windows[1].shape == (0, 4)


def test_without_tracking_or_with_scan_every_1_every_frame_is_searched() -> None:
    assert scan_pattern(Engine(ScriptedRecognizer([SIGN_50]), track=False, scan_every=3), [0, 1, 2]) == "SSS"
    assert scan_pattern(Engine(ScriptedRecognizer([SIGN_50]), scan_every=1), [0, 1, 2]) == "SSS"


def test_reset_searches_the_next_frame_whole() -> None:
    engine = Engine(ScriptedRecognizer([SIGN_50]), scan_every=5)
    assert scan_pattern(engine, [0, 1]) == "Sf"
    engine.reset()
    assert scan_pattern(engine, [2, 3]) == "Sf"


def test_scan_every_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Engine(ScriptedRecognizer([]), scan_every=0)


def test_losing_a_confirmed_sign_between_searches_searches_the_next_frame_whole() -> None:
    recognizer = ScriptedRecognizer([SIGN_50])
    engine = Engine(recognizer, scan_every=10)
    assert scan_pattern(engine, [0, 1, 2, 3]) == "Sfff"  # confirmed at frame 2
    recognizer.found = []  # the sign is gone (passed, or the scene cut)
    assert scan_pattern(engine, [4, 5, 6]) == "fSf"


def test_detections_drawn_on_a_later_frame_move_on_with_their_track_at_most_max_ahead() -> None:
    moving = Detection((10, 10, 29, 29), 14, 0.9, track_id=1, motion=Motion(2.0, 0.0))
    still = Detection((100, 10, 119, 29), 1, 0.9)
    result = FrameResult(Frame(np.zeros((40, 200, 3), np.uint8), 5, 200.0, "clip"), [moving, still])
    assert result.detections_at(5) == [moving, still]
    assert [d.box for d in result.detections_at(8)] == [(16, 10, 35, 29), still.box]
    assert result.detections_at(5 + 100)[0].box == moving.ahead(MAX_AHEAD).box
