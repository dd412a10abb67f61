"""``signcam detect``: JSON Lines, annotated output, stride and limits, and clear errors.

Most tests swap the recognizer for one that boxes red pixels, so they check the command, not the
model; the last ones run the shipped model on real GTSDB scenes.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from signcam import cli
from signcam.classifier import DEFAULT_MODEL
from signcam.commands import detect as detect_command
from signcam.detection import Detection, iou
from signcam.errors import SignCamError
from signcam.gtsdb import load_scenes
from signcam.sinks import VideoSink
from signcam.sources import Frame, VideoFileSource

SIZE = (160, 120)  # width, height


def red_square_at(index: int) -> tuple[int, int, int, int]:
    """Box of the red "sign" in synthetic frame ``index``: it drifts right and grows."""
    x, side = 20 + 4 * index, 16 + index // 2
    return x, 30, x + side - 1, 30 + side - 1


def synthetic_frame(index: int) -> np.ndarray:
    image = np.full((SIZE[1], SIZE[0], 3), 90, np.uint8)
    x1, y1, x2, y2 = red_square_at(index)
    image[y1:y2 + 1, x1:x2 + 1] = (0, 0, 255)
    return image


def write_clip(path: Path, frames: int = 12, fps: float = 10.0) -> Path:
    with VideoSink(path, fps=fps, size=SIZE) as video:
        for i in range(frames):
            video.write(synthetic_frame(i))
    return path


class RedSignRecognizer:
    """Boxes the red pixels of a frame as a "Speed limit 50" sign: a stand-in for the real model."""

    def __init__(self, classifier: object = None, conf: float = 0.5, proposer: object = None) -> None:
        self.conf = conf
        self.timings_ms: dict[str, float] = {}

    def __call__(self, image: np.ndarray, keep_rejected: bool = False,
                 windows: np.ndarray | None = None) -> list[Detection]:
        self.timings_ms = {"proposals": 1.0, "classify": 1.0}
        ys, xs = np.nonzero((image[:, :, 2] > 180) & (image[:, :, 1] < 80))
        if len(xs) == 0 or self.conf > 0.9:
            return []
        return [Detection((int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())), 2, 0.9)]


@pytest.fixture
def fake_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("signcam.recognizer.Recognizer", RedSignRecognizer)


def detect(capfd: pytest.CaptureFixture, *argv: str | Path) -> tuple[int, str, list[str]]:
    """Run ``signcam detect``; returns the exit status, standard output and the lines of standard error."""
    code = cli.main(["detect", *map(str, argv)])
    out, err = capfd.readouterr()
    return code, out, err.splitlines()


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_video_to_json_lines(tmp_path: Path, capfd: pytest.CaptureFixture, fake_model: None) -> None:
    clip = write_clip(tmp_path / "clip.avi", frames=12)
    code, out, err = detect(capfd, clip, "--json", tmp_path / "out.jsonl")
    assert code == 0 and out == ""
    lines = read_jsonl(tmp_path / "out.jsonl")
    assert [line["frame"] for line in lines] == list(range(12))
    assert all(line.keys() == {"source", "frame", "time_ms", "width", "height", "detections"} for line in lines)
    assert lines[5]["source"] == str(clip) and lines[5]["time_ms"] == 500.0
    assert (lines[5]["width"], lines[5]["height"]) == SIZE
    assert [len(line["detections"]) for line in lines] == [0, 0] + [1] * 10  # confirmed from the third frame
    for line in lines[2:]:
        found = line["detections"][0]
        assert found.keys() == {"box", "class_id", "label", "score", "track_id"}
        assert (found["class_id"], found["label"], found["track_id"]) == (2, "Speed limit 50", 1)
        assert iou(found["box"], red_square_at(line["frame"])) > 0.8  # pixels of the original frame
    assert len(err) == 1 and err[0].startswith("signcam: 12 frames in ")
    assert err[0].endswith("signs confirmed: 1 (Speed limit 50)")


def test_the_annotated_video_of_a_camera_keeps_its_pace(tmp_path: Path, capfd: pytest.CaptureFixture,
                                                         fake_model: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A camera's reader drops the frames it cannot take in time; the video is not sped up by their absence."""

    class BusyCamera(VideoFileSource):  # hands out every other frame, as a camera does to a slow reader
        is_live = True

        def read(self) -> Frame | None:
            super().read()
            return super().read()

    clip = write_clip(tmp_path / "clip.avi", frames=20)  # 10 fps
    monkeypatch.setattr(detect_command, "open_source", lambda spec: BusyCamera(clip, name="camera:0"))
    code, _, _ = detect(capfd, "0", "--output", tmp_path / "annotated.avi", "--json", tmp_path / "out.jsonl")
    assert code == 0
    times = [line["time_ms"] for line in read_jsonl(tmp_path / "out.jsonl")]
    assert times == [100.0 * i for i in range(1, 20, 2)]
    capture = cv2.VideoCapture(str(tmp_path / "annotated.avi"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 19  # 0.1 s to 1.9 s at 10 fps


@pytest.mark.parametrize(("options", "frames"), [
    (["--max-frames", "4"], [0, 1, 2, 3]),
    (["--stride", "3"], [0, 3, 6, 9]),
    (["--stride", "2", "--max-frames", "3"], [0, 2, 4]),
])
def test_stride_and_max_frames(tmp_path: Path, capfd: pytest.CaptureFixture, fake_model: None,
                               options: list[str], frames: list[int]) -> None:
    clip = write_clip(tmp_path / "clip.avi", frames=12)
    code, _, err = detect(capfd, clip, "--json", tmp_path / "out.jsonl", *options)
    assert code == 0
    assert [line["frame"] for line in read_jsonl(tmp_path / "out.jsonl")] == frames
    assert f"signcam: {len(frames)} frames in " in err[-1]


def test_no_track_and_conf(tmp_path: Path, capfd: pytest.CaptureFixture, fake_model: None) -> None:
    clip = write_clip(tmp_path / "clip.avi", frames=3)
    detect(capfd, clip, "--json", tmp_path / "raw.jsonl", "--no-track")
    assert [[d["track_id"] for d in line["detections"]] for line in read_jsonl(tmp_path / "raw.jsonl")] == [[None]] * 3
    detect(capfd, clip, "--json", tmp_path / "strict.jsonl", "--conf", "0.95")
    assert all(line["detections"] == [] for line in read_jsonl(tmp_path / "strict.jsonl"))


def test_json_to_stdout_keeps_the_summary_on_stderr(tmp_path: Path, capfd: pytest.CaptureFixture,
                                                    fake_model: None) -> None:
    code, out, err = detect(capfd, write_clip(tmp_path / "clip.avi", frames=4), "--json", "-")
    assert code == 0
    assert [json.loads(line)["frame"] for line in out.splitlines()] == [0, 1, 2, 3]
    assert len(err) == 1 and err[0].startswith("signcam: 4 frames")


def test_truncated_video_keeps_what_was_processed(tmp_path: Path, capfd: pytest.CaptureFixture,
                                                  fake_model: None) -> None:
    clip = write_clip(tmp_path / "clip.avi", frames=40)
    data = clip.read_bytes()
    clip.write_bytes(data[: len(data) // 2])
    code, _, err = detect(capfd, clip, "--json", tmp_path / "out.jsonl", "--output", tmp_path / "annotated.avi")
    assert code == 2
    lines = read_jsonl(tmp_path / "out.jsonl")  # every line parses
    processed = len(lines)
    assert 5 < processed < 40 and [line["frame"] for line in lines] == list(range(processed))
    assert err[-1] == f"signcam: error: {clip} stopped after {processed} of 40 frames: the file is truncated or damaged"
    assert err[0].startswith(f"signcam: {processed} frames in ") and len(err) == 2
    capture = cv2.VideoCapture(str(tmp_path / "annotated.avi"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == processed  # the video was closed properly


@pytest.mark.parametrize(("make_spec", "message"), [
    (lambda d: d / "missing.mp4", "no such file or folder: {d}/missing.mp4"),
    (lambda d: (d / "notes.avi").write_text("hello") and d / "notes.avi",
     "cannot read {d}/notes.avi: not a video, or the file is damaged"),
    (lambda d: "99", "no camera at index 99"),
    (lambda d: "/dev/video99", "no camera at /dev/video99"),
])
def test_unusable_input_is_one_line_and_exit_2(tmp_path: Path, capfd: pytest.CaptureFixture, fake_model: None,
                                               make_spec, message: str) -> None:
    code, out, err = detect(capfd, make_spec(tmp_path), "--json", tmp_path / "out.jsonl")
    assert code == 2 and out == ""
    assert err == [f"signcam: error: {message.format(d=tmp_path)}"]


def test_missing_model_is_one_line_and_exit_2(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    code, _, err = detect(capfd, write_clip(tmp_path / "clip.avi", frames=2), "--model", tmp_path / "none.onnx")
    assert code == 2 and err == [f"signcam: error: model file not found: {tmp_path / 'none.onnx'}"]


@pytest.mark.parametrize("flag", ["--detector", "--coarse-detector"])
def test_a_missing_or_wrong_finder_is_one_line_and_exit_2(tmp_path: Path, capfd: pytest.CaptureFixture,
                                                          flag: str) -> None:
    clip = write_clip(tmp_path / "clip.avi", frames=2)
    code, _, err = detect(capfd, clip, flag, tmp_path / "none.onnx")
    assert code == 2 and err == [f"signcam: error: detector file not found: {tmp_path / 'none.onnx'}"]
    code, _, err = detect(capfd, clip, flag, DEFAULT_MODEL)  # the classifier is no finder
    assert code == 2 and len(err) == 1 and "not a signcam detector" in err[0]


def test_bad_option_values_are_rejected_by_the_parser(capfd: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["detect", "clip.mp4", "--stride", "0"])
    assert exit_info.value.code == 2 and "must be 1 or more" in capfd.readouterr().err


def test_reader_of_stdout_going_away_stops_quietly(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "clip.avi", frames=300)
    with subprocess.Popen([sys.executable, "-m", "signcam", "detect", str(clip), "--json", "-"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as run:
        assert json.loads(run.stdout.readline())["frame"] == 0
        run.stdout.close()  # like `| head -1`
        err = run.stderr.read()
        assert run.wait(timeout=120) == 0
    assert "Traceback" not in err and err.startswith("signcam: ") and len(err.splitlines()) == 1


def test_sigterm_stops_like_ctrl_c_and_leaves_a_playable_video(tmp_path: Path) -> None:
    clip, out, lines = write_clip(tmp_path / "clip.avi", frames=3000), tmp_path / "out.mp4", tmp_path / "out.jsonl"
    with subprocess.Popen([sys.executable, "-m", "signcam", "detect", str(clip), "--json", str(lines),
                           "--output", str(out)], stderr=subprocess.PIPE, text=True) as run:
        deadline = time.monotonic() + 60
        while (not lines.exists() or lines.read_text().count("\n") < 5) and time.monotonic() < deadline:
            time.sleep(0.05)
        run.terminate()
        err = run.stderr.read()
        assert run.wait(timeout=60) == 143  # 128 + SIGTERM, as the app and a shell report it
    assert err.splitlines()[-1] == "signcam: terminated" and "Traceback" not in err
    written = read_jsonl(lines)
    capture = cv2.VideoCapture(str(out))
    # The signal may land between a frame's JSON line and its video frame.
    assert 5 <= len(written) < 3000 and len(written) - 1 <= int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) <= len(written)
    assert capture.read()[0]
    capture.release()


def write_scene_folder(folder: Path, count: int) -> list[Path]:
    folder.mkdir()
    paths = [folder / f"{i:05d}.png" for i in range(count)]
    for i, path in enumerate(paths):
        cv2.imwrite(str(path), synthetic_frame(3 * i))
    return paths


def test_image_folder_skips_a_corrupt_image_and_exits_1(tmp_path: Path, capfd: pytest.CaptureFixture,
                                                        fake_model: None) -> None:
    paths = write_scene_folder(tmp_path / "scenes", 4)
    paths[2].write_bytes(b"not a png")
    code, _, err = detect(capfd, tmp_path / "scenes", "--json", tmp_path / "out.jsonl",
                          "--output", tmp_path / "annotated")
    assert code == 1
    lines = read_jsonl(tmp_path / "out.jsonl")
    assert [line["source"] for line in lines] == [str(paths[i]) for i in (0, 1, 3)]
    assert all(d["track_id"] is None for line in lines for d in line["detections"])  # stills: nothing to track
    assert [len(line["detections"]) for line in lines] == [1, 1, 1]
    assert sorted(p.name for p in (tmp_path / "annotated").iterdir()) == ["00000.jpg", "00001.jpg", "00003.jpg"]
    assert err == [f"signcam: warning: skipped: cannot read image {paths[2]}: not an image, or the file is damaged",
                   err[1], "signcam: error: 1 of 4 images could not be read"]
    assert err[1].startswith("signcam: 3 images in ") and err[1].endswith("signs found: 3 (Speed limit 50 x3)")


def test_a_stride_over_an_image_folder_leaves_the_skipped_images_unread(tmp_path: Path, capfd: pytest.CaptureFixture,
                                                                          fake_model: None) -> None:
    """A damaged image the stride passes over is not an error: only the images processed are opened."""
    paths = write_scene_folder(tmp_path / "scenes", 5)
    paths[1].write_bytes(b"not a png")
    code, _, err = detect(capfd, tmp_path / "scenes", "--json", tmp_path / "out.jsonl", "--stride", "2")
    assert code == 0
    assert [line["source"] for line in read_jsonl(tmp_path / "out.jsonl")] == [str(paths[i]) for i in (0, 2, 4)]
    assert len(err) == 1 and err[0].startswith("signcam: 3 images in ")


@pytest.mark.parametrize(("target", "flag", "folder"), [
    ("clip.avi", "--output", False), ("clip.avi", "--json", False), ("scenes", "--output", True),
    ("scenes/00001.png", "--json", True)])
def test_an_output_that_would_overwrite_the_input_is_refused(tmp_path: Path, capfd: pytest.CaptureFixture,
                                                            fake_model: None, target: str, flag: str,
                                                            folder: bool) -> None:
    source = tmp_path / "scenes" if folder else write_clip(tmp_path / "clip.avi", frames=3)
    inputs = write_scene_folder(source, 2) if folder else [source]
    before = [path.read_bytes() for path in inputs]
    code, _, err = detect(capfd, source, flag, tmp_path / target)
    assert code == 2 and [path.read_bytes() for path in inputs] == before
    assert err == [f"signcam: error: {flag} {tmp_path / target} would overwrite the input "
                   f"{(tmp_path / target) if target.endswith(('.avi', '.png')) else inputs[0]}: write somewhere else"]


def test_a_hard_link_to_the_input_is_the_input(tmp_path: Path, capfd: pytest.CaptureFixture,
                                               fake_model: None) -> None:
    clip = write_clip(tmp_path / "clip.avi", frames=3)
    (tmp_path / "link.avi").hardlink_to(clip)
    before = clip.read_bytes()
    code, _, err = detect(capfd, clip, "--output", tmp_path / "link.avi")
    assert code == 2 and clip.read_bytes() == before and "would overwrite the input" in err[0]


@pytest.mark.parametrize("flags", [("--json", "--events"), ("--json", "--output")])
def test_two_outputs_on_one_file_are_refused(tmp_path: Path, capfd: pytest.CaptureFixture, fake_model: None,
                                             flags: tuple[str, str]) -> None:
    target = tmp_path / ("same.csv" if "--events" in flags else "same.avi")
    code, _, err = detect(capfd, write_clip(tmp_path / "clip.avi", frames=3), flags[0], target, flags[1], target)
    assert code == 2 and not target.exists()
    assert err == [f"signcam: error: {flags[0]} and {flags[1]} name the same file {target}: give each its own"]


def test_annotated_frames_of_a_video_may_go_into_its_folder(tmp_path: Path, capfd: pytest.CaptureFixture,
                                                            fake_model: None) -> None:
    clip = write_clip(tmp_path / "clip.avi", frames=2)
    code, _, _ = detect(capfd, clip, "--output", tmp_path)
    assert code == 0 and sorted(p.name for p in tmp_path.glob("*.jpg")) == ["000000.jpg", "000001.jpg"]


def test_json_over_the_model_is_refused(tmp_path: Path, capfd: pytest.CaptureFixture, fake_model: None) -> None:
    model = tmp_path / "model.onnx"
    shutil.copy(DEFAULT_MODEL, model)
    before = model.read_bytes()
    code, _, err = detect(capfd, write_clip(tmp_path / "clip.avi", frames=2), "--model", model, "--json", model)
    assert code == 2 and model.read_bytes() == before and "would overwrite the input" in err[0]


def test_outputs_over_a_finder_are_refused(tmp_path: Path, capfd: pytest.CaptureFixture, fake_model: None) -> None:
    from signcam.proposals import DEFAULT_DETECTOR

    finder = tmp_path / "finder.onnx"
    shutil.copy(DEFAULT_DETECTOR, finder)
    for flag in ("--detector", "--coarse-detector"):
        code, _, err = detect(capfd, write_clip(tmp_path / "clip.avi", frames=2), flag, finder, "--output", finder)
        assert code == 2 and finder.read_bytes() == DEFAULT_DETECTOR.read_bytes()
        assert "would overwrite the input" in err[0]


def test_json_and_events_may_go_inside_a_new_output_folder(tmp_path: Path, capfd: pytest.CaptureFixture,
                                                           fake_model: None) -> None:
    out = tmp_path / "out"
    code, _, _ = detect(capfd, write_clip(tmp_path / "clip.avi", frames=3), "--output", out,
                        "--json", out / "frames.jsonl", "--events", out / "signs.csv")
    assert code == 0 and len(read_jsonl(out / "frames.jsonl")) == 3 and (out / "signs.csv").is_file()
    assert len(list(out.glob("*.jpg"))) == 3


@pytest.mark.parametrize(("options", "message"), [
    (["--events", "signs.txt"], "use a .csv or .json file"),
    (["--events", "nowhere/signs.csv"], "its folder does not exist"),
    (["--json", "nowhere/frames.jsonl"], "its folder does not exist"),
    (["--model", "missing.onnx"], "model file not found"),
], ids=["events-suffix", "events-folder", "json-folder", "model"])
def test_a_refused_run_leaves_no_empty_output_folder(tmp_path: Path, capfd: pytest.CaptureFixture,
                                                     monkeypatch: pytest.MonkeyPatch, options: list[str],
                                                     message: str) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = detect(capfd, write_clip(tmp_path / "clip.avi", frames=2), "--output", "annotated", *options)
    assert code == 2 and message in err[-1] and not (tmp_path / "annotated").exists()


def test_json_named_like_an_annotated_image_in_the_output_folder_is_refused(
        tmp_path: Path, capfd: pytest.CaptureFixture, fake_model: None) -> None:
    paths = write_scene_folder(tmp_path / "scenes", 1)
    out = tmp_path / "out"
    code, _, err = detect(capfd, paths[0], "--output", out, "--json", out / "00000.jpg")
    assert code == 2 and "could be written over by an annotated image" in err[-1]


def test_without_json_or_output_the_summary_says_how_to_keep_the_boxes(
        tmp_path: Path, capfd: pytest.CaptureFixture, fake_model: None) -> None:
    code, out, err = detect(capfd, write_scene_folder(tmp_path / "scenes", 2)[0])
    assert code == 0 and out == ""
    assert err[0].startswith("signcam: 1 image in ") and err[0].endswith("signs found: 1 (Speed limit 50)")
    assert err[1] == "signcam: add --json, --events or --output FILE to keep where each sign was found"


def test_an_output_that_is_not_a_video_becomes_a_folder_with_a_note(
        tmp_path: Path, capfd: pytest.CaptureFixture, fake_model: None) -> None:
    code, _, err = detect(capfd, write_clip(tmp_path / "clip.avi", frames=2), "--output", tmp_path / "out.xyz")
    assert code == 0 and sorted(p.name for p in (tmp_path / "out.xyz").iterdir()) == ["000000.jpg", "000001.jpg"]
    assert err[0] == (f"signcam: note: {tmp_path / 'out.xyz'} is not a video (.mp4, .m4v, .mov, .mkv, .avi): "
                      "writing annotated images into that folder")


def test_several_image_files_as_a_shell_expands_a_glob(tmp_path: Path, capfd: pytest.CaptureFixture,
                                                       fake_model: None) -> None:
    paths = write_scene_folder(tmp_path / "scenes", 3)
    code, _, err = detect(capfd, paths[2], paths[0], "--json", tmp_path / "out.jsonl")
    assert code == 0 and err[0].startswith("signcam: 2 images in ")
    assert [(line["source"], line["frame"]) for line in read_jsonl(tmp_path / "out.jsonl")] == [
        (str(paths[2]), 0), (str(paths[0]), 1)]


def test_several_inputs_must_all_be_images(tmp_path: Path, capfd: pytest.CaptureFixture, fake_model: None) -> None:
    image, clip = write_scene_folder(tmp_path / "scenes", 1)[0], write_clip(tmp_path / "clip.avi", frames=2)
    code, _, err = detect(capfd, image, clip)
    assert code == 2 and err == [f"signcam: error: {clip} is not an image (.jpg, .jpeg, .png, .ppm, .pgm, .pbm, "
                                 ".bmp, .tif, .tiff, .webp): several inputs must all be images; a video, camera "
                                 "or stream comes alone"]


def test_events_list_the_signs_passed_even_when_the_video_breaks_off(tmp_path: Path, capfd: pytest.CaptureFixture,
                                                                   fake_model: None) -> None:
    clip = write_clip(tmp_path / "clip.avi", frames=40)
    clip.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    code, _, err = detect(capfd, clip, "--events", tmp_path / "signs.csv")
    assert code == 2 and "stopped after" in err[-1]
    rows = list(csv.DictReader((tmp_path / "signs.csv").open()))
    assert [(row["track_id"], row["label"]) for row in rows] == [("1", "Speed limit 50")]


def test_events_and_json_are_kept_when_an_output_fails(tmp_path: Path, capfd: pytest.CaptureFixture,
                                                       fake_model: None, monkeypatch: pytest.MonkeyPatch) -> None:
    written = []

    def write_image(path: Path, image: np.ndarray) -> Path:  # the disk fills up at the ninth image
        if len(written) == 8:
            raise SignCamError(f"cannot write image {path}: No space left on device")
        written.append(path)
        return path

    monkeypatch.setattr("signcam.sinks.write_image", write_image)
    clip = write_clip(tmp_path / "clip.avi", frames=12)
    code, _, err = detect(capfd, clip, "--output", tmp_path / "frames", "--events", tmp_path / "signs.csv",
                          "--json", tmp_path / "out.jsonl")
    assert code == 2 and err[-1].endswith("No space left on device") and "frames in" in err[0]
    assert len(read_jsonl(tmp_path / "out.jsonl")) == 9  # the ninth frame's line, then its image failed
    rows = list(csv.DictReader((tmp_path / "signs.csv").open()))
    assert [(row["track_id"], row["label"]) for row in rows] == [("1", "Speed limit 50")]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full, a device that is always full")
@pytest.mark.parametrize("broken_input", [False, True])
def test_an_annotated_video_the_disk_cannot_hold_is_an_error_after_the_summary(
        tmp_path: Path, capfd: pytest.CaptureFixture, fake_model: None, broken_input: bool) -> None:
    """OpenCV's writer reports no failed write: the video is checked once finished. --json and --events are kept,
    and an input that broke off as well is still reported."""
    clip = write_clip(tmp_path / "clip.avi", frames=40)
    if broken_input:
        clip.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    (tmp_path / "full.avi").symlink_to("/dev/full")
    code, _, err = detect(capfd, clip, "--output", tmp_path / "full.avi", "--events", tmp_path / "signs.csv",
                          "--json", tmp_path / "out.jsonl")
    video_error = f"signcam: error: cannot finish the video {tmp_path}/full.avi: it was not written whole " \
                  "(is the disk full?)"
    frames = len(read_jsonl(tmp_path / "out.jsonl"))
    assert code == 2 and (frames < 40 if broken_input else frames == 40)
    if broken_input:
        assert err[0] == video_error and err[1].startswith(f"signcam: {frames} frames in ")
        assert "stopped after" in err[2] and len(err) == 3
    else:
        assert err[0].startswith("signcam: 40 frames in ") and err[1:] == [video_error]
    rows = list(csv.DictReader((tmp_path / "signs.csv").open()))
    assert [(row["track_id"], row["label"]) for row in rows] == [("1", "Speed limit 50")]


def test_events_without_tracking_are_refused_for_a_video(tmp_path: Path, capfd: pytest.CaptureFixture,
                                                         fake_model: None) -> None:
    """Each frame's detection would be listed as a sign passed."""
    clip = write_clip(tmp_path / "clip.avi")
    code, _, err = detect(capfd, clip, "--no-track", "--events", tmp_path / "signs.csv")
    assert code == 2 and err == ["signcam: error: --events lists each sign once, when its track is confirmed, and "
                                 "--no-track leaves no tracks (--json has every frame's detections)"]
    assert not (tmp_path / "signs.csv").exists()


def test_events_of_stills_name_their_image(tmp_path: Path, capfd: pytest.CaptureFixture, fake_model: None) -> None:
    paths = write_scene_folder(tmp_path / "scenes", 2)
    assert detect(capfd, tmp_path / "scenes", "--events", tmp_path / "signs.json")[0] == 0
    events = json.loads((tmp_path / "signs.json").read_text())
    assert [(e["source"], e["frame_index"], e["track_id"]) for e in events] == [(str(paths[0]), 0, None),
                                                                                 (str(paths[1]), 1, None)]


def test_events_to_standard_output_are_csv(tmp_path: Path, capfd: pytest.CaptureFixture, fake_model: None) -> None:
    code, out, err = detect(capfd, write_clip(tmp_path / "clip.avi", frames=12), "--events", "-")
    assert code == 0 and len(err) == 1 and err[0].startswith("signcam: 12 frames in ")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(row["track_id"], row["label"]) for row in rows] == [("1", "Speed limit 50")]


def test_json_and_events_cannot_both_go_to_standard_output(tmp_path: Path, capfd: pytest.CaptureFixture,
                                                           fake_model: None) -> None:
    code, out, err = detect(capfd, write_clip(tmp_path / "clip.avi", frames=3), "--json", "-", "--events", "-")
    assert code == 2 and out == ""
    assert err == ["signcam: error: --json - and --events - would mix two formats on standard output: write one to "
                   "a file"]


@pytest.mark.parametrize(("events", "message"), [
    ("signs.txt", "cannot write sign events to {d}/signs.txt: use a .csv or .json file"),
    ("missing/signs.json", "cannot write {d}/missing/signs.json: its folder does not exist")])
def test_events_to_a_wrong_file_fail_before_anything_is_processed(tmp_path: Path, capfd: pytest.CaptureFixture,
                                                                  fake_model: None, events: str,
                                                                  message: str) -> None:
    code, _, err = detect(capfd, write_clip(tmp_path / "clip.avi", frames=3), "--events", tmp_path / events)
    assert code == 2 and err == [f"signcam: error: {message.format(d=tmp_path)}"]


@pytest.mark.parametrize(("output", "message"), [
    ("missing/annotated.mp4", "cannot write {d}/missing/annotated.mp4: its folder does not exist"),
    ("-", "--output - is not standard output: name a video file or a folder for annotated images")])
def test_an_output_video_that_cannot_be_written_fails_before_anything_is_processed(
        tmp_path: Path, capfd: pytest.CaptureFixture, fake_model: None, output: str, message: str) -> None:
    clip = write_clip(tmp_path / "clip.avi", frames=3)
    code, _, err = detect(capfd, clip, "--output", output if output == "-" else tmp_path / output,
                          "--json", tmp_path / "out.jsonl")
    assert code == 2 and err == [f"signcam: error: {message.format(d=tmp_path)}"]
    assert not (tmp_path / "out.jsonl").exists() and not Path("-").exists()


def test_a_one_frame_video_reports_its_signs_as_a_still_does(tmp_path: Path, capfd: pytest.CaptureFixture,
                                                              fake_model: None) -> None:
    code, _, err = detect(capfd, write_clip(tmp_path / "one.avi", frames=1), "--json", tmp_path / "out.jsonl")
    (line,) = read_jsonl(tmp_path / "out.jsonl")
    assert code == 0 and [(d["label"], d["track_id"]) for d in line["detections"]] == [("Speed limit 50", None)]
    assert err[0].endswith("signs found: 1 (Speed limit 50)")


def test_an_image_that_cannot_be_read_alone_is_exit_2(tmp_path: Path, capfd: pytest.CaptureFixture,
                                                      fake_model: None) -> None:
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    code, _, err = detect(capfd, tmp_path / "broken.jpg")
    assert code == 2 and err[-1] == "signcam: error: 1 of 1 images could not be read"


def test_annotated_video_output(tmp_path: Path, capfd: pytest.CaptureFixture, fake_model: None) -> None:
    clip = write_clip(tmp_path / "clip.avi", frames=10)
    code, _, _ = detect(capfd, clip, "--output", tmp_path / "annotated.mp4", "--stride", "2")
    assert code == 0
    capture = cv2.VideoCapture(str(tmp_path / "annotated.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(5.0)
    frames = [capture.read()[1] for _ in range(5)]
    plain = [synthetic_frame(i) for i in range(0, 10, 2)]
    changed = [float(np.abs(a.astype(int) - b).mean()) for a, b in zip(frames, plain, strict=True)]
    assert changed[2] > changed[0] + 1.0  # the confirmed sign (third processed frame on) is drawn


def test_command_line_entry_point_prints_no_traceback(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "signcam", "detect", str(tmp_path / "nothing.mp4")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert run.stderr.strip() == f"signcam: error: no such file or folder: {tmp_path / 'nothing.mp4'}"


def test_real_model_on_gtsdb_scenes_as_stills_and_as_a_clip(tmp_path: Path, capfd: pytest.CaptureFixture,
                                                             gtsdb_dir: Path) -> None:
    held_out = [s for s in load_scenes(gtsdb_dir) if s.number >= 450]
    scenes = [s for s in held_out if s.boxes][:12] + [s for s in held_out if not s.boxes][:1]
    folder = tmp_path / "scenes"
    folder.mkdir()
    for scene in scenes:
        shutil.copy(scene.path, folder)
    code, _, err = detect(capfd, folder, "--json", tmp_path / "stills.jsonl", "--conf", "0.5")
    assert code == 0, err
    stills = read_jsonl(tmp_path / "stills.jsonl")
    assert [Path(line["source"]).name for line in stills] == sorted(s.path.name for s in scenes)
    assert all((line["width"], line["height"]) == (1360, 800) for line in stills)
    truth = {s.path.name: s.boxes for s in scenes}
    right = {}  # scene -> how many of its signs were found in place (pixels of the original image) and named right
    for line in stills:
        name = Path(line["source"]).name
        assert all(found["track_id"] is None and 0.5 <= found["score"] <= 1.0 for found in line["detections"])
        right[name] = sum(any(iou(found["box"], box[:4]) > 0.5 and found["class_id"] == box[4]
                              for found in line["detections"]) for box in truth[name])
    assert sum(right.values()) >= sum(map(len, truth.values())) // 4, right

    # The scenes with a sign found, each held for eight frames: a dashcam clip. Their signs become tracks,
    # confirmed within the hold even though whole frames are searched only every third frame.
    shown = [name for name in sorted(right) if right[name]]
    hold = 8
    with VideoSink(tmp_path / "drive.avi", fps=10.0) as video:
        for name in shown:
            for _ in range(hold):
                video.write(cv2.imread(str(folder / name)))
    code, _, err = detect(capfd, tmp_path / "drive.avi", "--json", tmp_path / "clip.jsonl", "--conf", "0.5")
    assert code == 0, err
    clip = read_jsonl(tmp_path / "clip.jsonl")
    assert len(clip) == hold * len(shown)
    for i, name in enumerate(shown):
        held = clip[hold * i: hold * i + hold]
        assert all(found["track_id"] is not None for line in held for found in line["detections"])
        assert any(iou(found["box"], box[:4]) > 0.5 and found["class_id"] == box[4]
                   for found in held[-1]["detections"] for box in truth[name]), (name, held[-1]["detections"])
    assert err[-1].startswith(f"signcam: {len(clip)} frames in ") and "signs confirmed: " in err[-1]


def test_ctrl_c_while_the_commands_load_is_one_line(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture) -> None:
    def interrupted() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "get_args_parser", interrupted)
    assert cli.main(["detect", "clip.mp4"]) == 130
    assert capsys.readouterr().err == "signcam: interrupted\n"
