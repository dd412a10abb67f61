"""The window end to end with a fake recogniser: play, events, seek, record, switch, errors, settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import cv2
import numpy as np
import pytest
from PyQt6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PyQt6.QtGui import QDropEvent
from PyQt6.QtWidgets import QMessageBox
from qt_testing import CLIP_FRAMES, SIGN_BOX, SIGN_CLASS, SIGN_FROM, FakeCapture

from signcam import sources
from signcam._qt import qt_main_window, qt_player
from signcam._qt.qt_event_panel import ICON_SIZE, MIN_ROWS, QtEventPanel
from signcam._qt.qt_main_window import NO_CAMERA, QtMainWindow
from signcam.errors import SignCamError, SourceError
from signcam.road import SignEvent
from signcam.sinks import VideoSink
from signcam.sources import ImageSource, LiveSource

TIMEOUT_MS = 10_000


def open_and_play(qtbot, window: QtMainWindow, spec: str | Path, speed: float = 4.0) -> None:
    """Open ``spec`` (played ``speed`` times faster, to keep tests short) and wait for its first frame on screen.

    Only one painted frame is awaited: a short clip at 4x may end before a busy machine paints
    a second one, but its last frame stays up and is always painted.
    """
    window.player.set_speed(speed)
    shown = window.view.frames_shown
    window.open_source(str(spec))
    # The window has taken it in when its title names it. Until then a frame of the source
    # before, painted late, could pass for this one's while the player already reports it.
    titles = {f"{Path(str(spec)).name} – signcam", f"{spec} – signcam"}  # a file by its name, else as given

    def on_screen() -> None:
        assert (window.player.info is not None and window.view.frames_shown > shown
                and window.windowTitle() in titles), (
            f"not on screen: info={window.player.info}, painted {window.view.frames_shown - shown}, "
            f"title {window.windowTitle()!r}, position {window.player.position}, error {window.last_error!r}")

    qtbot.waitUntil(on_screen, timeout=TIMEOUT_MS)


def wait_for_events(qtbot, window: QtMainWindow) -> None:
    qtbot.waitUntil(lambda: bool(window.panel.events), timeout=TIMEOUT_MS)


def read_video(path: Path) -> int:
    capture = cv2.VideoCapture(str(path))
    frames = 0
    while capture.read()[0]:
        frames += 1
    capture.release()
    return frames


def test_start_screen_when_no_camera(window, monkeypatch):
    monkeypatch.setattr(qt_main_window, "list_cameras", lambda: [])
    window.start()
    assert window.stack.currentWidget() is window.start_screen
    assert window.start_screen.message.text() == NO_CAMERA
    labels = [button.text() for button in window.start_screen.buttons]
    assert {"Open Video", "Open Camera", "Play the Demo"} <= set(labels)


def test_start_opens_first_camera(qtbot, window, monkeypatch):
    monkeypatch.setattr(qt_main_window, "list_cameras", lambda: [(99, "Gone Camera")])
    window.start()
    # Camera 99 does not exist: the attempt fails and the start screen says so.
    qtbot.waitUntil(lambda: window.last_error is not None, timeout=TIMEOUT_MS)
    assert window.last_error == "no camera at index 99" == window.start_screen.message.text()
    assert window.stack.currentWidget() is window.start_screen and window.player.info is None


def test_play_lists_events_and_speed_limit(qtbot, window, clip):
    open_and_play(qtbot, window, clip)
    assert window.stack.currentWidget() is window.video_page
    wait_for_events(qtbot, window)
    event = window.panel.events[0]
    assert event.class_id == SIGN_CLASS
    assert event.frame_index >= SIGN_FROM
    qtbot.waitUntil(lambda: window.panel.speed_limit.limit == 50, timeout=TIMEOUT_MS)
    assert window.panel.list.count() == 1
    assert "Speed limit 50" in window.panel.list.item(0).text()


def test_a_long_sign_name_is_cut_short_in_the_list_and_whole_in_its_tooltip(qtbot):
    """Elided with "…" (seen in a screenshot) rather than a sideways scroll bar under the list."""
    panel = QtEventPanel()
    qtbot.addWidget(panel)
    panel.resize(200, 400)
    panel.show()
    name = "Priority at next intersection"
    panel.add_events([SignEvent(1, 11, name, 0.95, 120, 4800.0, (0, 0, 30, 30), "clip.mp4")], epoch=0)
    item = panel.list.item(0)
    qtbot.waitUntil(lambda: panel.list.visualItemRect(item).isValid(), timeout=TIMEOUT_MS)
    assert not panel.list.horizontalScrollBar().isVisible()
    assert name in item.toolTip() and "frame 120" in item.toolTip()


def test_clicking_an_event_seeks_there(qtbot, window, clip):
    open_and_play(qtbot, window, clip)
    wait_for_events(qtbot, window)
    qtbot.waitUntil(lambda: not window.player.playing, timeout=TIMEOUT_MS)  # the clip ends
    item = window.panel.list.item(0)
    qtbot.waitUntil(lambda: window.panel.list.visualItemRect(item).isValid(), timeout=TIMEOUT_MS)  # laid out
    rect = window.panel.list.visualItemRect(item)
    qtbot.mouseClick(window.panel.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    target = window.panel.events[0].frame_index

    def there() -> None:
        assert window.player.position == target, (
            f"at frame {window.player.position}, not {target}; clicked {rect.center()} of {rect}, "
            f"current row {window.panel.list.currentRow()}, idle {window.player.idle}")
        # The slider follows the frame once it is shown, a moment later on a busy machine.
        assert window.bar.slider.value() == target, f"slider at {window.bar.slider.value()}, not {target}"

    qtbot.waitUntil(there, timeout=TIMEOUT_MS)
    # The frame shown is annotated as if played up to it: the sign boxed, its limit in force.
    assert_sign_shown_at(qtbot, window, target)
    # Finding the same sign again after the seek does not list it twice.
    window.player.play()
    qtbot.waitUntil(lambda: not window.player.playing, timeout=TIMEOUT_MS)
    assert len(window.panel.events) == 1


def assert_sign_shown_at(qtbot, window: QtMainWindow, index: int) -> None:
    """The paused frame ``index`` has the clip's sign as a confirmed track, and its speed limit."""
    def shown() -> None:
        result = window.recognition.latest()
        assert result is not None and result.frame.index == index, f"result of {result and result.frame.index}"
        assert [d.class_id for d in result.detections if d.track_id is not None] == [SIGN_CLASS]
        assert window.panel.speed_limit.limit == 50

    qtbot.waitUntil(shown, timeout=TIMEOUT_MS)


def test_a_step_back_keeps_the_signs_on_the_frame(qtbot, window, clip):
    open_and_play(qtbot, window, clip)
    qtbot.waitUntil(lambda: not window.player.playing, timeout=TIMEOUT_MS)  # the clip ends, sign in view
    qtbot.waitUntil(lambda: window.player.idle, timeout=TIMEOUT_MS)
    qtbot.keyClick(window, Qt.Key.Key_Left)
    qtbot.waitUntil(lambda: window.player.position == CLIP_FRAMES - 2, timeout=TIMEOUT_MS)
    assert_sign_shown_at(qtbot, window, CLIP_FRAMES - 2)


def test_a_click_on_the_seek_bar_goes_there(qtbot, window, clip):
    open_and_play(qtbot, window, clip)
    window.player.pause()
    slider = window.bar.slider
    qtbot.mouseClick(slider, Qt.MouseButton.LeftButton, pos=QPoint(round(slider.width() * 0.8), slider.height() // 2))
    qtbot.waitUntil(lambda: abs(window.player.position - 0.8 * CLIP_FRAMES) < 0.1 * CLIP_FRAMES, timeout=TIMEOUT_MS)


def test_the_smallest_window_keeps_a_seek_bar_and_a_few_signs_in_view(qtbot, window, clip):
    open_and_play(qtbot, window, clip)
    window.resize(window.minimumSizeHint())
    qtbot.waitUntil(lambda: window.size() == window.minimumSizeHint(), timeout=TIMEOUT_MS)
    assert window.bar.slider.width() >= 160
    assert window.panel.list.viewport().height() >= MIN_ROWS * ICON_SIZE


def test_keys_play_pause_step_and_seek(qtbot, window, clip):
    open_and_play(qtbot, window, clip, speed=1.0)
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert not window.player.playing
    qtbot.waitUntil(lambda: window.player.idle, timeout=TIMEOUT_MS)
    position = window.player.position
    qtbot.keyClick(window, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: window.player.position == position + 1, timeout=TIMEOUT_MS)
    qtbot.keyClick(window, Qt.Key.Key_Left)
    qtbot.waitUntil(lambda: window.player.position == position, timeout=TIMEOUT_MS)
    qtbot.keyClick(window, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: window.player.position == CLIP_FRAMES - 1, timeout=TIMEOUT_MS)  # 5 s is past the end
    qtbot.keyClick(window, Qt.Key.Key_Left, Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: window.player.position == 0, timeout=TIMEOUT_MS)
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert window.player.playing


def test_every_frame_mode_analyses_every_frame(qtbot, window, clip):
    window.commands["every_frame"].setChecked(True)
    open_and_play(qtbot, window, clip, speed=4.0)
    qtbot.waitUntil(lambda: not window.player.playing, timeout=TIMEOUT_MS)
    assert window.recognition.processed >= CLIP_FRAMES
    assert window.player.position == CLIP_FRAMES - 1


def test_loop_plays_again(qtbot, window, clip):
    window.commands["loop"].setChecked(True)
    open_and_play(qtbot, window, clip, speed=4.0)
    qtbot.waitUntil(lambda: window.player.position > CLIP_FRAMES - 10, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: window.player.position < 10, timeout=TIMEOUT_MS)
    assert window.player.playing


def test_record_writes_a_playable_video(qtbot, window, clip, settings):
    open_and_play(qtbot, window, clip, speed=1.0)
    qtbot.keyClick(window, Qt.Key.Key_R)
    path = window.player.recording
    assert path is not None and window.commands["record"].isChecked()
    start = window.view.frames_shown
    qtbot.waitUntil(lambda: window.view.frames_shown > start + 10, timeout=TIMEOUT_MS)
    qtbot.keyClick(window, Qt.Key.Key_R)
    assert window.player.recording is None and not window.commands["record"].isChecked()
    assert path.parent == Path(settings.output_dir)
    assert read_video(path) >= 10


def test_recording_while_paused_records_nothing_and_says_so(qtbot, window, clip, settings):
    open_and_play(qtbot, window, clip)
    window.player.pause()
    window.toggle_recording()
    assert "once the video plays" in window.statusBar().currentMessage()
    window.toggle_recording()
    assert window.statusBar().currentMessage().startswith("Nothing was recorded")
    assert not any(Path(settings.output_dir).glob("*.mp4"))


def test_opening_another_source_while_recording_keeps_saying_where_the_recording_went(qtbot, window, clip):
    open_and_play(qtbot, window, clip, speed=1.0)
    window.toggle_recording()
    path, start = window.player.recording, window.view.frames_shown
    qtbot.waitUntil(lambda: window.view.frames_shown > start + 5, timeout=TIMEOUT_MS)
    window.open_source(str(clip))
    assert window.statusBar().currentMessage() == f"Saved the recording {path}. Opening {clip}…"
    qtbot.waitUntil(lambda: not window.statusBar().currentMessage().endswith("…"), timeout=TIMEOUT_MS)
    assert window.statusBar().currentMessage() == f"Saved the recording {path}."


@pytest.mark.parametrize("how", ["toggle", "open-another", "quit", "quit-unattended"])
def test_a_recording_the_disk_could_not_hold_is_reported(qtbot, window, clip, monkeypatch, caplog, how):
    monkeypatch.setattr("signcam.sinks._holds_frames", lambda path, count: False)  # as on a full disk
    warned = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text, *rest: warned.append(text))
    open_and_play(qtbot, window, clip, speed=1.0)
    window.toggle_recording()
    path, start = window.player.recording, window.view.frames_shown
    qtbot.waitUntil(lambda: window.view.frames_shown > start + 3, timeout=TIMEOUT_MS)
    message = f"cannot finish the video {path}: it was not written whole (is the disk full?)"
    if how.startswith("quit"):  # the terminal it was started from is told, and a user at the window
        window.unattended = how == "quit-unattended"  # as Ctrl-C in that terminal sets it
        window.close()
        assert f"error: {message}" in caplog.text
        assert warned == ([] if window.unattended else [message])
        return
    if how == "toggle":
        window.toggle_recording()
    else:
        window.open_source(str(clip))
    assert window.last_error == message
    assert window.player.recording is None and not window.commands["record"].isChecked()


def test_quit_while_recording_finalises_the_file(qtbot, window, clip):
    window.commands["loop"].setChecked(True)
    open_and_play(qtbot, window, clip, speed=1.0)
    window.toggle_recording()
    path = window.player.recording
    start = window.view.frames_shown
    qtbot.waitUntil(lambda: window.view.frames_shown > start + 5, timeout=TIMEOUT_MS)
    qtbot.keyClick(window, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
    assert not window.isVisible()
    assert read_video(path) >= 5


def test_snapshot_saves_the_annotated_frame(qtbot, window, clip, settings):
    open_and_play(qtbot, window, clip)
    qtbot.keyClick(window, Qt.Key.Key_S)
    shots = list(Path(settings.output_dir).glob("*.png"))
    assert len(shots) == 1
    assert cv2.imread(str(shots[0])).shape == (240, 320, 3)


def test_switch_sources_while_playing(qtbot, window, clip, other_clip):
    open_and_play(qtbot, window, clip)
    window.toggle_recording()
    open_and_play(qtbot, window, other_clip)
    assert window.player.info.spec == str(other_clip)
    assert window.player.info.frame_count == 40
    assert window.player.recording is None  # a new source ends the recording of the old one
    assert window.source_label.text().startswith(str(other_clip))


@pytest.mark.parametrize("spec, message", [
    ("missing.mp4", "no such file"),
    ("corrupt.mp4", "cannot read"),
    ("99", "no camera"),
])
def test_bad_sources_show_an_error_and_keep_the_app_usable(qtbot, window, clip, tmp_path, spec, message):
    (tmp_path / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 20)
    window.open_source(str(tmp_path / spec) if spec.endswith(".mp4") else spec)
    qtbot.waitUntil(lambda: window.last_error is not None, timeout=TIMEOUT_MS)
    assert message in window.last_error
    assert window.stack.currentWidget() is window.start_screen
    assert message in window.start_screen.message.text()
    assert message in window.statusBar().currentMessage()
    open_and_play(qtbot, window, clip)
    assert window.stack.currentWidget() is window.video_page


def test_a_source_that_fails_after_another_leaves_none_of_its_signs(qtbot, window, clip, tmp_path):
    open_and_play(qtbot, window, clip)
    wait_for_events(qtbot, window)
    window.open_source(str(tmp_path / "missing.mp4"))
    qtbot.waitUntil(lambda: window.stack.currentWidget() is window.start_screen, timeout=TIMEOUT_MS)
    assert window.panel.events == [] and window.panel.list.count() == 0


def test_the_last_frame_of_a_closed_source_is_not_taken_for_the_next(qtbot, window, clip, tmp_path):
    open_and_play(qtbot, window, clip)
    wait_for_events(qtbot, window)
    stale = window.player.on_screen
    window.open_source(str(tmp_path / "missing.mp4"))
    # The old source's thread published one more frame just as the new one began to open.
    window.player._pending = stale
    window.player.frameReady.emit()
    qtbot.waitUntil(lambda: window.stack.currentWidget() is window.start_screen, timeout=TIMEOUT_MS)
    assert window.panel.events == [] and window._broken_source is None


def test_a_source_that_opens_after_another_was_opened_leaves_its_recognition_alone(qtbot, window, clip, monkeypatch):
    """A slow folder the user gave up on for a video must not reset the video's tracks when it finally opens."""
    opening, closed = threading.Event(), threading.Event()

    class SlowStills(ImageSource):
        def close(self) -> None:
            closed.set()

    def open_source(spec: str, realtime: bool):
        if spec != "slow folder":
            return sources.open_source(spec, realtime)
        opening.wait(TIMEOUT_MS / 1000)
        return SlowStills([clip], "slow folder")  # stills: it would turn tracking off

    monkeypatch.setattr(qt_player, "open_source", open_source)
    window.open_source("slow folder")
    open_and_play(qtbot, window, clip)
    qtbot.waitUntil(lambda: window.panel.speed_limit.limit == 50, timeout=TIMEOUT_MS)
    epoch = window.recognition.epoch
    opening.set()
    qtbot.waitUntil(closed.is_set, timeout=TIMEOUT_MS)
    assert window.recognition.epoch == epoch and window.recognition.engine.track
    assert window.panel.speed_limit.limit == 50 and len(window.panel.events) == 1


def test_frames_read_before_a_reset_are_not_recognised(window, clip):
    """Such as the last frame a closed camera's thread was still reading when the next source opened."""
    frame = next(iter(sources.open_source(str(clip), False)))
    recognition = window.recognition
    before = recognition.reset()
    recognition.reset()
    assert recognition.process(frame, before) is None
    recognition.submit(frame, before)
    assert recognition.process(frame, recognition.epoch) is not None  # runs after anything submitted
    assert recognition.processed == 1


def test_a_speed_limit_of_an_earlier_epoch_is_not_shown(window):
    """Told by the recognition thread just as a seek or a new source reset it, it reaches the panel after the reset."""
    recognition, panel = window.recognition, window.panel
    before = recognition.epoch
    recognition.reset()
    recognition._tell_speed_limit(50, before)
    assert panel.speed_limit.limit is None
    panel.set_speed_limit(50, before)  # the same, told a moment before the reset but delivered after it
    assert panel.speed_limit.limit is None
    recognition._tell_speed_limit(50, recognition.epoch)
    assert panel.speed_limit.limit == 50


def test_what_a_replaced_source_reported_too_late_is_ignored(qtbot, window, clip, tmp_path):
    """A missing file fails on its thread, then the user opens a video before the window heard of the failure."""
    window.open_source(str(tmp_path / "missing.mp4"))
    window.player._session.thread.join(TIMEOUT_MS / 1000)  # failed, the window not told yet: no event processed
    open_and_play(qtbot, window, clip)
    qtbot.wait(100)  # any report still queued arrives
    assert window.last_error is None and window.stack.currentWidget() is window.video_page
    assert window.player.playing and window.commands["play"].text() == "&Pause"


def test_play_is_offered_only_when_there_is_something_to_play(qtbot, window, clip, monkeypatch):
    """Not before a source opens (the demo takes seconds to draw the first time), nor after one failed to."""
    play = window.commands["play"]
    assert not play.isEnabled()
    open_and_play(qtbot, window, clip)
    wait_for_events(qtbot, window)
    assert play.isEnabled()
    opening = threading.Event()

    def open_source(spec: str, realtime: bool):
        opening.wait(TIMEOUT_MS / 1000)
        return sources.open_source(spec, realtime)

    monkeypatch.setattr(qt_player, "open_source", open_source)
    window.open_source(str(clip))
    assert not play.isEnabled()
    assert window.panel.events == [] and window.windowTitle() == "signcam"  # nothing of the source before
    opening.set()
    qtbot.waitUntil(play.isEnabled, timeout=TIMEOUT_MS)
    window.open_source(str(clip.with_name("missing.mp4")))
    qtbot.waitUntil(lambda: window.stack.currentWidget() is window.start_screen, timeout=TIMEOUT_MS)
    assert not play.isEnabled()


def test_no_snapshot_of_the_last_source_while_the_next_opens(qtbot, window, clip, monkeypatch):
    open_and_play(qtbot, window, clip)
    opening = threading.Event()

    def open_source(spec: str, realtime: bool):
        opening.wait(TIMEOUT_MS / 1000)
        raise SourceError("the camera did not answer")

    monkeypatch.setattr(qt_player, "open_source", open_source)
    window.open_source("rtsp://camera.local/live")
    try:
        with pytest.raises(SignCamError, match="no frame"):
            window.player.snapshot(window.settings.output_dir + "/shot.png")
    finally:
        opening.set()


def test_a_video_that_broke_off_plays_again_what_could_be_read(qtbot, window, tmp_path):
    broken = tmp_path / "broken.avi"
    with VideoSink(broken, fps=25.0) as video:
        for index in range(100):
            video.write(np.full((240, 320, 3), index * 2, np.uint8))
    broken.write_bytes(broken.read_bytes()[: broken.stat().st_size // 2])
    window.player.set_speed(4.0)
    window.open_source(str(broken))
    qtbot.waitUntil(lambda: "stopped after" in (window.last_error or ""), timeout=TIMEOUT_MS)
    assert window.stack.currentWidget() is window.video_page and not window.bar.slider.isEnabled()
    assert window.bar.time_label.text() != "0:00.0"  # the time of the last frame, still on screen
    shown = window.view.frames_shown
    qtbot.keyClick(window, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: window.view.frames_shown > shown + 5, timeout=TIMEOUT_MS)


def test_truncated_video_reports_where_it_stopped(qtbot, window, clip, tmp_path):
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    window.player.set_speed(4.0)
    window.open_source(str(truncated))
    qtbot.waitUntil(lambda: window.last_error is not None or (window.player.info and not window.player.playing),
                    timeout=TIMEOUT_MS)
    # Whether FFmpeg refuses the file or stops half-way, the app stays on its feet.
    open_and_play(qtbot, window, clip)


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_export_events(qtbot, window, clip, tmp_path, suffix):
    open_and_play(qtbot, window, clip)
    wait_for_events(qtbot, window)
    path = tmp_path / f"signs{suffix}"
    window.export_events(path)
    text = path.read_text()
    if suffix == ".json":
        assert json.loads(text)[0]["class_id"] == SIGN_CLASS
    else:
        assert text.splitlines()[0].startswith("track_id,class_id,label")
        assert len(text.splitlines()) == 2


@pytest.mark.parametrize("suffix", [".csv", ".json"])
@pytest.mark.parametrize("name", ["signs", "signs.v2"])
def test_export_dialog_adds_the_suffix_the_menu_chose(qtbot, window, clip, tmp_path, monkeypatch, suffix, name):
    open_and_play(qtbot, window, clip)
    wait_for_events(qtbot, window)
    monkeypatch.setattr(qt_main_window.QFileDialog, "getSaveFileName", lambda *args: (str(tmp_path / name), ""))
    window.export_events_dialog(suffix)
    assert (tmp_path / f"{name}{suffix}").is_file(), window.last_error


def test_export_rejects_other_suffixes(window, tmp_path):
    window.export_events(tmp_path / "signs.txt")
    assert "use a .csv or .json file" in window.last_error


def test_without_a_model_the_video_still_plays(qtbot, make_window, clip):
    window = make_window(engine=None, model_error="model file not found: nowhere.onnx")
    assert "model file not found" in window.statusBar().currentMessage()
    assert not window.controls.isEnabled()
    open_and_play(qtbot, window, clip)
    assert window.panel.events == []


def test_recognition_errors_are_reported_and_playback_goes_on(qtbot, make_window, clip):
    def broken(image, keep_rejected=False, windows=None):
        raise RuntimeError("model exploded")

    from signcam.pipeline import Engine

    window = make_window(engine=Engine(broken))
    window.commands["loop"].setChecked(True)  # so frames keep coming however long the check takes
    open_and_play(qtbot, window, clip)
    qtbot.waitUntil(lambda: window.last_error is not None, timeout=TIMEOUT_MS)
    assert "model exploded" in window.last_error
    start = window.view.frames_shown
    qtbot.waitUntil(lambda: window.view.frames_shown > start + 2, timeout=TIMEOUT_MS)


def test_settings_persist(qtbot, make_window, settings, clip):
    window = make_window()
    window.controls.slider.setValue(73)
    assert window.recognition.engine.conf == pytest.approx(0.73)
    qtbot.keyClick(window, Qt.Key.Key_B)  # hide boxes
    window.commands["show_rejected"].setChecked(True)
    window.commands["loop"].setChecked(True)
    open_and_play(qtbot, window, clip)
    window.resize(780, 520)
    size = window.size()  # what fits: the window has a minimum size, the offscreen screen is 800x600
    window.close()

    again = make_window()
    assert again.controls.conf == pytest.approx(0.73)
    assert again.recognition.engine.conf == pytest.approx(0.73)
    assert not again.commands["show_boxes"].isChecked()
    assert again.commands["show_rejected"].isChecked() and again.commands["loop"].isChecked()
    assert again.player.overlay.show_rejected and not again.player.overlay.show_boxes
    assert settings.last_source == str(clip.resolve())
    assert settings.recent_files == [str(clip.resolve())]
    assert again.size() == size
    again.start()  # opens the last source
    qtbot.waitUntil(lambda: again.player.info is not None, timeout=TIMEOUT_MS)
    assert again.player.info.spec == str(clip.resolve())


def test_file_names_that_are_not_utf8_are_remembered_as_they_are(settings, tmp_path):
    """A Latin-1 name reaches Python with a lone surrogate, which QSettings would turn into a replacement mark."""
    name = os.fsdecode(bytes(tmp_path) + b"/caf\xe9.mp4")
    settings.last_source = name
    settings.add_recent(name)
    settings.output_dir = name + "-out"
    settings.sync()
    read_back = subprocess.run(  # by another process: this one's QSettings would answer from memory
        [sys.executable, "-c", "import os, sys; from PyQt6.QtCore import QSettings; "
         "from signcam._qt.qt_settings import QtAppSettings; "
         "s = QtAppSettings(QSettings(sys.argv[1], QSettings.Format.IniFormat)); "
         "print([os.fsencode(p).hex() for p in (s.last_source, *s.recent_files, s.output_dir)])",
         settings.qsettings.fileName()], capture_output=True, text=True, check=True).stdout
    assert read_back.strip() == str([os.fsencode(p).hex() for p in (name, name, name + "-out")])


@pytest.mark.parametrize("is_camera, message", [(True, "stopped delivering frames"), (False, "ended")])
def test_a_live_source_that_stops_is_reported_and_its_recording_kept(qtbot, window, monkeypatch, is_camera, message):
    capture = FakeCapture()
    monkeypatch.setattr(qt_player, "open_source", lambda spec, realtime: LiveSource(capture, spec, is_camera))
    open_and_play(qtbot, window, "rtsp://camera.local/live")
    window.toggle_recording()
    path, start = window.player.recording, window.view.frames_shown
    qtbot.waitUntil(lambda: window.view.frames_shown > start + 5, timeout=TIMEOUT_MS)
    capture.stop()
    qtbot.waitUntil(lambda: window.last_error is not None, timeout=TIMEOUT_MS)
    assert message in window.last_error and f"the recording so far is in {path}" in window.last_error
    assert window.stack.currentWidget() is window.video_page  # the last frame stays on screen
    assert not window.player.playing and not window.commands["record"].isChecked()
    assert read_video(path) >= 5


def test_a_file_opened_by_a_relative_path_is_remembered_by_its_full_one(qtbot, window, clip, monkeypatch):
    monkeypatch.chdir(clip.parent)
    open_and_play(qtbot, window, clip.name)
    assert window.settings.last_source == str(clip.resolve()) == window.settings.recent_files[0]
    open_and_play(qtbot, window, clip.resolve().as_uri())  # a file:// URL: the same file
    assert window.settings.last_source == str(clip.resolve()) and window.windowTitle() == f"{clip.name} – signcam"


def test_the_demo_is_remembered_as_the_demo_even_beside_a_folder_named_demo(qtbot, window, clip, tmp_path,
                                                                             monkeypatch):
    (tmp_path / "demo").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(qt_player, "demo_video_path", lambda stop=None: clip)  # not drawn: the clip stands in
    monkeypatch.setattr(qt_player, "open_source", lambda spec, realtime: sources.open_source(str(clip), realtime)
                        if spec == "demo" else sources.open_source(spec, realtime))
    open_and_play(qtbot, window, "demo")
    assert window.settings.last_source == "demo" and window.settings.recent_files == []


@pytest.mark.parametrize("name", [b"clip.mp4", b"caf\xe9.mp4"], ids=["utf8", "latin1"])
def test_drop_a_file_to_open_it(qtbot, window, clip, tmp_path, name):
    path = os.fsdecode(bytes(tmp_path) + b"/" + name)
    Path(path).write_bytes(clip.read_bytes())
    url = QUrl("file://" + urllib.parse.quote(os.fsencode(path)))  # as a file manager sends it
    mime = QMimeData()
    mime.setUrls([url])
    window.dropEvent(QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                                Qt.KeyboardModifier.NoModifier))
    qtbot.waitUntil(lambda: window.player.info is not None or window.last_error is not None, timeout=TIMEOUT_MS)
    assert window.last_error is None and window.player.info.spec == path


def test_recent_files_menu(qtbot, window, clip, other_clip):
    open_and_play(qtbot, window, clip)
    open_and_play(qtbot, window, other_clip)
    window._fill_recent_menu()
    assert [a.text() for a in window.recent_menu.actions()] == [str(other_clip.resolve()), str(clip.resolve())]
    window.recent_menu.actions()[1].trigger()
    qtbot.waitUntil(lambda: window.player.info is not None and window.player.info.spec == str(clip.resolve()),
                    timeout=TIMEOUT_MS)


def test_overlay_toggles_redraw_a_paused_frame(qtbot, window, clip):
    open_and_play(qtbot, window, clip)
    qtbot.waitUntil(lambda: window.player.idle and not window.player.playing, timeout=TIMEOUT_MS)  # at the end
    position, epoch = window.player.position, window.recognition.epoch
    qtbot.waitUntil(lambda: window.view.grab().toImage() == window.view.grab().toImage())  # the last frame is up
    before = window.view.grab().toImage()
    window.commands["show_boxes"].setChecked(False)
    qtbot.waitUntil(lambda: window.view.grab().toImage() != before, timeout=TIMEOUT_MS)  # the box is gone
    assert window.player.position == position and window.recognition.epoch == epoch  # same frame, tracks kept


def test_image_folder_steps_through_images(qtbot, window, tmp_path):
    for index in range(3):
        cv2.imwrite(str(tmp_path / f"{index:05d}.png"), np.full((240, 320, 3), 40 * index, np.uint8))
    open_and_play(qtbot, window, tmp_path, speed=1.0)  # one image a second
    window.player.pause()
    qtbot.waitUntil(lambda: window.player.idle, timeout=TIMEOUT_MS)
    window.player.seek(0)
    qtbot.waitUntil(lambda: window.bar.time_label.text() == "image 1 / 3", timeout=TIMEOUT_MS)
    qtbot.keyClick(window, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: window.bar.time_label.text() == "image 2 / 3", timeout=TIMEOUT_MS)
    assert window.windowTitle() == f"{tmp_path.name} – signcam"


def test_an_unreadable_image_is_told_and_a_step_back_passes_over_it(qtbot, window, tmp_path):
    for index in range(4):
        cv2.imwrite(str(tmp_path / f"{index:05d}.png"), np.full((240, 320, 3), 40 * index, np.uint8))
    (tmp_path / "00002.png").write_bytes(b"not a png")
    open_and_play(qtbot, window, tmp_path, speed=1.0)
    window.player.pause()
    qtbot.waitUntil(lambda: window.player.idle, timeout=TIMEOUT_MS)
    window.player.seek(1)
    qtbot.waitUntil(lambda: window.bar.time_label.text() == "image 2 / 4", timeout=TIMEOUT_MS)
    qtbot.keyClick(window, Qt.Key.Key_Right)  # 00002.png cannot be read: 00003.png comes next
    qtbot.waitUntil(lambda: window.bar.time_label.text() == "image 4 / 4", timeout=TIMEOUT_MS)
    assert window.statusBar().currentMessage().startswith("⚠ skipped: cannot read image")
    assert "00002.png" in window.statusBar().currentMessage()
    qtbot.keyClick(window, Qt.Key.Key_Left)  # back past it, not forwards again onto 00003.png
    qtbot.waitUntil(lambda: window.bar.time_label.text() == "image 2 / 4", timeout=TIMEOUT_MS)


def test_an_unreadable_last_image_is_told_too(qtbot, window, tmp_path):
    for index in range(2):
        cv2.imwrite(str(tmp_path / f"{index:05d}.png"), np.full((240, 320, 3), 40 * index, np.uint8))
    (tmp_path / "00002.png").write_bytes(b"not a png")
    open_and_play(qtbot, window, tmp_path, speed=4.0)
    qtbot.waitUntil(lambda: "00002.png" in window.statusBar().currentMessage(), timeout=TIMEOUT_MS)
    assert window.statusBar().currentMessage().startswith("⚠ skipped: cannot read image")


def test_stills_are_not_tracked_and_a_video_opened_after_them_is(qtbot, window, tmp_path, clip):
    cv2.imwrite(str(tmp_path / "00000.png"), np.full((240, 320, 3), 40, np.uint8))
    open_and_play(qtbot, window, tmp_path, speed=1.0)
    qtbot.waitUntil(lambda: window.recognition.processed > 0, timeout=TIMEOUT_MS)
    assert window.recognition.engine.track is False
    open_and_play(qtbot, window, clip)
    qtbot.waitUntil(lambda: window.recognition.engine.track is True, timeout=TIMEOUT_MS)


def test_signs_in_stills_are_listed_by_image_name(qtbot, window, tmp_path):
    image = np.full((240, 320, 3), 40, np.uint8)
    x1, y1, x2, y2 = SIGN_BOX
    image[y1:y2 + 1, x1:x2 + 1] = 255
    cv2.imwrite(str(tmp_path / "corner.png"), image)
    open_and_play(qtbot, window, tmp_path)
    wait_for_events(qtbot, window)
    assert window.panel.list.item(0).text().endswith("· corner.png")


@pytest.mark.parametrize("loop", [False, True])
def test_a_folder_of_unreadable_images_is_an_error_not_a_hang(qtbot, window, tmp_path, loop):
    for index in range(2):
        (tmp_path / f"{index:05d}.jpg").write_bytes(b"not a jpeg")
    window.player.loop = loop
    window.open_source(str(tmp_path))
    qtbot.waitUntil(lambda: window.last_error is not None, timeout=TIMEOUT_MS)
    assert window.last_error.startswith(f"no frame could be read from 2 images in {tmp_path}: cannot read image")


def test_fullscreen_toggles(qtbot, window):
    qtbot.keyClick(window, Qt.Key.Key_F)
    assert window.commands["fullscreen"].isChecked() and not window.dock.isVisible()
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    assert not window.commands["fullscreen"].isChecked() and window.dock.isVisible()


def test_a_result_of_an_earlier_frame_is_drawn_where_its_signs_moved(window, monkeypatch):
    """Recognition lags the video: a tracked box is drawn ahead along its motion, rejected ones as they were."""
    from signcam.detection import Detection, Motion
    from signcam.pipeline import FrameResult
    from signcam.sources import Frame

    drawn = []
    monkeypatch.setattr(qt_player, "draw_overlay", lambda image, detections, *a, **k: drawn.append(detections) or image)
    image = np.zeros((240, 320, 3), np.uint8)
    sign = Detection((100, 100, 119, 119), SIGN_CLASS, 0.9, track_id=1, motion=Motion(5.0, 0.0))
    rejected = Detection((20, 20, 39, 39), SIGN_CLASS, 0.2, accepted=False)
    result = FrameResult(Frame(image, 10, 400.0, "clip"), [sign], [rejected])
    window.player._show(None, Frame(image, 13, 520.0, "clip"), result, record=False)
    window.player._show(None, Frame(image, 10, 400.0, "clip"), result, record=False)
    assert [d.box for d in drawn[0]] == [(115, 100, 134, 119), rejected.box]
    assert [d.box for d in drawn[1]] == [sign.box, rejected.box]


def test_closing_while_the_demo_is_drawn_stops_the_drawing_and_leaves_no_half_clip(qtbot, window, tmp_path,
                                                                                  monkeypatch):
    """The first demo takes seconds to draw; quitting then must not leave a thread writing a video at exit."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cache = tmp_path / "signcam"
    window.open_source("demo")
    qtbot.waitUntil(lambda: cache.is_dir() and any(cache.iterdir()), timeout=TIMEOUT_MS)  # drawing has begun
    started = time.monotonic()
    window.player.close(timeout=5.0)
    assert time.monotonic() - started < 2.0  # stopped within a frame, not after the whole clip
    assert not any(t.name == "signcam-playback" and t.is_alive() for t in threading.enumerate())
    assert list(cache.iterdir()) == []
