"""Start the desktop app: load the engine, open the window, report unexpected errors, measure fps.

Example:
    >>> run_app(source="demo")                          # returns when the window closes
    >>> run_app(source="drive.mp4", measure_fps=10)     # prints the displayed frame rate, then quits
"""

from __future__ import annotations

import logging
import signal
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from types import TracebackType

from PyQt6.QtCore import QObject, QSettings, Qt, QTimer, pyqtSignal
from PyQt6.QtWidgets import QApplication

from signcam.errors import ModelError, SignCamError
from signcam.pipeline import DEFAULT_SCAN_EVERY, Engine

from .qt_main_window import QtMainWindow
from .qt_settings import QtAppSettings

__all__ = ["run_app", "load_engine", "QtErrorReporter", "QtFpsMeter", "QtSignalCloser"]

log = logging.getLogger("signcam")


def load_engine(model: str | None = None, scan_every: int = DEFAULT_SCAN_EVERY, detector: str | None = None,
                coarse_detector: str | None = None) -> tuple[Engine | None, str | None]:
    """The engine with these networks (default: the shipped ones), or ``None`` and why it could not load."""
    try:
        return Engine.from_model(model, scan_every=scan_every, detector=detector, coarse_detector=coarse_detector), None
    except SignCamError as exc:
        return None, str(exc)


class QtErrorReporter(QObject):
    """Routes uncaught exceptions (GUI or any thread) to the log and a message, instead of aborting.

    Signals:
        reported(str): One line about the error, delivered on the GUI thread.
    """

    reported = pyqtSignal(str)

    def install(self) -> None:
        self._previous = (sys.excepthook, threading.excepthook)
        sys.excepthook = self._hook
        threading.excepthook = lambda args: self._hook(args.exc_type, args.exc_value, args.exc_traceback)

    def uninstall(self) -> None:
        sys.excepthook, threading.excepthook = self._previous

    def _hook(self, kind: type[BaseException], exc: BaseException | None, tb: TracebackType | None) -> None:
        log.error("unexpected error:\n%s", "".join(traceback.format_exception(kind, exc, tb)).rstrip())
        message = str(exc) if isinstance(exc, SignCamError) else f"unexpected error ({kind.__name__}: {exc})"
        self.reported.emit(message)


class QtSignalCloser(QObject):
    """Ctrl-C and SIGTERM close the window as Ctrl+Q does: the recording is finished, settings saved.

    Python runs its signal handlers only between bytecodes, and Qt's event loop runs none, so a
    timer lets the interpreter look every ``POLL_MS``.

    Args:
        window: The window to close.
    """

    POLL_MS = 200

    def __init__(self, window: QtMainWindow) -> None:
        super().__init__(window)
        self.window = window
        #: 128 + the signal's number once one came (130 for Ctrl-C), as a shell reports it; else 0.
        self.status = 0
        self._previous: dict[int, object] = {}
        self._timer = QTimer(self, interval=self.POLL_MS)
        self._timer.timeout.connect(lambda: None)

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # only the main thread may set handlers
        self._previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        self._timer.start()

    def uninstall(self) -> None:
        self._timer.stop()
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def _on_signal(self, signum: int, _frame: object) -> None:
        if not self.status:
            self.status = 128 + signum
            log.warning("%s: closing", signal.Signals(signum).name)
            self.window.unattended = True
            QTimer.singleShot(0, self.window.close)


class QtFpsMeter(QObject):
    """Counts the frames the window displays for ``seconds`` after the first one, prints the rate and quits.

    Args:
        window: The window playing the source.
        seconds: How long to measure.
    """

    def __init__(self, window: QtMainWindow, seconds: float) -> None:
        super().__init__(window)
        self.window = window
        self.seconds = seconds
        self._start: tuple[float, int, int, int] | None = None
        window.player.frameReady.connect(self._on_frame)
        window.player.failed.connect(self._on_failed)

    def _on_frame(self) -> None:
        if self._start is None:
            self._start = (time.monotonic(), self.window.view.frames_shown, self.window.recognition.processed,
                           self.window.player.frames_skipped)
            QTimer.singleShot(round(self.seconds * 1000), Qt.TimerType.PreciseTimer, self._finish)

    def _finish(self, status: int = 0) -> None:
        if self.window.isHidden():  # already finished: the source failed before the timer ran out
            return
        assert self._start is not None
        start, shown, processed, skipped = self._start
        seconds = time.monotonic() - start
        recognition, player = self.window.recognition, self.window.player
        print(f"displayed {(self.window.view.frames_shown - shown) / seconds:.1f} frames/s "
              f"({player.frames_skipped - skipped} skipped to keep real time), "
              f"recognised {(recognition.processed - processed) / seconds:.1f} frames/s "
              f"({recognition.latency_ms:.0f} ms per frame) over {seconds:.1f} s"
              + (f": {player.info.description}" if player.info else ""))
        self.window.close()
        QApplication.exit(status)

    def _on_failed(self, message: str) -> None:
        # The window has logged why. Broken off half-way: the rate up to there, and a failure status.
        if self._start is None:
            self.window.close()
            QApplication.exit(2)
        else:
            self._finish(status=2)


def run_app(source: str | None = None, model: str | None = None, measure_fps: float | None = None,
            settings: QtAppSettings | None = None, scan_every: int = DEFAULT_SCAN_EVERY, detector: str | None = None,
            coarse_detector: str | None = None) -> int:
    """Open the window (on ``source``, else the last source, else the first camera) and run until it closes.

    Args:
        source: What to open (see :func:`signcam.sources.open_source`).
        model: ONNX model file; default ``assets/signnet.onnx``. If the default cannot be
            loaded the app still plays video and says why recognition is off.
        measure_fps: Play ``source`` in a loop, print the displayed frame rate after this many
            seconds and quit (settings are left untouched).
        settings: Where settings live; default: the user's.
        scan_every: Search whole frames every Nth frame (see :class:`signcam.pipeline.Engine`).
        detector, coarse_detector: Finder files in place of the shipped ones (see
            :meth:`signcam.pipeline.Engine.from_model`).

    Returns:
        The exit status: 0 when the window is closed, 128 + the signal's number when Ctrl-C or
        SIGTERM closed it (130 for Ctrl-C, as ``signcam detect``).

    Raises:
        ModelError: a network named explicitly cannot be loaded.
    """
    logging.basicConfig(level=logging.WARNING, format="signcam: %(message)s")
    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName("signcam")
    app.setOrganizationName("signcam")
    engine, model_error = load_engine(model, scan_every, detector, coarse_detector)
    if (model, detector, coarse_detector) != (None, None, None) and engine is None:
        raise ModelError(model_error)
    with tempfile.TemporaryDirectory(prefix="signcam-") as scratch:
        if measure_fps:
            settings = QtAppSettings(QSettings(str(Path(scratch) / "measure.ini"), QSettings.Format.IniFormat))
            settings.set_flag("loop", True)
        window = QtMainWindow(engine, settings, model_error)
        reporter = QtErrorReporter(window)
        reporter.reported.connect(lambda message: window.show_error(message, dialog=True))
        reporter.install()
        if measure_fps:
            QtFpsMeter(window, measure_fps)
        closer = QtSignalCloser(window)
        closer.install()
        try:
            window.show()
            window.start(source)
            status = app.exec()
            return closer.status or status
        finally:
            closer.uninstall()
            reporter.uninstall()
            window.player.shutdown()
