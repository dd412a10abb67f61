"""Where results go: JSON Lines per frame, annotated video or images, and sign-event exports.

Sinks are context managers: what was written stays valid and the file is closed even when
the input breaks half-way.

Example:
    >>> with JSONLinesSink("signs.jsonl") as sink:      # doctest: +SKIP
    ...     for frame in source:
    ...         sink.append(engine.process(frame))
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import cv2
import numpy as np

from signcam.errors import SignCamError
from signcam.files import check_writable, make_folder, write_text_whole
from signcam.road import SignEvent
from signcam.sources import text_or_bytes  # importing sources quiets OpenCV's own logging

if TYPE_CHECKING:
    from signcam.pipeline import FrameResult

__all__ = [
    "JSONLinesSink",
    "VideoSink",
    "ImageFolderSink",
    "write_image",
    "MAX_GAP_S",
    "VIDEO_CODECS",
    "frame_record",
    "events_csv",
    "write_events_csv",
    "write_events_json",
    "write_events",
    "check_events_path",
    "EVENT_FORMATS",
]

#: FourCC per container; there is no H.264 encoder in OpenCV's wheels, so MPEG-4 part 2 / MJPEG.
VIDEO_CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".mkv": "mp4v", ".avi": "MJPG"}
_BOX_COLUMNS = ("x1", "y1", "x2", "y2")


def frame_record(result: FrameResult) -> dict[str, Any]:
    """The JSON object of one processed frame (one line of :class:`JSONLinesSink`)."""
    frame = result.frame
    height, width = frame.image.shape[:2]
    return {"source": frame.source, "frame": int(frame.index), "time_ms": round(float(frame.time_ms), 3),
            "width": int(width), "height": int(height),
            "detections": [detection.to_json() for detection in result.detections]}


class JSONLinesSink:
    """One JSON object per line, written and flushed line by line: a frame's results, or any record.

    Args:
        path: Output file, or ``"-"`` for standard output.

    Raises:
        SignCamError: the file cannot be created.

    Example:
        >>> with JSONLinesSink("-") as sink:               # doctest: +SKIP
        ...     sink.append(result)
        {"source": "drive.mp4", "frame": 0, "time_ms": 0.0, "width": 1280, "height": 720, "detections": []}
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)
        self._file: TextIO | None = None

    def __enter__(self) -> JSONLinesSink:
        if self.path == "-":
            if sys.stdout is None:  # started with standard output closed (`>&-`)
                raise SignCamError("cannot write JSON Lines to standard output: it is closed")
            self._file = sys.stdout
        else:
            try:
                self._file = open(self.path, "w", encoding="utf-8")  # closed in __exit__
            except OSError as exc:
                raise SignCamError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        return self

    def append(self, result: FrameResult) -> None:
        """Write one frame's line (:func:`frame_record`)."""
        self.write(frame_record(result))

    def write(self, record: dict[str, Any]) -> None:
        """Write one object's line and flush it, so a crash later leaves valid JSON Lines."""
        assert self._file is not None, "use JSONLinesSink as a context manager"
        try:
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()
        except BrokenPipeError:
            raise  # the reader of stdout went away: the caller decides (detect stops quietly)
        except OSError as exc:  # e.g. the disk is full
            raise SignCamError(f"cannot write {self.path}: {exc.strerror or exc}") from None

    def __exit__(self, *exc_info: object) -> None:
        if self._file is not None and self._file is not sys.stdout:
            # Every line was flushed as written, so a failure here repeats one write() reported.
            with contextlib.suppress(OSError):
                self._file.close()
        self._file = None


def _letterbox(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Fit ``image`` into ``size`` (width, height) keeping its aspect ratio, black bars around."""
    width, height = size
    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return image
    scale = min(width / w, height / h)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    canvas = np.zeros((height, width, 3), np.uint8)
    top, left = (height - new_h) // 2, (width - new_w) // 2
    canvas[top:top + new_h, left:left + new_w] = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)
    return canvas


#: Most seconds of a live source's video filled with the frame before a gap (a stall, a frame dropped).
MAX_GAP_S = 2.0


class VideoSink:
    """An annotated video written with ``cv2.VideoWriter``; always released on exit.

    Args:
        path: Output file; its suffix picks the codec (see :data:`VIDEO_CODECS`).
        fps: Frame rate of the output.
        size: ``(width, height)``; ``None`` takes the first image's. Images of another size
            are scaled into it with black bars.
        fourcc: The codec's FourCC instead of the suffix's (e.g. ``"VP90"`` for a ``.webm``).

    Raises:
        SignCamError: unsupported suffix, the writer cannot be opened, or (on closing) the file
            was not written whole.

    Example:
        >>> with VideoSink("annotated.mp4", fps=25.0, size=(1280, 720)) as video:  # doctest: +SKIP
        ...     video.write(draw_overlay(frame.image, result.detections))
    """

    def __init__(self, path: str | os.PathLike, fps: float, size: tuple[int, int] | None = None,
                 fourcc: str | None = None) -> None:
        self.path = Path(path)
        self.fourcc = fourcc or VIDEO_CODECS.get(self.path.suffix.lower())
        if self.fourcc is None:
            raise SignCamError(f"cannot write video {self.path}: use one of {', '.join(VIDEO_CODECS)}")
        self.fps = float(fps)
        self.size = size
        self.frames_written = 0
        self._writer: cv2.VideoWriter | None = None
        self._last: np.ndarray | None = None  # the frame written last, repeated to fill a live source's gaps
        self._start_ms: float | None = None
        if size is not None:
            self._open(size)

    def _open(self, size: tuple[int, int]) -> None:
        self.size = size
        self._writer = cv2.VideoWriter(text_or_bytes(self.path), cv2.VideoWriter_fourcc(*self.fourcc), self.fps, size)
        if not self._writer.isOpened():
            self._writer = None
            reason = "its folder does not exist" if not self.path.parent.is_dir() else "the writer did not open"
            raise SignCamError(f"cannot write video {self.path}: {reason}")

    def write(self, image: np.ndarray, time_ms: float | None = None) -> None:
        """Append one BGR frame.

        Args:
            image: The frame.
            time_ms: Its time, for a camera or stream, whose frames come when they come and are
                dropped while the reader is busy: the frame before is repeated to fill the time
                since, so the video plays at the pace it was filmed. A longer gap than
                ``MAX_GAP_S`` (a pause, a stall) is cut to it.
        """
        if self._writer is None:
            self._open((image.shape[1], image.shape[0]))
        assert self._writer is not None and self.size is not None
        if time_ms is not None and self._last is not None and self._start_ms is not None:
            gap = round((time_ms - self._start_ms) * self.fps / 1000.0) - self.frames_written
            most = round(MAX_GAP_S * self.fps)
            if gap > most:  # a pause or a long stall: held for MAX_GAP_S, the rest of it left out
                self._start_ms += (gap - most) * 1000.0 / self.fps
                gap = most
            for _ in range(gap):
                self._writer.write(self._last)
                self.frames_written += 1
        elif time_ms is not None:
            self._start_ms = time_ms
        self._last = _letterbox(image, self.size)
        self._writer.write(self._last)
        self.frames_written += 1

    def close(self) -> None:
        """Finish the file, then read its last frame back: ``cv2.VideoWriter`` reports no failed write,
        so a disk that filled up would otherwise leave, unnoticed, a video that does not play.

        Raises:
            SignCamError: the file was not written whole (a full disk), or was removed.
        """
        if self._writer is None:
            return
        self._writer.release()
        self._writer = None
        if self.frames_written and not _holds_frames(self.path, self.frames_written):
            raise SignCamError(f"cannot finish the video {self.path}: it was not written whole (is the disk full?)")

    def __enter__(self) -> VideoSink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _holds_frames(path: Path, count: int) -> bool:
    """Whether the video at ``path`` opens, says it has ``count`` frames or more, and its last one reads.

    One seek and one read (milliseconds; a few hundred for a long HD video). A cut MP4 lacks
    its index and does not open; an AVI whose header was not completed says 0 frames (and
    seeking in it lands anywhere); one cut after it says all of them but stops short.
    """
    capture = cv2.VideoCapture(text_or_bytes(path))
    try:
        if not capture.isOpened() or capture.get(cv2.CAP_PROP_FRAME_COUNT) < count:
            return False
        capture.set(cv2.CAP_PROP_POS_FRAMES, count - 1)
        return bool(capture.read()[0])
    finally:
        capture.release()


def write_image(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Save a BGR image in the format its suffix names (``.jpg``, ``.png``...); any file name works.

    Raises:
        SignCamError: the suffix names no format OpenCV writes, or the file cannot be written.
    """
    path = Path(path)
    try:
        encoded, data = cv2.imencode(path.suffix, image)
    except cv2.error:
        encoded = False
    if not encoded:
        raise SignCamError(f"cannot write image {path}: '{path.suffix}' is not an image format OpenCV writes")
    try:
        data.tofile(path)  # unlike cv2.imwrite, handles any path encoding
    except OSError as exc:
        raise SignCamError(f"cannot write image {path}: {exc.strerror or exc}") from None
    return path


class ImageFolderSink:
    """Annotated frames saved as image files into a folder (created if missing), in the format of each name's suffix.

    Args:
        folder: Output folder.

    Example:
        >>> with ImageFolderSink("annotated") as out:      # doctest: +SKIP
        ...     out.write(image, "00001.jpg")
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = make_folder(folder)
        self.frames_written = 0
        self._written: set[str] = set()

    def write(self, image: np.ndarray, name: str) -> Path:
        """Save ``image`` as ``folder/name``, or ``name-2``, ``-3``... when this sink already wrote that name
        (stills of the same name from different folders); returns the path written."""
        path = self.folder / name
        count = 1
        while path.name in self._written:
            count += 1
            path = self.folder / f"{Path(name).stem}-{count}{Path(name).suffix}"
        write_image(path, image)
        self._written.add(path.name)
        self.frames_written += 1
        return path

    def __enter__(self) -> ImageFolderSink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Nothing stays open between images."""


def events_csv(events: Iterable[SignEvent]) -> str:
    """Sign events as CSV text, one row each, the box as ``x1,y1,x2,y2`` columns."""
    columns = [f.name for f in dataclasses.fields(SignEvent) if f.name != "box"] + list(_BOX_COLUMNS)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for event in events:
        record = event.to_json()
        record.update(zip(_BOX_COLUMNS, record.pop("box"), strict=True))
        writer.writerow(record)
    return buffer.getvalue()


def write_events_csv(events: Iterable[SignEvent], path: str | os.PathLike) -> None:
    """Save sign events as CSV (:func:`events_csv`).

    Example:
        >>> write_events_csv(road_events, "signs.csv")     # doctest: +SKIP
    """
    write_text_whole(path, events_csv(events))


def write_events_json(events: Iterable[SignEvent], path: str | os.PathLike) -> None:
    """Save sign events as one JSON list of objects.

    Example:
        >>> write_events_json(road_events, "signs.json")   # doctest: +SKIP
    """
    write_text_whole(path, json.dumps([event.to_json() for event in events], indent=1) + "\n")


#: Sign-event files by suffix.
EVENT_FORMATS = {".csv": write_events_csv, ".json": write_events_json}


def check_events_path(path: str | os.PathLike) -> Path:
    """``path`` if sign events can be written there: a known suffix, in a folder that exists, or
    ``-`` (CSV on standard output).

    Raises:
        SignCamError: another suffix, or no such folder.
    """
    path = Path(path)
    if str(path) == "-":
        return path
    if path.suffix.lower() not in EVENT_FORMATS:
        raise SignCamError(f"cannot write sign events to {path}: use a .csv or .json file")
    return check_writable(path)


def write_events(events: Iterable[SignEvent], path: str | os.PathLike) -> Path:
    """Save sign events as CSV or JSON, by the file's suffix; ``-``: CSV on standard output.

    Raises:
        SignCamError: another suffix, or the file cannot be written.

    Example:
        >>> write_events(road_events, "signs.csv")          # doctest: +SKIP
    """
    path = check_events_path(path)
    if str(path) == "-":
        sys.stdout.write(events_csv(events))
        sys.stdout.flush()
    else:
        EVENT_FORMATS[path.suffix.lower()](events, path)
    return path
