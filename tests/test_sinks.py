"""Sinks: JSON Lines per frame, annotated video and images, sign-event exports."""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from signcam.detection import Detection
from signcam.errors import SignCamError
from signcam.pipeline import FrameResult
from signcam.road import SignEvent
from signcam.sinks import (
    MAX_GAP_S,
    ImageFolderSink,
    JSONLinesSink,
    VideoSink,
    write_events,
    write_events_csv,
    write_events_json,
    write_image,
)
from signcam.sources import Frame, VideoFileSource, read_image


def result(index: int, detections: list[Detection] | None = None) -> FrameResult:
    frame = Frame(np.zeros((48, 80, 3), np.uint8), index, index * 40.0, "drive.mp4")
    return FrameResult(frame, detections or [])


def test_json_lines_schema_is_exactly_the_documented_one(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    found = [Detection((10, 12, 30, 33), 14, np.float32(0.912345), track_id=3), Detection((1, 2, 9, 9), 2, 0.5)]
    with JSONLinesSink(path) as sink:
        sink.append(result(0))
        sink.append(result(1, found))
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0] == {"source": "drive.mp4", "frame": 0, "time_ms": 0.0, "width": 80, "height": 48,
                        "detections": []}
    assert lines[1] == {"source": "drive.mp4", "frame": 1, "time_ms": 40.0, "width": 80, "height": 48,
                        "detections": [
                            {"box": [10, 12, 30, 33], "class_id": 14, "label": "Stop", "score": 0.9123, "track_id": 3},
                            {"box": [1, 2, 9, 9], "class_id": 2, "label": "Speed limit 50", "score": 0.5,
                             "track_id": None}]}


def test_json_lines_stay_valid_when_the_input_breaks(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    with pytest.raises(RuntimeError), JSONLinesSink(path) as sink:
        for i in range(3):
            sink.append(result(i))
            assert len(path.read_text().splitlines()) == i + 1  # flushed line by line
        raise RuntimeError("the video broke off")
    assert [json.loads(line)["frame"] for line in path.read_text().splitlines()] == [0, 1, 2]


def test_json_lines_to_stdout(capsys: pytest.CaptureFixture) -> None:
    with JSONLinesSink("-") as sink:
        sink.append(result(5))
    assert json.loads(capsys.readouterr().out)["frame"] == 5
    assert not sys.stdout.closed


def test_json_lines_unwritable_path(tmp_path: Path) -> None:
    with pytest.raises(SignCamError, match="cannot write .*no/such/folder"), \
            JSONLinesSink(tmp_path / "no" / "such" / "folder" / "out.jsonl"):
        pass


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full, a device that is always full")
def test_json_lines_on_a_full_disk_is_one_clear_error() -> None:
    with pytest.raises(SignCamError, match="cannot write /dev/full: No space left on device"), \
            JSONLinesSink("/dev/full") as sink:
        sink.append(result(0))


def test_image_folder_keeps_two_images_of_one_name(tmp_path: Path) -> None:
    with ImageFolderSink(tmp_path / "out") as folder:
        first = folder.write(np.zeros((4, 4, 3), np.uint8), "s.jpg")    # a/s.jpg
        second = folder.write(np.zeros((4, 4, 3), np.uint8), "s.jpg")   # b/s.jpg
    assert (first.name, second.name) == ("s.jpg", "s-2.jpg") and folder.frames_written == 2


def count_frames(path: Path) -> tuple[int, tuple[int, int]]:
    capture = cv2.VideoCapture(str(path))
    size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count, size


@pytest.mark.parametrize("suffix", [".mp4", ".avi", ".mkv", ".mov"])
def test_video_sink_writes_a_readable_video(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"annotated{suffix}"
    with VideoSink(path, fps=12.0) as video:
        for i in range(8):
            video.write(np.full((60, 100, 3), 20 * i, np.uint8))
        video.write(np.full((100, 100, 3), 255, np.uint8))  # another size: letterboxed into the first
    assert video.frames_written == 9
    assert count_frames(path) == (9, (100, 60))


def test_a_live_sources_video_is_paced_by_the_frame_times(tmp_path: Path) -> None:
    """Frames dropped by a camera's reader are filled with the frame before, so the video keeps the real pace."""
    path = tmp_path / "camera.avi"
    with VideoSink(path, fps=10.0, size=(64, 48)) as video:
        for value, time_ms in [(10, 1000.0), (20, 1100.0), (30, 1400.0), (40, 1500.0), (50, 60_000.0),
                               (60, 60_100.0), (70, 60_300.0)]:
            video.write(np.full((48, 64, 3), value, np.uint8), time_ms)
    # 1.0 s, 1.1 s, 1.2-1.3 s held, 1.4 s, 1.5 s, then a stall held for MAX_GAP_S only, the
    # frames after it at their own pace again.
    expected = [10, 20, 20, 20, 30, 40] + [40] * round(MAX_GAP_S * 10) + [50, 60, 60, 70]
    assert video.frames_written == len(expected)
    capture = cv2.VideoCapture(str(path))
    values = []
    while (read := capture.read())[0]:
        values.append(int(read[1].mean().round()))
    assert values == pytest.approx(expected, abs=2)


def test_video_sink_is_released_when_the_input_breaks(tmp_path: Path) -> None:
    path = tmp_path / "partial.avi"
    with pytest.raises(RuntimeError), VideoSink(path, fps=10.0, size=(64, 48)) as video:
        for _ in range(5):
            video.write(np.zeros((48, 64, 3), np.uint8))
        raise RuntimeError("the video broke off")
    assert count_frames(path) == (5, (64, 48))


class HalfWrittenVideo:
    """``cv2.VideoWriter`` on a disk that fills up: the file ends half-way, and no error is reported."""

    writer = cv2.VideoWriter

    def __init__(self, path: str, *args: object) -> None:
        self.path = path
        self._writer = self.writer(path, *args)

    def isOpened(self) -> bool:  # noqa: N802 (OpenCV's name)
        return self._writer.isOpened()

    def write(self, image: np.ndarray) -> None:
        self._writer.write(image)

    def release(self) -> None:
        self._writer.release()
        os.truncate(self.path, os.path.getsize(self.path) // 2)


@pytest.mark.parametrize("suffix", [".mp4", ".avi", ".mkv", ".mov"])
def test_a_video_not_written_whole_is_an_error_when_it_is_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 suffix: str) -> None:
    monkeypatch.setattr(cv2, "VideoWriter", HalfWrittenVideo)
    path = tmp_path / f"annotated{suffix}"
    video = VideoSink(path, fps=10.0, size=(64, 48))
    for i in range(20):
        video.write(np.full((48, 64, 3), 10 * i, np.uint8))
    with pytest.raises(SignCamError, match=r"^cannot finish the video .*annotated\.\w+: it was not written whole "
                                           r"\(is the disk full\?\)$"):
        video.close()
    video.close()  # said once


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full, a device that is always full")
def test_a_video_on_a_full_disk_is_an_error_when_it_is_closed(tmp_path: Path) -> None:
    (tmp_path / "full.avi").symlink_to("/dev/full")
    with pytest.raises(SignCamError, match="cannot finish the video .*full.avi: it was not written whole"), \
            VideoSink(tmp_path / "full.avi", fps=10.0) as video:
        video.write(np.zeros((48, 64, 3), np.uint8))


@pytest.mark.parametrize(("name", "message"), [
    ("annotated.gif", "use one of .mp4"),
    ("missing/annotated.mp4", "its folder does not exist"),
])
def test_video_sink_errors(tmp_path: Path, name: str, message: str) -> None:
    with pytest.raises(SignCamError, match=message):
        VideoSink(tmp_path / name, fps=25.0, size=(64, 48))


def test_image_folder_sink(tmp_path: Path) -> None:
    with ImageFolderSink(tmp_path / "out" / "annotated") as folder:
        folder.write(np.full((20, 30, 3), 200, np.uint8), "00042.jpg")
    image = cv2.imread(str(tmp_path / "out" / "annotated" / "00042.jpg"))
    assert image.shape == (20, 30, 3) and folder.frames_written == 1


@pytest.mark.parametrize(("name", "message"), [("frame.xyz", "'.xyz' is not an image format"),
                                             ("missing/frame.png", "No such file")])
def test_write_image_errors_are_one_clear_line(tmp_path: Path, name: str, message: str) -> None:
    with pytest.raises(SignCamError, match=message):
        write_image(tmp_path / name, np.zeros((8, 8, 3), np.uint8))


@pytest.mark.skipif(sys.platform != "linux", reason="only Linux takes file names that are not UTF-8")
def test_files_whose_names_are_not_utf8_are_written_and_read_back(tmp_path: Path) -> None:
    """A Latin-1 name reaches Python with a lone surrogate, which OpenCV's own file functions crash on."""
    video, image = (tmp_path / os.fsdecode(b"caf\xe9" + suffix) for suffix in (b".avi", b".png"))
    with VideoSink(video, fps=10.0, size=(64, 48)) as sink:
        for _ in range(3):
            sink.write(np.zeros((48, 64, 3), np.uint8))
    with VideoFileSource(video) as source:
        assert [frame.index for frame in source] == [0, 1, 2]
    write_image(image, np.full((20, 30, 3), 200, np.uint8))
    assert read_image(image).shape == (20, 30, 3)
    event = SignEvent(1, 2, "Speed limit 50", 0.9, 12, 480.0, (5, 6, 40, 41), str(video))
    write_events_csv([event], tmp_path / "signs.csv")
    assert b"caf\xe9.avi" in (tmp_path / "signs.csv").read_bytes()  # the name as it is on disk
    write_events_json([event], tmp_path / "signs.json")
    assert json.loads((tmp_path / "signs.json").read_text())[0]["source"] == str(video)


EVENTS = [
    SignEvent(1, 2, "Speed limit 50", 0.97, 12, 480.0, (5, 6, 40, 41), "drive.mp4"),
    SignEvent(2, 14, "Stop", 0.88123, 30, 1200.0, (100, 50, 130, 80), "drive.mp4"),
]


def test_events_csv_and_json(tmp_path: Path) -> None:
    write_events_csv(EVENTS, tmp_path / "signs.csv")
    write_events_json(EVENTS, tmp_path / "signs.json")
    with open(tmp_path / "signs.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["track_id", "class_id", "label", "score", "frame_index", "time_ms", "source",
                             "x1", "y1", "x2", "y2"]
    assert rows[1] == {"track_id": "2", "class_id": "14", "label": "Stop", "score": "0.8812", "frame_index": "30",
                       "time_ms": "1200.0", "source": "drive.mp4", "x1": "100", "y1": "50", "x2": "130", "y2": "80"}
    assert json.loads((tmp_path / "signs.json").read_text()) == [e.to_json() for e in EVENTS]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["signs.csv", "signs.json"]  # no temporary files left


def test_events_export_without_events_still_has_a_header(tmp_path: Path) -> None:
    write_events_csv([], tmp_path / "signs.csv")
    write_events_json([], tmp_path / "signs.json")
    assert (tmp_path / "signs.csv").read_text().startswith("track_id,class_id,label,score")
    assert json.loads((tmp_path / "signs.json").read_text()) == []


@pytest.mark.parametrize("suffix", [".csv", ".JSON"])
def test_write_events_picks_the_format_by_suffix(tmp_path: Path, suffix: str) -> None:
    path = write_events(EVENTS, tmp_path / f"signs{suffix}")
    text = path.read_text()
    assert text.startswith("track_id,") if suffix == ".csv" else json.loads(text)[0]["source"] == "drive.mp4"
    with pytest.raises(SignCamError, match="use a .csv or .json file"):
        write_events(EVENTS, tmp_path / "signs.txt")


def test_events_export_replaces_the_old_file_whole_or_not_at_all(tmp_path: Path) -> None:
    path = tmp_path / "signs.json"
    path.write_text("old")
    write_events_json(EVENTS[:1], path)
    assert len(json.loads(path.read_text())) == 1
    with pytest.raises(SignCamError, match="cannot write"):
        write_events_json(EVENTS, tmp_path / "missing" / "signs.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["signs.json"]
