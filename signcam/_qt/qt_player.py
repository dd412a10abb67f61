"""The playback thread: a source is read, recognised, annotated and handed to the view.

Two threads keep the window responsive. The playback thread reads the source at its own pace
(paused, stepped, seeked, sped up), draws the newest recognition result on every frame and
publishes it; the recognition thread (:mod:`.qt_recognition`) runs the engine on the newest
frame it was given. So when recognition is slower than the video, the video stays smooth and
recognition drops frames instead of lagging behind; in "every frame" mode the playback thread
waits for each frame's result instead.

Example:
    >>> player = QtPlayer(QtRecognition(Engine()))
    >>> player.frameReady.connect(lambda: view.set_image(player.take_frame().image))
    >>> player.open("drive.mp4")                  # plays; pause(), step(), seek(), set_speed() ...
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PyQt6.QtCore import QObject, pyqtSignal
from PyQt6.QtGui import QImage

from signcam.demo import demo_video_path
from signcam.errors import SignCamError, user_message
from signcam.overlay import draw_overlay
from signcam.pipeline import FrameResult
from signcam.sinks import VideoSink, write_image
from signcam.sources import Frame, FrameSource, open_source

from .qt_recognition import QtRecognition

__all__ = ["QtPlayer", "ShownFrame", "SourceInfo", "OverlayOptions"]

log = logging.getLogger(__name__)

#: Frames the playback thread may skip in a row to catch up; then it shows one anyway, so a
#: machine too slow to even decode in real time still shows a moving picture.
MAX_SKIPPED = 4


@dataclass(frozen=True)
class SourceInfo:
    """What the window needs to know about the open source."""

    spec: str
    description: str
    is_live: bool
    is_stills: bool
    fps: float
    frame_count: int | None


@dataclass(frozen=True)
class ShownFrame:
    """A frame published for the view.

    Args:
        image: RGB32 QImage over ``buffer``, what the view paints.
        annotated: The BGR frame with the overlay (what snapshots save).
        index: The frame's index in its source.
        time_ms: The frame's time in its source.
        buffer: The player's buffer ``image`` points into; reused once another frame is shown.
        session: The opened source it is from: one published as the next opens is not shown.
    """

    image: QImage
    annotated: np.ndarray
    index: int
    time_ms: float
    buffer: np.ndarray
    session: object = None


@dataclass(frozen=True)
class OverlayOptions:
    """What :func:`~signcam.overlay.draw_overlay` shows."""

    show_boxes: bool = True
    show_labels: bool = True
    show_rejected: bool = False


@dataclass(frozen=True)
class _Command:
    """What the playback thread was asked to do next, taken under the lock in one go."""

    redraw_only: bool  # only the overlay options changed: draw the frame on screen again
    seek_to: int | None
    stepping: bool  # paused: one frame (a step, or where a seek lands), not paced by the clock
    back_from: int | None = None  # a step back: the frame it left (see QtPlayer.seek)


@dataclass
class _PlayState:
    """The playback thread's own state across its loop."""

    frame: Frame | None = None  # read but not shown: kept when paused while waiting for its time
    shown: tuple[Frame, FrameResult | None] | None = None  # redrawn when the overlay options change
    clock: tuple[float, float] | None = None  # (wall time, video time in ms) playback is aligned to
    version: int = -1  # of the commands when the clock was set (a resume, a new speed sets it again)
    skipped: int = 0  # frames skipped in a row to catch up
    read_any: bool = False
    read_since_rewind: bool = False
    failures_told: int = 0  # of source.failures, those already reported


class _Session:
    """One opened source with its thread; the player starts a new one for every source."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.alive = True
        self.thread: threading.Thread | None = None
        #: The recognition epoch of its frames (see :meth:`QtRecognition.submit`); renewed at each seek.
        self.epoch = -1


class QtPlayer(QObject):
    """Plays a source: open, play/pause, step, seek, speed, loop, record, snapshot.

    All methods are called from the GUI thread and return at once; opening and reading happen
    on the playback thread, and problems come back as the ``failed`` signal.

    Args:
        recognition: The recognition thread the frames go to.

    Signals:
        opened(object): A :class:`SourceInfo` once the source opened.
        frameReady(): A new frame waits in :meth:`take_frame` (sent once until it is taken).
        playingChanged(bool): Playback started or paused (also at the end of a file).
        failed(str): Opening or reading failed, or recording could not go on.
        skipped(str): Why an image of a folder could not be read; the next one is shown instead.
        recordingChanged(object): The file being recorded, or ``None`` when recording stopped.
    """

    opened = pyqtSignal(object)
    frameReady = pyqtSignal()
    playingChanged = pyqtSignal(bool)
    failed = pyqtSignal(str)
    skipped = pyqtSignal(str)
    recordingChanged = pyqtSignal(object)
    #: (session, signal name, arguments) from the playback thread: see :meth:`_tell`.
    _fromSession = pyqtSignal(object, str, tuple)

    def __init__(self, recognition: QtRecognition, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.recognition = recognition
        self.overlay = OverlayOptions()
        self.speed = 1.0
        self.loop = False
        self.every_frame = False
        self.info: SourceInfo | None = None
        #: Frames read but not shown, to keep real time (for the fps measurement).
        self.frames_skipped = 0
        self._cond = threading.Condition()
        self._session: _Session | None = None
        self._playing = False
        self._steps = 0
        self._seek_to: int | None = None
        self._back_from: int | None = None  # the frame a step back left, while that seek is pending
        self._at_end = False
        self._redraw = False
        self._idle = False
        self._version = 0
        self._position = -1
        self._fromSession.connect(self._relay)
        self._frames_lock = threading.Lock()
        self._buffers: list[np.ndarray] = []
        self._writing: list[int] = []
        self._pending: ShownFrame | None = None
        self._held: ShownFrame | None = None
        self._record_lock = threading.Lock()
        self._recorder: VideoSink | None = None
        self._record_path: Path | None = None

    # -- commands (GUI thread) ------------------------------------------------------------

    @property
    def playing(self) -> bool:
        return self._playing

    @property
    def idle(self) -> bool:
        """The playback thread waits for play, a step or a seek (paused, or at the end)."""
        return self._idle

    @property
    def position(self) -> int:
        """Index of the frame shown last (-1 before the first)."""
        return self._position

    @property
    def on_screen(self) -> ShownFrame | None:
        """The frame the view shows (the last one taken), if any."""
        return self._held

    def open(self, spec: str) -> None:
        """Close the current source, open ``spec`` (see :func:`~signcam.sources.open_source`) and play it."""
        self.close()
        session = _Session(str(spec))
        with self._cond:
            self._session = session
            self._playing, self._steps, self._seek_to, self._back_from, self._position = True, 0, None, None, -1
            self._at_end = self._redraw = False
            self._version += 1
        session.thread = threading.Thread(target=self._run, args=(session,), name="signcam-playback", daemon=True)
        session.thread.start()
        self.playingChanged.emit(True)

    def close(self, timeout: float = 0.0) -> None:
        """Stop the current source (its thread ends on its own; ``timeout`` > 0 waits for it).

        A recording still going is finished; whoever needs to tell the user whether it could be
        finished whole stops it first (:meth:`stop_recording`).
        """
        try:
            self.stop_recording()
        except SignCamError as exc:
            log.error("error: %s", exc)
        with self._cond:
            session, self._session = self._session, None
            if session is not None:
                session.alive = False
            was_playing, self._playing = self._playing, False
            self._cond.notify_all()
        self.info = None
        with self._frames_lock:
            self._held = None  # the view is cleared for the next source: a snapshot would save the last one's
        self.recognition.reset()
        if was_playing:
            self.playingChanged.emit(False)
        if session is not None and session.thread is not None and timeout > 0:
            session.thread.join(timeout)

    def _command(self, **changes: object) -> None:
        with self._cond:
            for name, value in changes.items():
                setattr(self, name, value)
            self._version += 1
            self._cond.notify_all()

    def play(self) -> None:
        if self.info is not None and not self._playing:
            # At the end of a file, play starts it over.
            self._command(_playing=True, _at_end=False, _seek_to=0 if self._at_end else self._seek_to)
            self.playingChanged.emit(True)

    def pause(self) -> None:
        if self._playing:
            self._command(_playing=False)
            self.playingChanged.emit(False)

    def toggle_play(self) -> None:
        self.pause() if self._playing else self.play()

    def step(self, delta: int = 1) -> None:
        """Pause and show the next (``delta`` > 0) or an earlier frame."""
        self.pause()
        if delta > 0:
            self._command(_steps=self._steps + delta)
        elif self.info is not None and not self.info.is_live:
            self.seek(self._position + delta, back_from=self._position)

    def seek(self, index: int, back_from: int | None = None) -> None:
        """Go to frame ``index`` (files and image folders); when paused, show it.

        ``back_from``: the frame a step back leaves; an image that cannot be read is then
        passed over backwards (read forwards, it would lead back to where the step began).
        """
        if self.info is None or self.info.is_live:
            return
        last = (self.info.frame_count or index + 1) - 1
        self._command(_seek_to=min(max(int(index), 0), last), _back_from=back_from, _at_end=False)

    def set_speed(self, speed: float) -> None:
        self._command(speed=float(speed))

    def set_overlay(self, **options: bool) -> None:
        """Change what is drawn (``show_boxes``, ``show_labels``, ``show_rejected``); a paused frame is redrawn."""
        self._command(overlay=OverlayOptions(**{**self.overlay.__dict__, **options}), _redraw=not self._playing)

    def take_frame(self) -> ShownFrame | None:
        """The newest published frame, if one came since the last call; it stays valid until the next."""
        with self._frames_lock:
            shown, self._pending = self._pending, None
            if shown is not None and shown.session is not self._session:
                return None  # the last frame of a source closed since: the next one is opening
            if shown is not None:
                self._held = shown
        return shown

    # -- recording and snapshots ----------------------------------------------------------

    @property
    def recording(self) -> Path | None:
        return self._record_path

    def start_recording(self, path: str | Path) -> None:
        """Record the annotated frames to ``path`` from the next frame on (until :meth:`stop_recording`).

        Raises:
            SignCamError: nothing is open, or the file type cannot be written.
        """
        if self.info is None:
            raise SignCamError("open a video or camera before recording")
        sink = VideoSink(path, fps=self.info.fps)
        with self._record_lock:
            self._close_recorder()
            self._recorder, self._record_path = sink, Path(path)
        self.recordingChanged.emit(self._record_path)

    def stop_recording(self) -> Path | None:
        """Finish the recording (the file is complete afterwards); returns its path, if a frame was recorded.

        Raises:
            SignCamError: the file could not be finished whole (a full disk); recording has stopped.
        """
        with self._record_lock:
            path = self._record_path
            recorded = self._recorder is not None and self._recorder.frames_written > 0
            error = self._close_recorder()
        if path is not None:
            self.recordingChanged.emit(None)
        if error is not None:
            raise SignCamError(error)
        return path if recorded else None

    def _close_recorder(self) -> str | None:
        """Finish the file being recorded, if any; returns why it is not whole, if it is not."""
        recorder, self._recorder, self._record_path = self._recorder, None, None
        if recorder is None:
            return None
        try:
            recorder.close()
        except SignCamError as exc:
            return str(exc)
        return None

    def _record(self, session: _Session, image: np.ndarray, time_ms: float | None) -> None:
        with self._record_lock:
            if self._recorder is None:
                return
            try:
                self._recorder.write(image, time_ms)
                return
            except Exception as exc:  # disk full, writer died: keep what was written
                log.exception("recording failed")
                error = f"recording stopped: {user_message(exc)}"
                self._close_recorder()
        self._tell(session, "recordingChanged", None)
        self._tell(session, "failed", error)

    def _tell(self, session: _Session, signal: str, *args: object) -> None:
        """Emit ``signal`` for ``session`` from its playback thread.

        The window gets it a moment later, on its own thread, by when the user may have opened
        another source: it is then dropped, so an old source's "opened", "failed" or "paused"
        never lands on the new one.
        """
        self._fromSession.emit(session, signal, args)

    def _relay(self, session: _Session, signal: str, args: tuple) -> None:
        if session is self._session:
            getattr(self, signal).emit(*args)

    def snapshot(self, path: str | Path) -> Path:
        """Save the annotated frame on screen as an image file.

        Raises:
            SignCamError: nothing shown yet, or the file cannot be written.
        """
        shown = self.on_screen
        if shown is None:
            raise SignCamError("no frame to save yet")
        return write_image(path, shown.annotated)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop playback, finish any recording and end both threads (on quit)."""
        self.close(timeout)
        self.recognition.close(timeout)

    # -- playback thread ------------------------------------------------------------------

    def _run(self, session: _Session) -> None:
        try:
            if session.spec == "demo":  # drawn here the first time (seconds): closing the window stops it
                demo_video_path(stop=lambda: not session.alive)
            source = open_source(session.spec, realtime=False)
        except Exception as exc:  # SourceError, or OpenCV failing in its own way
            self._fail(session, user_message(exc))
            return
        try:
            info = SourceInfo(session.spec, source.description, source.is_live, source.is_stills,
                              source.fps, source.frame_count)
            with self._cond:
                if not session.alive:  # closed while it opened: what opened since keeps its recognition state
                    return
                self.info = info
                # Unrelated stills (or one frame) have nothing to track across; their signs are reported one by one.
                session.epoch = self.recognition.reset(track=source.trackable)
            self._tell(session, "opened", info)
            self._play(session, source)
        except Exception as exc:
            log.debug("playback of %s stopped", session.spec, exc_info=True)
            self._fail(session, user_message(exc))
        finally:
            source.close()

    def _reset_recognition(self, session: _Session) -> bool:
        """Start a new recognition epoch for ``session`` (sought, rewound); ``False`` if it was closed.

        A source closed while it sought must not reset the state of the one opened since.
        """
        with self._cond:
            if not session.alive:
                return False
            session.epoch = self.recognition.reset()
            return True

    def _fail(self, session: _Session, message: str) -> None:
        with self._cond:
            current = session is self._session and session.alive
            if current:
                session.alive = False
                self._playing = False
                self.info = None
        if current:
            try:
                saved = self.stop_recording()
            except SignCamError as exc:
                saved, message = None, f"{message}; {exc}"
            self._tell(session, "playingChanged", False)
            self._tell(session, "failed", f"{message} (the recording so far is in {saved})" if saved else message)

    def _play(self, session: _Session, source: FrameSource) -> None:
        """Read, pace, recognise, annotate and publish frames until the session ends."""
        state = _PlayState()
        while True:
            command = self._next_command(session, state)
            if command is None:
                return
            if command.redraw_only:
                if state.shown is not None:
                    self._show(session, *state.shown, record=False)
                continue
            if command.seek_to is not None:
                if not self._reset_recognition(session):
                    return
                self._seek(session, source, command.seek_to, catch_up=command.stepping)
                state.frame = None
                if command.back_from is not None and source.is_stills:
                    state.frame = self._read_before(source, command.seek_to, command.back_from)
            if state.frame is None:
                state.frame = source.read()
            if state.frame is not None:
                state.read_any = state.read_since_rewind = True
            if len(source.failures) > state.failures_told:  # images in a folder that could not be read
                state.failures_told = len(source.failures)
                if state.read_any:  # (a source with nothing readable at all fails below instead)
                    self._tell(session, "skipped", source.failures[-1])
            if state.frame is None:
                if not self._end_of_source(session, source, state, command.stepping):
                    return
                continue
            if not command.stepping and not source.is_live and not self._keep_pace(session, source, state):
                continue
            frame, state.frame, state.skipped = state.frame, None, 0
            result = self._recognise(session, source, frame, command.stepping)
            if session.alive:
                self._show(session, frame, result)
            state.shown = (frame, result)

    def _next_command(self, session: _Session, state: _PlayState) -> _Command | None:
        """Wait until there is something to do, and take it; ``None`` once the session is closed."""
        with self._cond:
            self._idle = True
            self._cond.wait_for(lambda: not session.alive or self._playing or self._steps
                                or self._seek_to is not None or self._redraw)
            self._idle = False
            if not session.alive:
                return None
            redraw_only = self._redraw and not (self._playing or self._steps or self._seek_to is not None)
            self._redraw = False
            seek_to, self._seek_to = self._seek_to, None
            back_from, self._back_from = self._back_from, None
            stepping = not self._playing
            if stepping and seek_to is None and not redraw_only:
                self._steps -= 1
            if state.version != self._version:  # a command came (a resume, a new speed): pace from here on
                state.version, state.clock = self._version, None
        return _Command(redraw_only, seek_to, stepping, back_from if seek_to is not None else None)

    def _end_of_source(self, session: _Session, source: FrameSource, state: _PlayState, stepping: bool) -> bool:
        """The source gave no frame: rewind (looping), stop at the end, or fail; ``False`` ends the session.

        A source that gives no frame at all is an error; a rewind that reads nothing (a one-frame
        file) stops at the end instead of rewinding forever.
        """
        if not state.read_any:
            why = f": {source.failures[-1]}" if source.failures else ""
            self._fail(session, f"no frame could be read from {source.description}{why}")
            return False
        if self.loop and not stepping and not source.is_live and state.read_since_rewind:
            state.read_since_rewind, state.clock = False, None
            source.seek(0)
            return self._reset_recognition(session)
        with self._cond:
            ended, self._playing, self._steps, self._at_end = self._playing, False, 0, True
        if source.is_live:  # a stream that ends (cameras that stop raise SourceError instead)
            self._fail(session, f"{source.description} ended")
            return False
        if ended:
            self._tell(session, "playingChanged", False)
        return True

    def _keep_pace(self, session: _Session, source: FrameSource, state: _PlayState) -> bool:
        """Hold ``state.frame`` until its time, or skip it when far behind; ``True``: show it now.

        ``False`` when the frame was skipped, or playback was paused or sought while it waited.
        """
        frame = state.frame
        assert frame is not None
        if state.clock is None:
            state.clock = (time.monotonic(), frame.time_ms)
        late = time.monotonic() - state.clock[0] - (frame.time_ms - state.clock[1]) / 1000.0 / self.speed
        # Two frame intervals of slack: a late frame is still shown after a short stall
        # (the next ones are due at once, so it catches up); only a real backlog is skipped.
        slack = 2.0 / (source.fps * self.speed)
        if late < 0:
            with self._cond:
                self._cond.wait_for(lambda v=state.version: self._version != v or not session.alive, -late)
                return self._playing and self._seek_to is None
        if late > slack and not self.every_frame and state.skipped < MAX_SKIPPED:
            state.skipped, state.frame = state.skipped + 1, None
            self.frames_skipped += 1
            return False
        if late > slack and self.every_frame:
            # Analysing every frame: fall behind the clock, never hurry to catch up.
            state.clock = (time.monotonic(), frame.time_ms)
        return True

    @staticmethod
    def _read_before(source: FrameSource, index: int, before: int) -> Frame | None:
        """The frame at ``index``, or the nearest readable one before it, as long as it comes before ``before``."""
        while True:
            frame = source.read()
            if frame is None or frame.index < before or index == 0:
                return frame
            index -= 1
            source.seek(index)

    def _recognise(self, session: _Session, source: FrameSource, frame: Frame, stepping: bool
                   ) -> FrameResult | None:
        """Stills and single steps wait for their own frame's result; playing video takes the newest."""
        if stepping or self.every_frame or source.is_stills:
            return self.recognition.process(frame, session.epoch)
        self.recognition.submit(frame, session.epoch)
        return self.recognition.latest()

    def _seek(self, session: _Session, source: FrameSource, index: int, catch_up: bool) -> None:
        """Go to frame ``index``; with ``catch_up``, first recognise the frames just before it.

        Tracking shows a sign once it has been seen in a few frames, so a frame shown paused
        right after a seek (a step back, a click on a sign in the list) would show none: the
        frames before it are recognised first, as if played up to it.
        """
        lead = min(self.recognition.frames_to_confirm, index) if catch_up else 0
        source.seek(index - lead)
        for _ in range(lead):
            frame = source.read()
            if frame is None:
                break
            self.recognition.process(frame, session.epoch)

    def _show(self, session: _Session, frame: Frame, result: FrameResult | None, record: bool = True) -> None:
        options = self.overlay
        if result is None:
            annotated = frame.image
        else:
            # The newest result is usually of an earlier frame: its tracked boxes are moved on to this one.
            detections = result.detections_at(frame.index)
            annotated = draw_overlay(frame.image, [*detections, *result.rejected], result.speed_limit,
                                     show_boxes=options.show_boxes, show_labels=options.show_labels,
                                     show_rejected=options.show_rejected)
        if record:
            info = self.info  # a camera or stream drops frames while busy: its recording is paced by their times
            self._record(session, annotated, frame.time_ms if info is not None and info.is_live else None)
        self._position = frame.index
        self._publish(annotated, frame, session)

    def _publish(self, annotated: np.ndarray, frame: Frame, session: _Session) -> None:
        """Convert to RGB32 into a free buffer (one is shown, one waits, one is being written)."""
        height, width = annotated.shape[:2]
        with self._frames_lock:
            if not self._buffers or self._buffers[0].shape[:2] != (height, width):
                self._buffers = []
            busy = {id(shown.buffer) for shown in (self._held, self._pending) if shown is not None}
            buffer = next((b for b in self._buffers if id(b) not in busy and id(b) not in self._writing), None)
            if buffer is None:  # three once playing; a fourth only while an old session winds down
                buffer = np.empty((height, width, 4), np.uint8)
                self._buffers.append(buffer)
            self._writing.append(id(buffer))
        cv2.cvtColor(annotated, cv2.COLOR_BGR2BGRA, dst=buffer)
        image = QImage(buffer.data, width, height, width * 4, QImage.Format.Format_RGB32)
        shown = ShownFrame(image, annotated, frame.index, frame.time_ms, buffer, session)
        with self._frames_lock:
            self._writing.remove(id(buffer))
            notify, self._pending = self._pending is None, shown
        if notify:
            self.frameReady.emit()
