"""The recognition thread: the engine runs on the newest frame it was given, off the GUI thread.

It skips the frames that arrived while it was busy, so when recognition is slower than the
video, the video stays smooth and recognition drops frames instead of lagging behind. Each
reset (a new source, a seek) starts an epoch; frames and results of an earlier one are dropped.

Example:
    >>> recognition = QtRecognition(Engine())
    >>> epoch = recognition.reset(track=True)      # a new source
    >>> recognition.submit(frame, epoch)           # the newest frame; or process() to wait for it
"""

from __future__ import annotations

import logging
import threading
import time

from PyQt6.QtCore import QObject, pyqtSignal

from signcam.errors import user_message
from signcam.pipeline import Engine, FrameResult
from signcam.sources import Frame

__all__ = ["QtRecognition"]

log = logging.getLogger(__name__)


class QtRecognition(QObject):
    """Runs ``engine.process`` on its own thread, always on the newest frame submitted.

    Args:
        engine: The engine; ``None`` plays video without recognition (e.g. the model is missing).

    Signals:
        eventsFound(list, int): New :class:`~signcam.road.SignEvent` s and the epoch (it grows
            at every :meth:`reset`, so a sign found again after a seek can be told apart).
        speedLimitChanged(object, int): The speed limit in force, km/h or ``None``, and its
            epoch: one of an earlier epoch can arrive after a reset, and is out of date.
        failed(str): The engine raised; recognition goes on with the next frame.
    """

    eventsFound = pyqtSignal(list, int)
    speedLimitChanged = pyqtSignal(object, int)
    failed = pyqtSignal(str)

    def __init__(self, engine: Engine | None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.engine = engine
        #: Milliseconds per frame, a running average (frames searched whole take several times
        #: longer than those searched only around tracked signs), and frames processed so far.
        self.latency_ms = 0.0
        self.processed = 0
        self._cond = threading.Condition()
        self._pending: tuple[Frame, int] | None = None
        self._current: Frame | None = None
        self._done: Frame | None = None
        self._latest: FrameResult | None = None
        self._epoch = 0
        self._reset_due = False
        self._track_due: bool | None = None
        self._speed_limit: tuple[int | None, int] = (None, 0)  # the last one told, with its epoch
        self._error: str | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="signcam-recognition", daemon=True)
        self._thread.start()

    @property
    def epoch(self) -> int:
        return self._epoch

    def submit(self, frame: Frame, epoch: int) -> None:
        """Recognise ``frame`` when the thread is free; a frame still waiting is dropped.

        ``epoch`` is the one :meth:`reset` returned for the frame's source (or its last seek):
        a frame read before a later reset, such as the last one of a source just closed, is
        dropped too.
        """
        if self.engine is None:
            return
        with self._cond:
            if epoch == self._epoch:
                self._pending = (frame, epoch)
                self._cond.notify_all()

    def process(self, frame: Frame, epoch: int) -> FrameResult | None:
        """Recognise ``frame`` and wait for its result (``None`` if it failed or ``epoch`` is past)."""
        if self.engine is None:
            return None
        with self._cond:
            if epoch != self._epoch:
                return None
            self._pending = (frame, epoch)
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._closed or self._epoch != epoch or self._done is frame
                                or (self._current is not frame and self._pending is not None
                                    and self._pending[0] is not frame))
            latest = self._latest
        return latest if latest is not None and latest.frame is frame else None

    @property
    def frames_to_confirm(self) -> int:
        """See :attr:`Engine.frames_to_confirm` (0 without an engine)."""
        return self.engine.frames_to_confirm if self.engine is not None else 0

    def set_conf(self, conf: float) -> None:
        """The acceptance threshold from the next frame on (see :attr:`Engine.conf`)."""
        if self.engine is not None:
            self.engine.conf = conf

    def latest(self) -> FrameResult | None:
        """The newest result since the last reset."""
        return self._latest

    def reset(self, track: bool | None = None) -> int:
        """Forget tracks, road state and results (seek, new source); frames in flight are discarded.

        Args:
            track: For a new source, whether to track signs across its frames (not across
                unrelated stills); applied on the recognition thread, between two frames.

        Returns:
            The new epoch, for the frames read from now on (see :meth:`submit`).
        """
        with self._cond:
            self._epoch += 1
            epoch = self._epoch
            self._pending = None
            self._latest = None
            self._reset_due = True
            if track is not None:
                self._track_due = track
            self._error = None
            self._cond.notify_all()
        self._tell_speed_limit(None, epoch)
        return epoch

    def close(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)

    def _tell_speed_limit(self, limit: int | None, epoch: int) -> None:
        with self._cond:
            if (limit, epoch) == self._speed_limit or epoch != self._epoch:
                return
            self._speed_limit = (limit, epoch)
        self.speedLimitChanged.emit(limit, epoch)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._closed or self._pending is not None)
                if self._closed:
                    return
                assert self._pending is not None
                (frame, epoch), self._pending = self._pending, None
                reset, self._reset_due = self._reset_due, False
                track, self._track_due = self._track_due, None
                self._current = frame
            result, error = None, None
            start = time.perf_counter()
            try:
                if reset:
                    self.engine.reset(track)
                result = self.engine.process(frame)
            except Exception as exc:  # a broken model or a bug must not stop the video
                error = user_message(exc)
                if error != self._error:  # the same failure on every frame is told once
                    log.exception("recognition failed on frame %s", frame.index)
            with self._cond:
                self._current, self._done = None, frame
                current = epoch == self._epoch
                if current and result is not None:
                    self._latest = result
                    took_ms = (time.perf_counter() - start) * 1000.0
                    self.latency_ms = took_ms if not self.processed else 0.9 * self.latency_ms + 0.1 * took_ms
                    self.processed += 1
                self._cond.notify_all()
            if error is not None and error != self._error:
                self._error = error
                self.failed.emit(f"recognition failed: {error}")
            elif current and result is not None:
                if result.events:
                    self.eventsFound.emit(list(result.events), epoch)
                self._tell_speed_limit(result.speed_limit, epoch)
