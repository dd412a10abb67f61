"""Open the desktop app: live video with recognised signs, a list of the signs passed and the speed limit.

Without ``--source`` it opens the last source used, else the first camera, else a start
screen to open a video, a camera, a stream, an image folder or the demo.
"""

from __future__ import annotations

import argparse
import os
import sys

from signcam.cli import add_engine_arguments, positive_float
from signcam.errors import SignCamError

__all__ = ["add_arguments", "main"]


def _no_display() -> bool:
    """True on Linux/BSD with no X or Wayland display, where Qt would abort the process."""
    if not sys.platform.startswith(("linux", "freebsd")) or os.environ.get("QT_QPA_PLATFORM"):
        return False
    return not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


#: Longest --measure-fps: a day (Qt's timers take at most about 24 days, in milliseconds).
MAX_MEASURE_S = 86_400.0


def _seconds(text: str) -> float:
    value = positive_float(text)
    if value > MAX_MEASURE_S:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_MEASURE_S:g} s (a day), got {value:g}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", metavar="SRC", help="camera index (0) or /dev/videoN, rtsp/http URL, video file, "
                                                        "image, folder of images, or 'demo' for the built-in clip")
    add_engine_arguments(parser)
    parser.add_argument("--measure-fps", type=_seconds, metavar="SECONDS",
                        help="play --source in a loop with recognition on, print the frames displayed per second "
                             "after SECONDS and quit (works offscreen: QT_QPA_PLATFORM=offscreen)")


def main(args: argparse.Namespace) -> int:
    if args.measure_fps and not args.source:
        raise SignCamError("--measure-fps needs --source")
    if _no_display():
        raise SignCamError("no display to open a window on (DISPLAY and WAYLAND_DISPLAY are unset); "
                           "run it in a desktop session, or try `signcam detect demo` without a window")
    from signcam._qt.qt_app import run_app  # Qt loads only for the app

    return run_app(source=args.source, model=args.model, measure_fps=args.measure_fps, scan_every=args.scan_every,
                   detector=args.detector, coarse_detector=args.coarse_detector)
