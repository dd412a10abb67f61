"""The clips the benchmarks make from stills: each frame's true boxes follow the zoom."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import degraded  # noqa: E402
import distant_signs  # noqa: E402
import make_clip  # noqa: E402
import plot_sweeps  # noqa: E402
from clip_quality import moved_box, run_clips  # noqa: E402
from close_up import found_share  # noqa: E402
from degraded import DEGRADATIONS, miss_causes, score_conditions  # noqa: E402
from diamonds import PRIORITY_ROAD, score  # noqa: E402
from make_clip import fit, zoom_frames  # noqa: E402

from signcam.detection import Detection  # noqa: E402
from signcam.gtsdb import Scene  # noqa: E402
from signcam.pipeline import FrameResult  # noqa: E402
from signcam.sources import Frame  # noqa: E402


def _zoomed_scene() -> tuple[np.ndarray, Scene]:
    """A 40 x 30 "sign" off-centre (class 1), and one in the corner (class 2) that the zoom pushes out."""
    image = np.zeros((200, 300, 3), np.uint8)
    image[40:70, 200:240] = 255
    image[0:20, 0:20] = 255
    return image, Scene(0, Path("scene.png"), [(0, 0, 19, 19, 2), (200, 40, 239, 69, 1)])


def _bright_box(frame: np.ndarray) -> tuple[int, int, int, int]:
    """The box of the off-centre sign's pixels in a zoomed frame."""
    ys, xs = np.nonzero(frame[:, :, 0] > 127)
    sign = xs > 150
    return xs[sign].min(), ys[sign].min(), xs[sign].max(), ys[sign].max()


def test_moved_boxes_cover_the_signs_in_every_zoomed_frame() -> None:
    image, scene = _zoomed_scene()
    frames = list(zoom_frames(image, hold=5, zoom=1.5))
    assert len(frames) == 5
    for frame, matrix in frames:
        *box, class_id = moved_box(scene.boxes[1], matrix, 300, 200)
        assert class_id == 1 and np.allclose(box, _bright_box(frame), atol=1)
    # By the end the corner square is pushed out of the frame (less than 8 px left): no box.
    assert moved_box(scene.boxes[0], frames[0][1], 300, 200) is not None
    assert moved_box(scene.boxes[0], frames[-1][1], 300, 200) is None


def test_a_sign_named_after_another_left_the_frame_is_credited_to_itself(tmp_path: Path) -> None:
    image, scene = _zoomed_scene()
    cv2.imwrite(str(tmp_path / "scene.png"), image)
    scene = Scene(0, tmp_path / "scene.png", scene.boxes)

    class LateEngine:  # names the off-centre sign in the last frame only, once the corner one is gone
        scan_every = 1

        def reset(self) -> None:
            pass

        def process(self, frame: Frame) -> FrameResult:
            found = [Detection(_bright_box(frame.image), 1, 0.9)] if frame.index == 4 else []
            return FrameResult(frame, found)

    report = run_clips(LateEngine(), [scene], hold=5, zoom=1.5)
    assert report["never_named"] == [f"scene.png {scene.boxes[0]}"]
    assert report["frames_to_first_name_mean"] == 4.0


def test_fit_cuts_to_the_aspect_ratio_about_the_centre_then_resizes() -> None:
    image = np.zeros((800, 1360, 3), np.uint8)
    image[390:410, 670:690] = 255  # a square at the centre stays a square at the centre
    out = fit(image, (1280, 720))  # 16:9 from 17:10: 1360 x 765 kept, then shrunk
    ys, xs = np.nonzero(out[:, :, 0] > 127)
    assert out.shape == (720, 1280, 3)
    assert abs(xs.mean() - 639.5) < 1 and abs(ys.mean() - 359.5) < 1
    assert abs((xs.max() - xs.min()) - (ys.max() - ys.min())) <= 1


def two_stills(folder: Path, height: int, width: int) -> None:
    """Two plain images, as a scene folder holds them."""
    for i in range(2):
        cv2.imwrite(str(folder / f"{i:05d}.png"), np.full((height, width, 3), 60 * i, np.uint8))


def test_make_clip_writes_frames_of_the_size_asked(tmp_path: Path) -> None:
    two_stills(tmp_path, 80, 136)
    clip = tmp_path / "clip.avi"
    assert make_clip.main([str(tmp_path), str(clip), "--hold", "3", "--size", "64x48"]) == 0
    video = cv2.VideoCapture(str(clip))
    sizes = []
    while (frame := video.read()[1]) is not None:
        sizes.append(frame.shape)
    assert sizes == [(48, 64, 3)] * 6


def test_make_clip_writes_the_codec_asked(tmp_path: Path) -> None:
    """A VP9 clip costs several times as much to decode as mp4v: the decode-only speed bench compares with."""
    two_stills(tmp_path, 48, 64)
    clip = tmp_path / "clip.webm"
    assert make_clip.main([str(tmp_path), str(clip), "--hold", "2", "--fourcc", "VP90"]) == 0
    video = cv2.VideoCapture(str(clip))
    assert video.get(cv2.CAP_PROP_FOURCC) == cv2.VideoWriter_fourcc(*"VP90")
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 4


@pytest.mark.parametrize(("codec", "message"), [("VP9", "four characters"), ("XXXX", "the writer did not open")])
def test_make_clip_with_a_codec_it_cannot_write_says_so(tmp_path: Path, capsys, codec: str, message: str) -> None:
    two_stills(tmp_path, 48, 64)
    with contextlib.suppress(SystemExit):  # argparse's refusal
        assert make_clip.main([str(tmp_path), str(tmp_path / "clip.webm"), "--fourcc", codec]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_make_clip_of_unreadable_images_says_so(tmp_path: Path, capsys) -> None:
    (tmp_path / "00000.jpg").write_bytes(b"not an image")
    assert make_clip.main([str(tmp_path), str(tmp_path / "clip.avi")]) == 2
    assert "none of the 1 images could be read" in capsys.readouterr().err
    assert not (tmp_path / "clip.avi").exists()


def test_close_up_counts_a_sign_as_found_only_with_its_class_and_can_count_one_class(tmp_path: Path) -> None:
    """A stand-in recognizer that names whatever fills the middle of the frame as class 17."""
    cv2.imwrite(str(tmp_path / "scene.png"), np.zeros((200, 300, 3), np.uint8))
    scene = Scene(0, tmp_path / "scene.png", [(100, 50, 139, 89, 17), (200, 50, 239, 89, 14)])

    def recognizer(frame: np.ndarray) -> list[Detection]:
        h, w = frame.shape[:2]
        return [Detection((w / 2 - 60, h / 2 - 60, w / 2 + 59, h / 2 + 59), 17, 0.9)]

    assert found_share(recognizer, [scene], [120], min_width=30) == {120: 0.5}
    assert found_share(recognizer, [scene], [120], min_width=30, only_class=17) == {120: 1.0}
    assert found_share(recognizer, [scene], [120], min_width=30, only_class=14) == {120: 0.0}


def test_diamond_scores_count_hits_false_alarms_and_box_widths() -> None:
    """A stand-in recognizer: two proposals; the diamond named, a stop sign named, and two false alarms
    (one in empty background, one on the diamond with the stop sign's class)."""
    diamond = (100, 50, 139, 89, PRIORITY_ROAD)

    class StandIn:
        @staticmethod
        def proposer(image: np.ndarray) -> np.ndarray:
            return np.array([[98.0, 48.0, 141.0, 91.0], [10.0, 10.0, 29.0, 29.0]])  # 44 px around the 40 px sign

        def __call__(self, image: np.ndarray) -> list[Detection]:
            return [Detection((101, 51, 138, 88), PRIORITY_ROAD, 0.9), Detection((10, 10, 29, 29), PRIORITY_ROAD, 0.8),
                    Detection((100, 50, 139, 89), 14, 0.8), Detection((200, 50, 239, 89), 14, 0.8)]

    result = score(StandIn(), [([diamond, (200, 50, 239, 89, 14)], np.zeros((200, 300, 3), np.uint8))])
    assert (result["diamonds"], result["named_right"], result["false_alarms"]) == (1, 1, 2)
    assert result["other_signs_named"] == 1
    assert result["candidates_per_frame"] == 2 and result["box_width_ratio"] == [1.1, 1.1, 1.1]


def test_plot_sweeps_rings_the_run_the_rule_picks_and_leaves_out_cut_runs(tmp_path: Path) -> None:
    runs = {"a": {"validation_errors": 5, "validation_log_loss": 0.2, "test": 0.99, "shadow": 0.2},
            "b": {"validation_errors": 5, "validation_log_loss": 0.1, "test": 0.98, "backlight": 0.15},
            "cut": {"validation_errors": 1, "test": 0.97}}
    report = {"runs": runs, "not_complete": {"cut": "stopped early"}}
    assert plot_sweeps.chosen(plot_sweeps.complete_runs(report)) == "b"  # tie on errors: lower log-loss
    assert plot_sweeps.recipe(runs["a"]) == "backlight 0, shadow 0.2"
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(report))
    assert plot_sweeps.main([str(path), "--output", str(tmp_path / "out.png")]) == 0
    assert cv2.imread(str(tmp_path / "out.png")) is not None
    assert plot_sweeps.main([str(tmp_path / "missing.json"), "--output", str(tmp_path / "x.png")]) == 2


def test_plot_sweeps_picks_among_the_candidates_and_names_other_shapes(tmp_path: Path) -> None:
    runs = {"small": {"validation_errors": 7, "validation_log_loss": 0.2, "test": 0.99, "depths": [1, 2, 2, 2]},
            "probe": {"validation_errors": 6, "validation_log_loss": 0.1, "test": 0.997,
                      "widths": [64, 128, 256, 512], "depths": [2, 2, 2, 2]},
            "shipped": {"validation_errors": 9, "test": 0.98, "widths": [16, 32, 64, 128], "depths": [1, 1, 2, 2]}}
    report = {"runs": runs, "candidates": ["small", "shipped"]}
    assert plot_sweeps.chosen(plot_sweeps.candidate_runs(report)) == "small"  # the probe has fewer errors
    assert plot_sweeps.chosen(plot_sweeps.candidate_runs({"runs": runs})) == "probe"
    assert plot_sweeps.recipe(runs["small"]) == "depths 1 2 2 2, backlight 0"
    assert plot_sweeps.recipe(runs["probe"]) == "widths 64 128 256 512, depths 2 2 2 2, backlight 0"
    assert plot_sweeps.recipe(runs["shipped"]) == "backlight 0"
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(report))
    assert plot_sweeps.main([str(path), "--output", str(tmp_path / "out.png")]) == 0


def _textured(seed: int = 0) -> np.ndarray:
    """A scene-like image: smooth shading with sharp-edged blocks, so blur and noise both show."""
    rng = np.random.default_rng(seed)
    image = np.repeat(np.linspace(40, 200, 160)[None, :, None], 120, 0).repeat(3, 2)
    for _ in range(12):
        x, y = rng.integers(0, 140), rng.integers(0, 100)
        image[y:y + 20, x:x + 20] = rng.integers(0, 256, 3)
    return image.astype(np.uint8)


@pytest.mark.parametrize("name", list(DEGRADATIONS))
def test_each_degradation_grows_with_its_strength_and_repeats(name: str) -> None:
    degrade, strengths, *_labels = DEGRADATIONS[name]
    image = _textured()
    outputs = [degrade(image, strength, np.random.default_rng(0)) for strength in strengths]
    for out in outputs:
        assert out.shape == image.shape and out.dtype == np.uint8
    change = [np.abs(out.astype(float) - image).mean() for out in outputs]
    assert 0 < change[0] < change[1] < change[2], f"{name}: {change}"
    again = degrade(image, strengths[1], np.random.default_rng(0))
    assert np.array_equal(again, outputs[1]), "seeded: a run repeats exactly"


def test_dusk_darkens_and_motion_blur_smears_only_along_the_motion() -> None:
    image = _textured()
    means = [DEGRADATIONS["dusk"][0](image, e, np.random.default_rng(0)).mean() for e in (0.5, 0.25, 0.12)]
    assert image.mean() > means[0] > means[1] > means[2]
    stripes = np.zeros((60, 60, 3), np.uint8)
    stripes[::4] = 255  # horizontal lines: a horizontal smear leaves them as they are
    assert np.array_equal(DEGRADATIONS["motion"][0](stripes, 9, np.random.default_rng(0)), stripes)
    assert not np.array_equal(DEGRADATIONS["motion"][0](stripes.transpose(1, 0, 2).copy(), 9,
                                                        np.random.default_rng(0)), stripes.transpose(1, 0, 2))


def test_each_condition_is_scored_on_its_own_degraded_scene(tmp_path: Path) -> None:
    """A stand-in recognizer that names the sign only where the scene is bright: at dusk it turns
    its box down, and in the dark it proposes nothing."""
    image = _textured()
    cv2.imwrite(str(tmp_path / "00000.png"), image)
    scene = Scene(0, tmp_path / "00000.png", [(40, 30, 79, 69, 1)])

    def bright_enough(frame: np.ndarray, keep_rejected: bool = False) -> list[Detection]:
        accepted = frame.mean() > 0.8 * image.mean()
        if frame.mean() < 0.5 * image.mean():
            return []
        return [Detection((40, 30, 79, 69), 1, 0.9, accepted=accepted)] if accepted or keep_rejected else []

    scores = score_conditions(bright_enough, [scene], [("none", None), ("dusk", 0.5), ("dusk", 0.12), ("haze", 0.3)])
    assert [scores[c].tp for c in scores] == [1, 0, 0, 1]
    assert scores["dusk", 0.12].fn == 1
    assert [miss_causes(scores[c]) for c in scores] == [
        {"turned_down": 0, "not_proposed": 0, "misread": 0}, {"turned_down": 1, "not_proposed": 0, "misread": 0},
        {"turned_down": 0, "not_proposed": 1, "misread": 0}, {"turned_down": 0, "not_proposed": 0, "misread": 0}]


def test_distant_signs_shrink_keeps_the_size_and_loses_detail() -> None:
    images = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    assert distant_signs.shrink(images, 32) is images
    small = distant_signs.shrink(images, 8)
    assert small.shape == images.shape and small.dtype == np.uint8
    assert np.abs(np.diff(small.astype(int), axis=2)).mean() < np.abs(np.diff(images.astype(int), axis=2)).mean() / 2


def test_distant_signs_score_counts_only_confident_misreadings() -> None:
    probs = np.zeros((4, 44), np.float32)
    probs[0, 14] = 0.9   # right
    probs[1, 17] = 0.8   # a stop read as no entry, confidently
    probs[2, 17] = 0.5   # the same, unsure: the app would not show it
    probs[3, 17] = 0.75  # and once more
    figures = distant_signs.score(probs, np.array([14, 14, 14, 14]), conf=0.7)
    assert figures["accuracy"] == 0.25 and figures["confident_wrong"] == 0.5
    assert figures["confusions"] == [[14, 17, 3]]


def test_distant_signs_refuses_a_missing_model_or_data_in_one_line(tmp_path: Path, capsys) -> None:
    assert distant_signs.main(["--data-dir", str(tmp_path), "--models", str(tmp_path / "none.onnx")]) == 2
    assert distant_signs.main(["--data-dir", str(tmp_path / "no-gtsrb")]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == f"distant_signs: model file not found: {tmp_path / 'none.onnx'}"
    assert lines[1].startswith("distant_signs: GTSRB test split not found")


def test_a_script_shows_its_docstring_as_text_with_its_list(capsys) -> None:
    with pytest.raises(SystemExit):
        degraded.main(["--help"])
    lines = capsys.readouterr().out.splitlines()
    assert "- motion: horizontal motion blur 5, 9 and 15 px long, as a sign sweeps past;" in lines
    assert "    python benchmarks/degraded.py ../shared/data/gtsdb-train --split tune --json degraded.json --plot " \
           "degraded.png" in lines
