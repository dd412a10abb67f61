"""Where frames come from: cameras, streams, video files, images, and the demo clip.

:func:`open_source` turns what a user types into a :class:`FrameSource`. Every source is an
iterable of :class:`Frame` with ``read()`` (``None`` at the end) and ``close()``. Cameras and
network streams are read on their own thread and always hand out the newest frame, so a slow
consumer never falls behind; files are read frame by frame, or paced to their frame rate
with ``realtime=True``.

Example:
    >>> with open_source("drive.mp4") as source:        # doctest: +SKIP
    ...     for frame in source:
    ...         print(frame.index, frame.time_ms, frame.image.shape)
    0 0.0 (720, 1280, 3)
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from signcam.errors import SourceError, first_line

__all__ = [
    "Frame",
    "FrameSource",
    "VideoFileSource",
    "LiveSource",
    "ImageSource",
    "open_source",
    "open_images",
    "text_or_bytes",
    "local_path",
    "file_system_errors",
    "LIVE_TIMEOUT_S",
    "find_images",
    "open_camera",
    "find_cameras",
    "PROBED_CAMERAS",
    "IMAGE_SUFFIXES",
    "read_image",
]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".pgm", ".pbm", ".bmp", ".tif", ".tiff", ".webp")
_STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp")
#: Seconds a live source may stay silent before ``read()`` gives up on it.
LIVE_TIMEOUT_S = 10.0
#: A stream whose reader gives up after this long without a frame stalled: an error, not its end.
STALLED_S = 5.0
#: Frame rate given to image sequences, so their time stamps and output videos are one image a second.
IMAGE_FPS = 1.0


def _quiet_opencv() -> None:
    """Silence OpenCV's and FFmpeg's own warnings about bad files and missing cameras.

    signcam reports each such failure as one clear error line instead. FFmpeg reads its
    setting once, when the first video is opened or written, so this module calls this on
    import, and the other modules that do video I/O (:mod:`signcam.sinks`) import this one.
    """
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


_quiet_opencv()


@dataclass(frozen=True, eq=False)
class Frame:
    """One image from a source.

    Args:
        image: H x W x 3 uint8 BGR image.
        index: 0-based position in the source (for live sources, counts every frame captured,
            so dropped frames show as gaps).
        time_ms: Time stamp: position in a video, time since opening for a camera or stream,
            ``index * 1000 / fps`` for images.
        source: Where it came from: the file path (each image's own for image folders),
            ``camera:N`` or the stream URL.
    """

    image: np.ndarray
    index: int
    time_ms: float
    source: str


class _Capture(Protocol):
    """The part of ``cv2.VideoCapture`` a live source uses (tests pass fakes)."""

    def read(self) -> tuple[bool, np.ndarray | None]: ...

    def get(self, prop_id: int) -> float: ...

    def release(self) -> None: ...


class FrameSource:
    """Base of all sources: iteration, context manager, and the attributes callers rely on.

    Attributes:
        description: Human-readable name with size and rate where known.
        is_live: True for cameras and streams (newest frame only, no seeking).
        is_stills: True for images: unrelated stills, nothing to track across them.
        fps: Frames per second (nominal for live sources).
        frame_count: Number of frames, ``None`` when unknown (live sources).
        files: The files it reads (none for cameras and streams), so outputs can stay off them.
        failures: One message per item skipped because it could not be read (image folders).
    """

    description: str = ""
    is_live: bool = False
    is_stills: bool = False
    fps: float = 25.0
    frame_count: int | None = None
    files: tuple[Path, ...] = ()

    def __init__(self) -> None:
        self.failures: list[str] = []

    @property
    def trackable(self) -> bool:
        """Whether signs can be followed across its frames: not across unrelated stills, nor in one frame
        (a one-frame video, such as a photo saved as .mp4, could never confirm a track)."""
        return not self.is_stills and self.frame_count != 1

    def read(self) -> Frame | None:
        """The next frame, or ``None`` at the end.

        Raises:
            SourceError: the source broke off (truncated file, camera unplugged).
        """
        raise NotImplementedError

    def seek(self, index: int) -> None:
        """Continue reading at frame ``index`` (files and images only)."""
        raise SourceError(f"cannot seek in {self.description}: it is live")

    def skip(self, count: int) -> int:
        """Pass over the next ``count`` frames without handing them out (``detect --stride``).

        Returns:
            How many were passed: fewer than ``count`` at the end.

        Raises:
            SourceError: the source broke off, as :meth:`read` would.
        """
        for passed in range(count):
            if self.read() is None:
                return passed
        return count

    def close(self) -> None:
        """Release the file or device; safe to call twice."""

    def __iter__(self) -> Iterator[Frame]:
        while (frame := self.read()) is not None:
            yield frame

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _fps_or(capture: _Capture, default: float) -> float:
    fps = capture.get(cv2.CAP_PROP_FPS)
    # Containers without a rate report 0, some webcams NaN or absurd values.
    return float(fps) if 0 < fps < 1000 else default


class VideoFileSource(FrameSource):
    """A video file, read frame by frame or, with ``realtime``, paced to its frame rate.

    Args:
        path: The video file (anything FFmpeg reads: mp4, avi, mkv, mov, ...).
        realtime: Hand out frames no faster than the video's rate, skipping frames when the
            consumer is slower (playback); otherwise every frame, as fast as asked (analysis).
        name: ``Frame.source`` and description prefix; default: the path.

    Raises:
        SourceError: missing file, or not a readable video.

    Example:
        >>> source = VideoFileSource("drive.mp4")          # doctest: +SKIP
        >>> source.fps, source.frame_count
        (25.0, 250)
    """

    def __init__(self, path: str | os.PathLike, realtime: bool = False, name: str | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        if not self.path.is_file():
            raise SourceError(f"no such file: {self.path}")
        self.files = (self.path,)
        self._capture = cv2.VideoCapture(text_or_bytes(self.path))
        if not self._capture.isOpened():
            raise SourceError(f"cannot read {self.path}: not a video, or the file is damaged")
        self.name = name or str(self.path)
        self.realtime = realtime
        self.fps = _fps_or(self._capture, 25.0)
        count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count = count if count > 0 else None
        width = int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        frames = f", {self.frame_count} frames" if self.frame_count else ""
        self.description = f"{self.name} ({width}x{height}, {self.fps:.4g} fps{frames})"
        self._next = 0
        self._sought = False  # a seek since the last frame read: a failed read then says which frame
        self._restart_clock()

    def _restart_clock(self) -> None:
        self._clock_start = time.monotonic()
        self._clock_index = self._next

    def _catch_up(self) -> None:
        """Realtime: wait until the next frame is due, or skip the frames already overdue."""
        due = self._clock_start + (self._next - self._clock_index) / self.fps
        late = time.monotonic() - due
        if late < 0:
            time.sleep(-late)
            return
        # Passed over, not turned into images, so a slow consumer still sees real time.
        self.skip(int(late * self.fps))

    def _broke_off(self) -> bool:
        # Some containers estimate the count from duration x rate: allow that rounding.
        return self.frame_count is not None and self.frame_count - self._next > max(1, self.frame_count // 100)

    def _check_end(self) -> None:
        """At a frame that cannot be read: the end of the video, or a :class:`SourceError` if it broke off."""
        if self._broke_off() and self._sought:
            raise SourceError(f"{self.path}: frame {self._next} of {self.frame_count} cannot be read: "
                              "the file is truncated or damaged")
        if self._broke_off():
            raise SourceError(f"{self.path} stopped after {self._next} of {self.frame_count} frames: "
                              "the file is truncated or damaged")

    def read(self) -> Frame | None:
        if self.realtime:
            self._catch_up()
        ok, image = self._capture.read()
        if not ok:
            self._check_end()
            return None
        self._sought = False
        frame = Frame(image, self._next, self._next * 1000.0 / self.fps, self.name)
        self._next += 1
        return frame

    def skip(self, count: int) -> int:
        # grab() leaves out turning the decoded frame into an image: about half the time of
        # read() for a 1360x800 mp4v frame. No frame is read, so a seek before still counts.
        for passed in range(count):
            if not self._capture.grab():
                self._check_end()
                return passed
            self._next += 1
        return count

    def seek(self, index: int) -> None:
        last = (self.frame_count or index + 1) - 1
        self._next = min(max(int(index), 0), last)
        self._capture.set(cv2.CAP_PROP_POS_FRAMES, self._next)
        self._sought = True
        self._restart_clock()

    def close(self) -> None:
        self._capture.release()


class LiveSource(FrameSource):
    """A camera or network stream, read on its own thread; ``read()`` returns the newest frame.

    Frames the consumer was too slow to take are dropped, so there is never a growing lag.

    Args:
        capture: An opened ``cv2.VideoCapture`` (or anything with ``read``/``get``/``release``).
        name: ``Frame.source``, e.g. ``camera:0`` or the URL.
        is_camera: A camera that stops delivering is an error (unplugged); a stream that
            ends is the end of the input.
        timeout_s: How long ``read()`` waits for a frame before raising :class:`SourceError`.

    Example:
        >>> source = LiveSource(cv2.VideoCapture(0), "camera:0", is_camera=True)  # doctest: +SKIP
        >>> frame = source.read()   # the newest frame, waiting for one if none is new
    """

    is_live = True

    def __init__(self, capture: _Capture, name: str, is_camera: bool, timeout_s: float = LIVE_TIMEOUT_S) -> None:
        super().__init__()
        self.name = name
        self.description = name.replace("camera:", "camera ")
        self.fps = _fps_or(capture, 30.0)
        self._capture = capture
        self._is_camera = is_camera
        self._timeout_s = timeout_s
        self._changed = threading.Condition()
        self._latest: Frame | None = None
        self._delivered = -1
        self._captured = 0
        self._ended = False
        self._failure: str | None = None  # why the capture stopped, when it was not its end
        self._stop = threading.Event()
        self._start = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"signcam-{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            last_wait = 0.0  # how long the read that gave the newest frame waited for it
            while not self._stop.is_set():
                asked_at = time.monotonic()
                try:
                    ok, image = self._capture.read()
                except Exception as exc:  # a driver or decoder failing in its own way: reported by read()
                    self._failure = first_line(exc)
                    break
                with self._changed:
                    if not ok or image is None:
                        # A read that gives up (FFmpeg's timeout, a server closing after a pause) first
                        # hands over the frame FFmpeg still holds: the stall is then the wait for that frame.
                        silent = max(last_wait, time.monotonic() - asked_at)
                        if not self._is_camera and silent >= STALLED_S and not self._stop.is_set():
                            self._failure = f"no frame for {silent:.0f} s (the connection stalled)"
                        break
                    last_wait = time.monotonic() - asked_at
                    self._latest = Frame(image, self._captured, (time.monotonic() - self._start) * 1000.0, self.name)
                    self._captured += 1
                    self._changed.notify_all()
        finally:
            with self._changed:
                self._ended = True
                self._changed.notify_all()
            # Released here, not in close(): releasing while read() blocks on the device can crash.
            self._capture.release()

    def _has_news(self) -> bool:
        return self._ended or (self._latest is not None and self._latest.index > self._delivered)

    def read(self) -> Frame | None:
        with self._changed:
            if not self._changed.wait_for(self._has_news, timeout=self._timeout_s):
                raise SourceError(f"{self.description} sent no frame for {self._timeout_s:g} s")
            latest = self._latest
            if latest is not None and latest.index > self._delivered:
                self._delivered = latest.index
                return latest
        if self._failure is not None:
            raise SourceError(f"{self.description} failed after {self._captured} frames: {self._failure}")
        if self._stop.is_set() or not self._is_camera:
            return None
        raise SourceError(f"{self.description} stopped delivering frames after {self._captured} frames "
                          "(unplugged or in use by another program?)")

    def close(self) -> None:
        self._stop.set()
        # A stream blocked in read() may not return soon; the daemon thread then ends on its own.
        self._thread.join(timeout=2.0)


class ImageSource(FrameSource):
    """A list of image files, one frame each; unreadable images are skipped and listed in ``failures``.

    Args:
        paths: Image files in the order to read them.
        description: How to name the collection (e.g. the folder).

    Example:
        >>> source = ImageSource(sorted(Path("scenes").glob("*.jpg")), "scenes/")  # doctest: +SKIP
        >>> [frame.source for frame in source][:2]
        ['scenes/00000.jpg', 'scenes/00001.jpg']
    """

    is_stills = True
    fps = IMAGE_FPS

    def __init__(self, paths: list[Path], description: str) -> None:
        super().__init__()
        self.paths = list(paths)
        self.files = tuple(self.paths)
        self.frame_count = len(self.paths)
        self.description = description
        self._next = 0

    def read(self) -> Frame | None:
        while self._next < len(self.paths):
            index, path = self._next, self.paths[self._next]
            self._next += 1
            try:
                image = read_image(path)
            except SourceError as exc:
                self.failures.append(str(exc))
                continue
            return Frame(image, index, index * 1000.0 / self.fps, str(path))
        return None

    def skip(self, count: int) -> int:
        # Images passed over are not opened: one that cannot be read is not listed as a failure.
        passed = min(count, len(self.paths) - self._next)
        self._next += passed
        return passed

    def seek(self, index: int) -> None:
        self._next = min(max(int(index), 0), len(self.paths))


def text_or_bytes(path: str | os.PathLike) -> str | bytes:
    """``path`` as a library outside Python should get it: the text, or its bytes when it is not text.

    Python keeps the bytes of a name that is not valid UTF-8 (a Latin-1 name from an old camera
    or a zip archive) as lone surrogates: OpenCV crashes the process on those, and QSettings
    turns them into replacement marks.
    """
    name = os.fspath(path)
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(name)
    return name


def read_image(path: str | os.PathLike) -> np.ndarray:
    """A BGR uint8 image (grey and alpha images converted).

    Raises:
        SourceError: the file cannot be read or is not a complete image (a truncated JPEG
            is refused rather than read with its lower part grey).
    """
    try:
        data = np.fromfile(path, np.uint8)  # unlike cv2.imread, handles any path encoding
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror or exc}") from None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise SourceError(f"cannot read image {path}: not an image, or the file is damaged")
    return image


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


#: OpenCV takes a camera index as a C int.
_LARGEST_CAMERA_INDEX = 2**31 - 1


def open_camera(index_or_device: int | str, timeout_s: float = LIVE_TIMEOUT_S) -> LiveSource:
    """Open a camera by index (``0``) or device path (``/dev/video2``).

    Raises:
        SourceError: no such camera, or it cannot be opened.
    """
    spec = str(index_or_device)
    match = re.fullmatch(r"/dev/video(\d+)", spec)
    if match and not Path(spec).exists():
        raise SourceError(f"no camera at {spec}")
    index = int(match.group(1)) if match else int(spec)
    if index > _LARGEST_CAMERA_INDEX:  # OpenCV would refuse it with a traceback about C types
        raise SourceError(f"no camera at {spec if match else f'index {index}'}")
    capture = cv2.VideoCapture(index)
    if not capture.isOpened():
        capture.release()
        raise SourceError(f"no camera at {spec if match else f'index {index}'}")
    return LiveSource(capture, f"camera:{spec}", is_camera=True, timeout_s=timeout_s)


#: Camera indices tried when the system cannot list its cameras.
PROBED_CAMERAS = range(4)
_V4L = Path("/sys/class/video4linux")


def find_cameras() -> list[tuple[int, str]]:
    """``(OpenCV index, name)`` of the cameras present.

    On Linux from video4linux, which names them and knows which device nodes capture video
    (a UVC camera has a metadata node too, so the second camera is often ``/dev/video2``).
    Elsewhere indices ``PROBED_CAMERAS`` are tried with OpenCV and named "Camera N".
    """
    if _V4L.is_dir():
        return _v4l_cameras()
    found = []
    for index in PROBED_CAMERAS:
        capture = cv2.VideoCapture(index)
        if capture.isOpened():
            found.append((index, f"Camera {index}"))
        capture.release()
    return found


def _v4l_cameras() -> list[tuple[int, str]]:
    cameras = []
    for node in sorted(_V4L.glob("video*"), key=lambda p: int(p.name[5:]) if p.name[5:].isdigit() else -1):
        # Each UVC camera also has metadata nodes; the capture node is the one with index 0.
        index_file = node / "index"
        if index_file.is_file() and index_file.read_text().strip() != "0":
            continue
        name = (node / "name").read_text().strip() if (node / "name").is_file() else node.name
        if node.name[5:].isdigit():
            cameras.append((int(node.name[5:]), name))
    return cameras


def _open_stream(url: str, timeout_s: float = LIVE_TIMEOUT_S) -> LiveSource:
    # FFmpeg's own wait for a server that never answers is 30 s; ours is the live sources' timeout.
    wait_ms = round(timeout_s * 1000)
    capture = cv2.VideoCapture(url, cv2.CAP_FFMPEG,
                               [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, wait_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, wait_ms])
    if not capture.isOpened():
        capture.release()
        raise SourceError(f"cannot open stream {url} (no server answered within {timeout_s:g} s, it refused the "
                          "connection, or it sent no video)")
    return LiveSource(capture, url, is_camera=False, timeout_s=timeout_s)


@contextlib.contextmanager
def file_system_errors(spec: str) -> Iterator[None]:
    """The file system's refusals (no permission, a name too long) as one line naming ``spec``."""
    try:
        yield
    except OSError as exc:
        raise SourceError(f"cannot open {spec}: {exc.strerror or exc}") from None


def find_images(spec: str | os.PathLike, recursive: bool = False) -> list[Path]:
    """The image files in a folder or matching a glob, sorted.

    Args:
        spec: A folder, or a glob (``scenes/*.jpg``).
        recursive: Search a folder's subfolders too, and let ``**`` in a glob match them.

    Raises:
        SourceError: no such folder, or no image in it or matching the glob.
    """
    text = os.path.expanduser(os.fspath(spec))
    with file_system_errors(text):
        return _find_images(text, recursive)


def _find_images(text: str, recursive: bool) -> list[Path]:
    path = Path(text)
    if path.is_dir():
        images = sorted(p for p in (path.rglob("*") if recursive else path.iterdir()) if p.is_file() and _is_image(p))
        if not images:
            raise SourceError(f"no images in folder {path} (looked for {', '.join(IMAGE_SUFFIXES)})")
        return images
    if glob.has_magic(text):
        images = []
        for match in map(Path, sorted(glob.glob(text, recursive=recursive))):
            if match.is_dir() and recursive:
                images += find_images(match, recursive=True)
            elif match.is_file() and _is_image(match):
                images.append(match)
        if not images:
            raise SourceError(f"no images match {text}")
        return images
    raise SourceError(f"no such file or folder: {text}")


def open_images(specs: list[str]) -> ImageSource:
    """Several image files named one by one (as a shell expands an unquoted glob), as one still source.

    Raises:
        SourceError: one of them is missing or not an image file.
    """
    paths = [Path(spec).expanduser() for spec in specs]
    for path in paths:
        with file_system_errors(str(path)):
            if path.is_dir():
                raise SourceError(f"{path} is a folder: several inputs must all be image files "
                                  "(or name the folder alone)")
            if not path.is_file():
                raise SourceError(f"no such file: {path}")
        if not _is_image(path):
            raise SourceError(f"{path} is not an image ({', '.join(IMAGE_SUFFIXES)}): several inputs must all be "
                              "images; a video, camera or stream comes alone")
    return ImageSource(paths, f"{len(paths)} images")


def _is_camera(text: str) -> bool:
    return re.fullmatch(r"\d+|/dev/video\d+", text) is not None


def _is_stream(text: str) -> bool:
    return re.match(rf"({'|'.join(_STREAM_SCHEMES)})://", text, re.IGNORECASE) is not None


def local_path(spec: str | os.PathLike) -> Path | None:
    """The file, folder or glob a source names (a ``file://`` URL decoded, ``~`` expanded), or ``None``
    for a camera, a stream, the demo or another kind of URL (see :func:`open_source`).

    Example:
        >>> local_path("file:///videos/my%20drive.mp4"), local_path("0"), local_path("demo")
        (PosixPath('/videos/my drive.mp4'), None, None)
    """
    text = os.fspath(spec)
    if _is_camera(text) or _is_stream(text) or text == "demo":
        return None
    if text[:7].lower() == "file://":  # a path as a file manager copies it
        escaped = urllib.parse.urlparse(text).path
        if os.name == "posix":  # by its bytes: a name that is not UTF-8 stays itself
            return Path(os.fsdecode(urllib.parse.unquote_to_bytes(escaped)))
        return Path(urllib.request.url2pathname(escaped))
    if re.match(r"[a-z][a-z0-9+.-]+://", text, re.IGNORECASE):
        return None
    return Path(text).expanduser()


def open_source(spec: int | str | os.PathLike, realtime: bool | None = None) -> FrameSource:
    """Open whatever a user names as input.

    Args:
        spec: A camera index (``0``, ``"0"``) or device (``/dev/video2``); an ``rtsp://`` /
            ``http(s)://`` stream; a video file; an image file; a folder of images or a glob
            (``"scenes/*.jpg"``); or the word ``demo`` for the generated demo clip (name a
            folder called demo as ``./demo``).
        realtime: For video files, pace frames to the video's rate (playback) instead of
            reading every frame as fast as possible (the default, for analysis). Live sources
            are always real time; images ignore it.

    Raises:
        SourceError: the input does not exist or cannot be opened, with one clear message.

    Example:
        >>> source = open_source("0")          # doctest: +SKIP
        >>> source.is_live, source.description
        (True, 'camera 0')
    """
    text = os.fspath(spec) if isinstance(spec, os.PathLike) else str(spec)
    if not text.strip():  # an unset shell variable: not the current folder
        raise SourceError("no source given: name a video, images, a camera number or a stream URL")
    if isinstance(spec, int) or _is_camera(text):
        return open_camera(text)
    if _is_stream(text):
        return _open_stream(text)
    if text == "demo":
        from signcam.demo import demo_video_path  # draws with the overlay, whose sinks read sources

        return VideoFileSource(demo_video_path(), realtime=bool(realtime), name="demo")
    path = local_path(text)
    if path is None:
        raise SourceError(f"cannot open {text}: streams are read over {', '.join(_STREAM_SCHEMES)}")
    text = str(path)
    with file_system_errors(text):
        is_file = path.is_file()
        if not is_file and path.exists() and not path.is_dir():  # a pipe, /dev/stdin, a device
            raise SourceError(f"cannot read {text}: not a file or a folder (signcam reads video files, "
                              "images, cameras by number and streams by URL)")
        if is_file and not os.access(path, os.R_OK):
            raise SourceError(f"cannot read {text}: Permission denied")
    if is_file:
        if _is_image(path):
            return ImageSource([path], f"image {path}")
        return VideoFileSource(path, realtime=bool(realtime))
    images = find_images(path)
    return ImageSource(images, f"{len(images)} images {'in' if path.is_dir() else 'matching'} {path}")
