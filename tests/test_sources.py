"""Frame sources: video files, images, cameras and streams, the demo clip, and their errors."""

from __future__ import annotations

import contextlib
import http.server
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from signcam import sources
from signcam.errors import SourceError
from signcam.sources import Frame, ImageSource, LiveSource, VideoFileSource, open_source

SIZE = (96, 64)  # width, height
FOURCC = {".mp4": "mp4v", ".avi": "MJPG", ".mkv": "mp4v", ".mov": "mp4v"}


def square_x(index: int) -> int:
    """Left edge of the white square drawn into synthetic frame ``index``."""
    return 4 + 2 * index  # stays inside the 96 px frame for 40 frames


def synthetic_frame(index: int) -> np.ndarray:
    image = np.full((SIZE[1], SIZE[0], 3), 40, np.uint8)
    x = square_x(index)
    cv2.rectangle(image, (x, 20), (x + 11, 31), (255, 255, 255), -1)
    return image


def write_video(path: Path, frames: int = 20, fps: float = 10.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*FOURCC[path.suffix]), fps, SIZE)
    assert writer.isOpened()
    for i in range(frames):
        writer.write(synthetic_frame(i))
    writer.release()
    return path


def measured_x(image: np.ndarray) -> int:
    """Left edge of the bright square, from the frame itself (codecs blur, so threshold)."""
    columns = np.flatnonzero((image[:, :, 1] > 150).any(axis=0))
    return int(columns[0])


@pytest.mark.parametrize("suffix", list(FOURCC))
def test_video_file_reads_every_frame_in_order(tmp_path: Path, suffix: str) -> None:
    path = write_video(tmp_path / f"clip{suffix}", frames=20, fps=10.0)
    with open_source(str(path)) as source:
        assert isinstance(source, VideoFileSource)
        assert not source.is_live and not source.is_stills
        assert source.fps == pytest.approx(10.0)
        assert source.frame_count == 20
        assert "96x64" in source.description
        frames = list(source)
    assert [f.index for f in frames] == list(range(20))
    assert [f.time_ms for f in frames] == pytest.approx([i * 100.0 for i in range(20)])
    assert {f.source for f in frames} == {str(path)}
    assert all(f.image.shape == (64, 96, 3) and f.image.dtype == np.uint8 for f in frames)
    assert [measured_x(f.image) for f in frames] == pytest.approx([square_x(i) for i in range(20)], abs=1)


def test_seek_continues_at_the_frame_asked_for(tmp_path: Path) -> None:
    with open_source(write_video(tmp_path / "clip.avi")) as source:
        source.read()
        source.seek(12)
        frame = source.read()
        assert frame is not None and frame.index == 12
        assert measured_x(frame.image) == pytest.approx(square_x(12), abs=1)
        source.seek(0)
        assert source.read().index == 0


def test_realtime_paces_to_the_frame_rate_and_skips_when_late(tmp_path: Path) -> None:
    with open_source(write_video(tmp_path / "clip.avi", frames=40, fps=20.0), realtime=True) as source:
        start = time.monotonic()
        first_five = [source.read().index for _ in range(5)]
        assert first_five == [0, 1, 2, 3, 4]
        assert time.monotonic() - start >= 4 / 20.0 - 0.005
        time.sleep(0.5)  # a slow consumer: about 10 frames are due meanwhile
        late = source.read()
        assert late.index >= 12
        assert measured_x(late.image) == pytest.approx(square_x(late.index), abs=1)


def test_truncated_video_yields_what_it_has_then_says_where_it_stopped(tmp_path: Path) -> None:
    path = write_video(tmp_path / "clip.avi", frames=40)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # the header still promises 40 frames
    seen = []
    with open_source(path) as source, pytest.raises(SourceError, match=r"stopped after (\d+) of 40 frames") as err:
        for frame in source:
            seen.append(frame.index)
    assert 5 < len(seen) < 40
    assert f"stopped after {len(seen)} of 40" in str(err.value)
    assert seen == list(range(len(seen)))


def test_a_seek_past_where_a_truncated_video_breaks_off_names_the_frame(tmp_path: Path) -> None:
    """Not "stopped after 36 of 40 frames": fewer were there to read, and none was read since the seek."""
    path = write_video(tmp_path / "clip.avi", frames=40)
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with open_source(path) as source, pytest.raises(SourceError, match="frame 36 of 40 cannot be read: the file is"):
        source.seek(36)
        source.read()


def test_skip_passes_frames_without_reading_them_and_stops_at_the_end(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    class CountingReads:
        """The capture, counting the frames it turns into images."""

        def __init__(self, capture: cv2.VideoCapture) -> None:
            self.capture, self.reads = capture, 0

        def read(self) -> tuple[bool, np.ndarray]:
            self.reads += 1
            return self.capture.read()

        def __getattr__(self, name: str) -> object:
            return getattr(self.capture, name)

    with open_source(write_video(tmp_path / "clip.avi", frames=20)) as source:
        source.read()
        counting = CountingReads(source._capture)
        monkeypatch.setattr(source, "_capture", counting)
        assert source.skip(5) == 5 and counting.reads == 0, "passed over, not turned into images"
        frame = source.read()
        assert frame.index == 6 and measured_x(frame.image) == pytest.approx(square_x(6), abs=1)
        assert source.skip(100) == 13
        assert source.read() is None


def test_skip_over_where_a_truncated_video_breaks_off_says_so(tmp_path: Path) -> None:
    path = write_video(tmp_path / "clip.avi", frames=40)
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with open_source(path) as source, pytest.raises(SourceError, match=r"stopped after \d+ of 40 frames"):
        source.skip(40)


def test_skip_in_images_passes_over_files_without_opening_them(tmp_path: Path) -> None:
    paths = write_images(tmp_path / "scenes", 5)
    paths[1].write_bytes(b"\x89PNG not really")
    with open_source(tmp_path / "scenes") as source:
        assert source.skip(2) == 2  # images 0 and 1, by position; 1 is never opened
        assert source.read().index == 2
        assert source.failures == []
        assert source.skip(5) == 2


def file_with(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def mp4_cut_short(folder: Path) -> Path:
    """An mp4 whose index (written last) is cut off: FFmpeg cannot open it at all."""
    data = write_video(folder / "whole.mp4").read_bytes()
    return file_with(folder / "half.mp4", data[: len(data) // 2])


@pytest.mark.parametrize(("make", "message"), [
    (lambda d: d / "missing.mp4", "no such file or folder"),
    (lambda d: file_with(d / "notes.mp4", b"not a video"), "not a video, or the file is damaged"),
    (mp4_cut_short, "not a video, or the file is damaged"),
    (lambda d: d / "*.png", "no images match"),
    (lambda d: (d / "empty").mkdir() or d / "empty", "no images in folder"),
    (lambda d: d / ("a" * 300 + ".mp4"), "cannot open .*: File name too long"),
    (lambda d: d / ("a" * 300) / "*.png", "cannot open .*: File name too long"),
    (lambda d: "ftp://example.com/drive.mp4", "streams are read over rtsp"),
    (lambda d: os.mkfifo(d / "pipe") or d / "pipe", "not a file or a folder"),
    (lambda d: "", "no source given"),  # an unset shell variable, not the current folder
    (lambda d: " ", "no source given"),
])
def test_bad_input_is_one_clear_error_and_opencv_stays_quiet(tmp_path: Path, capfd: pytest.CaptureFixture,
                                                             make, message: str) -> None:
    spec = make(tmp_path)
    capfd.readouterr()
    with pytest.raises(SourceError, match=message):
        open_source(str(spec))
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize(("spec", "message"), [
    (99, "no camera at index 99"),
    ("99", "no camera at index 99"),
    ("99999999999999999999", "^no camera at index 99999999999999999999$"),  # more than OpenCV's C int holds
    (2**31, f"^no camera at index {2**31}$"),
    ("/dev/video99", "no camera at /dev/video99"),
])
def test_camera_that_does_not_exist_fails_fast(spec: int | str, message: str) -> None:
    start = time.monotonic()
    with pytest.raises(SourceError, match=message):
        open_source(spec)
    assert time.monotonic() - start < 5.0


def test_stream_that_cannot_connect() -> None:
    with pytest.raises(SourceError, match="cannot open stream http://127.0.0.1:9/"):
        open_source("http://127.0.0.1:9/live.mjpg")


def test_a_server_that_never_answers_is_given_up_after_the_live_timeout() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()  # accepts connections, never sends a byte
        url = f"rtsp://127.0.0.1:{server.getsockname()[1]}/live"
        start = time.monotonic()
        with pytest.raises(SourceError, match="no server answered within 1 s"):
            sources._open_stream(url, timeout_s=1.0)
        assert time.monotonic() - start < 5.0


def write_images(folder: Path, count: int) -> list[Path]:
    folder.mkdir(exist_ok=True)
    paths = [folder / f"{i:05d}.png" for i in range(count)]
    for i, path in enumerate(paths):
        cv2.imwrite(str(path), synthetic_frame(i))
    return paths


def test_image_folder_skips_unreadable_images_and_lists_them(tmp_path: Path) -> None:
    paths = write_images(tmp_path / "scenes", 4)
    paths[1].write_bytes(b"\x89PNG not really")
    (tmp_path / "scenes" / "gt.txt").write_text("ignored: not an image")
    with open_source(tmp_path / "scenes") as source:
        assert isinstance(source, ImageSource) and source.is_stills
        assert source.frame_count == 4
        frames = list(source)
    assert [f.source for f in frames] == [str(paths[i]) for i in (0, 2, 3)]
    assert [f.index for f in frames] == [0, 2, 3]
    assert [f.time_ms for f in frames] == [i * 1000.0 / source.fps for i in (0, 2, 3)]
    assert len(source.failures) == 1 and str(paths[1]) in source.failures[0]


def test_a_truncated_jpeg_is_skipped_not_read_half_grey(tmp_path: Path) -> None:
    whole, cut = tmp_path / "whole.jpg", tmp_path / "cut.jpg"
    cv2.imwrite(str(whole), synthetic_frame(0))
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 3])
    with open_source(tmp_path) as source:
        frames = list(source)
    assert [f.source for f in frames] == [str(whole)]
    assert source.failures == [f"cannot read image {cut}: not an image, or the file is damaged"]


def test_single_image_and_glob(tmp_path: Path) -> None:
    paths = write_images(tmp_path, 3)
    (tmp_path / "other.jpg").write_bytes(cv2.imencode(".jpg", synthetic_frame(9))[1].tobytes())
    with open_source(paths[1]) as single:
        assert [f.source for f in single] == [str(paths[1])]
    with open_source(str(tmp_path / "0*.png")) as matched:
        assert [f.source for f in matched] == [str(p) for p in paths]
        matched.seek(2)
        assert matched.read().source == str(paths[2])


class FakeCapture:
    """Stands in for a camera: hands out numbered frames, then reports failure (unplugged)."""

    def __init__(self, frames: int, gate: threading.Semaphore | None = None) -> None:
        self.frames = frames
        self.gate = gate
        self.count = 0
        self.exhausted = threading.Event()
        self.released = threading.Event()

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self.gate is not None:
            self.gate.acquire()
        if self.count == self.frames:
            self.exhausted.set()
            return False, None
        self.count += 1
        return True, np.full((4, 4, 3), self.count - 1, np.uint8)

    def get(self, prop_id: int) -> float:
        return 30.0 if prop_id == cv2.CAP_PROP_FPS else 0.0

    def release(self) -> None:
        self.released.set()


def test_live_source_hands_out_the_newest_frame_and_drops_older_ones() -> None:
    capture = FakeCapture(frames=50)
    source = LiveSource(capture, "camera:7", is_camera=True, timeout_s=5.0)
    assert source.is_live and source.description == "camera 7"
    assert capture.exhausted.wait(5.0)  # the consumer was too slow for all 50
    frame = source.read()
    assert frame.index == 49 and int(frame.image[0, 0, 0]) == 49
    assert frame.source == "camera:7" and frame.time_ms >= 0.0
    with pytest.raises(SourceError, match="camera 7 stopped delivering frames after 50 frames"):
        source.read()
    source.close()
    assert capture.released.is_set()


def test_live_source_never_repeats_a_frame_and_keeps_up_with_a_fast_consumer() -> None:
    gate = threading.Semaphore(0)
    capture = FakeCapture(frames=5, gate=gate)
    source = LiveSource(capture, "rtsp://cam.local/stream", is_camera=False, timeout_s=5.0)
    seen = []
    for _ in range(5):
        gate.release()  # the device delivers one frame
        seen.append(source.read().index)
    gate.release()
    assert seen == [0, 1, 2, 3, 4]
    assert source.read() is None  # a stream that ends is the end of input, not an error
    source.close()


def test_a_stream_whose_reader_raises_says_why_it_stopped(capfd: pytest.CaptureFixture) -> None:
    class FailingCapture(FakeCapture):
        def read(self) -> tuple[bool, np.ndarray | None]:
            if self.count == 2:
                raise cv2.error("OpenCV(5.0) decoder: corrupt packet\nmore detail")
            return super().read()

    source = LiveSource(FailingCapture(frames=10), "rtsp://cam.local/stream", is_camera=False, timeout_s=5.0)
    with pytest.raises(SourceError, match="rtsp://cam.local/stream failed after 2 frames: OpenCV.5.0. decoder: "
                                          "corrupt packet$"):
        for _ in range(5):  # two frames, then the failure (a stream would otherwise just end: None)
            source.read()
    source.close()
    assert "Traceback" not in capfd.readouterr().err  # not printed by the reader's thread


@pytest.mark.parametrize(("silence_s", "stalled"), [(0.0, False), (0.3, True)])
def test_a_stream_that_stalls_half_way_is_an_error_and_one_that_ends_is_its_end(
        monkeypatch: pytest.MonkeyPatch, silence_s: float, stalled: bool) -> None:
    class StallingCapture(FakeCapture):  # two frames, then its reader waits in vain and gives up
        def read(self) -> tuple[bool, np.ndarray | None]:
            if self.count == 2:
                time.sleep(silence_s)
            return super().read()

    monkeypatch.setattr(sources, "STALLED_S", 0.2)
    source = LiveSource(StallingCapture(frames=2), "http://cam.local/x.mjpg", is_camera=False, timeout_s=5.0)
    with contextlib.ExitStack() as stack:
        if stalled:
            stack.enter_context(pytest.raises(SourceError, match="x.mjpg failed after 2 frames: no frame for 0 s "
                                                                 r"\(the connection stalled\)"))
        frames = [source.read() for _ in range(3)]
        assert frames[-1] is None  # reached only when the stream simply ended
    source.close()


@contextlib.contextmanager
def http_video(data: bytes, pause_s: float) -> Iterator[str]:
    """Serves ``data`` at a local URL, then keeps the connection silent for ``pause_s`` before closing it."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # no length: FFmpeg reads it as a stream, not a file to seek in
            self.send_response(200)
            self.send_header("Content-Type", "video/x-msvideo")
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
            time.sleep(pause_s)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/x.avi"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("part", "stalled"), [(1.0, False), (0.5, True)])
def test_a_stream_served_over_http_that_stalls_is_broken_off_and_one_that_ends_is_its_end(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, part: float, stalled: bool) -> None:
    # FFmpeg hands over the frame it still holds once its read gives up (here: the server closes
    # after its pause), so the stall comes before the last frame, not after it.
    data = write_video(tmp_path / "x.avi", frames=60).read_bytes()
    monkeypatch.setattr(sources, "STALLED_S", 0.5)
    with http_video(data[: int(len(data) * part)], pause_s=1.5 if stalled else 0.0) as url:
        source = sources._open_stream(url, timeout_s=5.0)
        frames = []
        with contextlib.ExitStack() as stack:
            if stalled:
                stack.enter_context(pytest.raises(SourceError, match=r"x.avi failed after \d+ frames: no frame for "
                                                                     r"\d s \(the connection stalled\)"))
            frames.extend(source)
        source.close()
    assert frames
    if not stalled:
        assert frames[-1].index == 59  # a stream that simply ends is read to its end


def test_live_source_times_out_when_nothing_arrives() -> None:
    gate = threading.Semaphore(0)
    source = LiveSource(FakeCapture(frames=1, gate=gate), "camera:0", is_camera=True, timeout_s=0.2)
    with pytest.raises(SourceError, match="camera 0 sent no frame for 0.2 s"):
        source.read()
    gate.release()
    gate.release()
    source.close()


def test_frame_is_a_plain_record() -> None:
    frame = Frame(np.zeros((2, 2, 3), np.uint8), 3, 120.0, "camera:0")
    with pytest.raises(AttributeError):
        frame.index = 4  # type: ignore[misc]


def test_cameras_come_from_video4linux_capture_nodes_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for node, index, name in [("video0", 0, "Cam A"), ("video1", 1, "Cam A"), ("video2", 0, "Cam B"),
                              ("video3", 1, "Cam B")]:
        (tmp_path / node).mkdir()
        (tmp_path / node / "index").write_text(f"{index}\n")
        (tmp_path / node / "name").write_text(f"{name}\n")
    monkeypatch.setattr(sources, "_V4L", tmp_path)
    assert sources.find_cameras() == [(0, "Cam A"), (2, "Cam B")]  # the metadata nodes are not cameras


def test_several_inputs_with_a_folder_among_them_say_so(tmp_path: Path) -> None:
    image = write_images(tmp_path / "scenes", 1)[0]
    with pytest.raises(SourceError, match=f"{tmp_path / 'scenes'} is a folder: several inputs must all be image"):
        sources.open_images([str(image), str(tmp_path / "scenes")])
    with pytest.raises(SourceError, match="cannot open .*: File name too long"):
        sources.open_images([str(image), str(tmp_path / ("a" * 300 + ".png"))])


def test_a_file_url_opens_the_file(tmp_path: Path) -> None:
    path = write_video(tmp_path / "my drive.avi", frames=3)
    with open_source(path.as_uri()) as source:
        assert isinstance(source, VideoFileSource) and len(list(source)) == 3


@pytest.mark.parametrize(("spec", "path"), [("file:///videos/my%20drive.mp4", "/videos/my drive.mp4"),
                                            ("scenes/*.jpg", "scenes/*.jpg"), ("0", None), ("/dev/video2", None),
                                            ("rtsp://cam.local/live", None), ("demo", None), ("ftp://x/y", None)])
def test_local_path_names_the_file_a_source_means(spec: str, path: str | None) -> None:
    assert sources.local_path(spec) == (None if path is None else Path(path))
