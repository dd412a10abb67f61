"""Starting the app: the real engine on a demo clip, model errors, the error hook, --measure-fps, a real screen."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from signcam._qt.qt_app import QtErrorReporter, QtSignalCloser, load_engine
from signcam.classifier import DEFAULT_MODEL
from signcam.demo import DemoClip, write_demo_video
from signcam.pipeline import DEFAULT_SCAN_EVERY
from signcam.sinks import VideoSink

needs_model = pytest.mark.skipif(not DEFAULT_MODEL.is_file(), reason=f"{DEFAULT_MODEL} not built yet")


@pytest.fixture(scope="module")
def demo_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short demo clip (a 50 limit, then a stop sign), small enough to recognise in real time."""
    return write_demo_video(tmp_path_factory.mktemp("demo") / "demo.mp4", DemoClip(size=(640, 360), signs=(2, 14)))


@needs_model
def test_real_engine_recognises_the_demo(qtbot, make_window, demo_clip):
    engine, error = load_engine()
    assert error is None
    window = make_window(engine=engine)
    window.open_source(str(demo_clip))
    qtbot.waitUntil(lambda: any(e.class_id == 2 for e in window.panel.events), timeout=20_000)
    qtbot.waitUntil(lambda: window.panel.speed_limit.limit == 50, timeout=5_000)
    assert window.recognition.processed > 0 and window.last_error is None


@pytest.mark.parametrize("content, message", [(None, "model file not found"), (b"not onnx", "cannot load model")])
def test_model_errors_leave_recognition_off(tmp_path, content, message):
    path = tmp_path / "model.onnx"
    if content is not None:
        path.write_bytes(content)
    engine, error = load_engine(str(path))
    assert engine is None and message in error


def test_uncaught_exceptions_are_shown_not_fatal(qtbot, window):
    reporter = QtErrorReporter(window)
    reporter.reported.connect(window.show_error)
    previous = sys.excepthook
    reporter.install()
    try:
        sys.excepthook(ValueError, ValueError("boom"), None)
    finally:
        reporter.uninstall()
    assert sys.excepthook is previous
    qtbot.waitUntil(lambda: window.last_error is not None)
    assert window.last_error == "unexpected error (ValueError: boom)"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """``signcam ARGS`` in a fresh process (the app owns its QApplication), offscreen."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    return subprocess.run([sys.executable, "-m", "signcam", *args], env=env, capture_output=True, text=True,
                          timeout=60)


@needs_model
def test_measure_fps_prints_the_displayed_rate(clip):
    done = run_cli("app", "--source", str(clip), "--measure-fps", "1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("displayed ") and "frames/s" in done.stdout and str(clip) in done.stdout


@pytest.mark.parametrize("args, message", [
    (["--source", "missing.mp4", "--measure-fps", "1"], "no such file"),
    (["--measure-fps", "1"], "--measure-fps needs --source"),
    (["--source", "demo", "--measure-fps", "nan"], "--measure-fps: must be more than 0, got nan"),
    (["--source", "demo", "--measure-fps", "inf"], "--measure-fps: must be at most 86400 s (a day), got inf"),
])
def test_measure_fps_errors(args, message):
    done = run_cli("app", *args)
    assert done.returncode == 2
    assert done.stderr.count(message) == 1 and "Traceback" not in done.stderr


@needs_model
def test_measure_fps_on_a_video_that_breaks_off_reports_the_rate_until_then_and_fails(tmp_path):
    broken = tmp_path / "broken.avi"
    with VideoSink(broken, fps=25.0) as video:
        for index in range(100):
            video.write(np.full((240, 320, 3), index * 2, np.uint8))
    broken.write_bytes(broken.read_bytes()[: broken.stat().st_size // 2])
    done = run_cli("app", "--source", str(broken), "--measure-fps", "20")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "stopped after" in done.stderr and done.stdout.startswith("displayed ")
    seconds = float(done.stdout.split(" over ")[1].split(" s")[0])
    assert seconds < 10  # measured until the video broke off, not over the whole 20 s


@needs_model
def test_measure_fps_on_a_one_frame_video_shows_it_and_succeeds(tmp_path):
    one = tmp_path / "one.avi"
    with VideoSink(one, fps=25.0) as video:
        video.write(np.full((240, 320, 3), 90, np.uint8))
    done = run_cli("app", "--source", str(one), "--measure-fps", "1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("displayed ") and "no frame could be read" not in done.stderr


@pytest.mark.parametrize(("flag", "what"), [("--model", "model"), ("--detector", "detector"),
                                           ("--coarse-detector", "detector")])
def test_a_network_named_explicitly_that_cannot_load_is_one_line_and_exit_2(tmp_path, clip, flag, what):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    done = run_cli("app", "--source", str(clip), flag, str(bad), "--measure-fps", "1")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith(f"signcam: error: cannot load {what} {bad}") and done.stderr.count("\n") == 1


def wait_until_reading(process: subprocess.Popen, path: Path, timeout_s: float = 30.0) -> None:
    """Until ``process`` has ``path`` open (Linux's /proc lists what a process has open)."""
    deadline = time.monotonic() + timeout_s
    fds = Path(f"/proc/{process.pid}/fd")
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(OSError):  # a descriptor closed while listed
            if any(os.readlink(fd) == os.path.realpath(path) for fd in fds.iterdir()):
                return
        time.sleep(0.05)
    pytest.fail(f"the app did not open {path} within {timeout_s:g} s")


@needs_model
@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux's /proc to see when the app is reading")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_and_sigterm_close_the_window_cleanly(clip, sig):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    app = subprocess.Popen([sys.executable, "-m", "signcam", "app", "--source", str(clip), "--measure-fps", "60"],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_until_reading(app, clip)  # the window is up, its signal handlers set, the clip playing
    app.send_signal(sig)
    out, err = app.communicate(timeout=30)
    assert app.returncode == 128 + sig, err
    assert f"{signal.Signals(sig).name}: closing" in err and "Traceback" not in err and "unexpected" not in err
    assert out == ""  # closed before the measurement ended: no rate printed


def test_a_signal_closes_the_window_without_asking_anything(qtbot, window):
    """No one may be at the window: a dialog on the way out (a recording that failed) would keep it open."""
    window.show()
    closer = QtSignalCloser(window)
    closer._on_signal(signal.SIGTERM, None)  # as Python calls it when the signal comes
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=5_000)
    assert window.unattended and closer.status == 128 + signal.SIGTERM


SCREENSHOT_SCRIPT = textwrap.dedent("""
    import sys
    from PyQt6.QtCore import QSettings, QTimer
    from PyQt6.QtWidgets import QApplication
    from qt_testing import FakeRecognizer
    from signcam._qt.qt_main_window import QtMainWindow
    from signcam._qt.qt_settings import QtAppSettings
    from signcam.pipeline import Engine

    clip, settings_file, shot = sys.argv[1:]
    app = QApplication([])
    window = QtMainWindow(Engine(FakeRecognizer()), QtAppSettings(QSettings(settings_file, QSettings.Format.IniFormat)))
    window.resize(1200, 700)
    window.show()
    window.open_source(clip)

    def grab():
        if window.panel.events:
            window.screen().grabWindow(0).save(shot)
            app.quit()

    QTimer(window, interval=100, timeout=grab).start()
    QTimer.singleShot(20_000, app.quit)
    app.exec()
    window.close()
""")


@pytest.fixture
def xvfb_display():
    """A real X server (Xvfb) for the test, or a skip when it is not installed."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (apt-get install xvfb libxcb-cursor0 ...)")
    read, write = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                              pass_fds=(write,), stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as pipe:
        display = pipe.readline().strip()
    try:
        yield f":{display}"
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_screenshot_under_a_real_x_server(xvfb_display, clip, tmp_path):
    shot = tmp_path / "window.png"
    env = {**os.environ, "DISPLAY": xvfb_display, "QT_QPA_PLATFORM": "xcb",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", SCREENSHOT_SCRIPT, str(clip), str(tmp_path / "s.ini"), str(shot)],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    image = cv2.imread(str(shot))
    assert image is not None, f"no screenshot; stderr: {done.stderr}"
    assert image.shape == (800, 1280, 3)
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 100  # a window with video, not a blank screen


@needs_model
def test_load_engine_passes_the_scan_interval():
    engine, error = load_engine(scan_every=1)
    assert error is None and engine.scan_every == 1
    assert load_engine()[0].scan_every == DEFAULT_SCAN_EVERY
