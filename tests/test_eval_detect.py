"""Scoring detections against GTSDB ground truth."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from signcam.detection import Detection
from signcam.gtsdb import Scene
from training.eval_detect import DetectionScore, describe_error, match_scene


def _scene(*boxes: tuple[int, int, int, int, int]) -> Scene:
    return Scene(0, Path("x.jpg"), list(boxes))


def _scenes(folder: Path, *numbers: int) -> Path:
    """A GTSDB-format folder of small blank scenes, one sign in each."""
    for number in numbers:
        cv2.imwrite(str(folder / f"{number:05d}.jpg"), np.zeros((64, 96, 3), np.uint8))
    (folder / "gt.txt").write_text("".join(f"{number:05d}.jpg;10;10;30;30;1\n" for number in numbers))
    return folder


def test_right_place_and_class_is_a_hit_wrong_class_is_a_miss_and_a_false_alarm() -> None:
    score = DetectionScore()
    scene = _scene((100, 100, 139, 139, 14), (300, 100, 319, 119, 1))
    correct = match_scene([Detection((101, 101, 140, 140), 14, 0.9),    # stop, right
                           Detection((300, 100, 319, 119), 2, 0.8),      # 50 for a 30: wrong class
                           Detection((600, 100, 639, 139), 38, 0.7)],    # nothing there
                          scene, score)
    assert correct == [True, False, False]
    assert (score.tp, score.fp, score.fn, score.located) == (1, 2, 1, 2)
    assert score.precision == pytest.approx(1 / 3) and score.recall == pytest.approx(1 / 2)
    report = score.report()
    assert report["recall_by_group"][">=32"] == (1.0, 1)
    assert report["recall_by_group"]["<24"] == (0.0, 1)
    assert report["recall_by_group"]["other"] == (1.0, 1)
    assert report["errors"] == [
        {"scene": 0, "kind": "missed", "box": [300, 100, 319, 119], "width": 20, "label": "Speed limit 30",
         "read_as": "Speed limit 50", "turned_down": None},
        {"scene": 0, "kind": "false alarm", "box": [300, 100, 319, 119], "label": "Speed limit 50", "score": 0.8,
         "at": "Speed limit 30"},
        {"scene": 0, "kind": "false alarm", "box": [600, 100, 639, 139], "label": "Keep right", "score": 0.7,
         "at": None}]
    assert [describe_error(e) for e in report["errors"]] == [
        "00000 missed Speed limit 30 (20 px), read as Speed limit 50",
        "00000 false alarm Speed limit 50 0.80, on a Speed limit 30 sign",
        "00000 false alarm Keep right 0.70, at 600,100,639,139"]


def test_one_sign_is_matched_once_and_signless_scenes_count_false_alarms() -> None:
    score = DetectionScore()
    twice = [Detection((100, 100, 139, 139), 14, 0.9), Detection((102, 100, 141, 139), 14, 0.8)]
    assert match_scene(twice, _scene((100, 100, 139, 139, 14)), score) == [True, False]
    match_scene([Detection((0, 0, 9, 9), 1, 0.6)], _scene(), score)
    match_scene([], _scene(), score)
    match_scene([], _scene((0, 0, 29, 29, 14)), score)
    assert describe_error(score.errors[-1]) == "00000 missed Stop (30 px), no candidate there"
    turned_down = [Detection((0, 0, 29, 29), 14, 0.4, accepted=False),
                   Detection((1, 0, 30, 29), 15, 0.5, accepted=False),     # the best guess on the sign
                   Detection((200, 0, 229, 29), 1, 0.6, accepted=False)]   # elsewhere
    match_scene([], _scene((0, 0, 29, 29, 14)), score, rejected=turned_down)
    assert score.errors[-1]["turned_down"] == ["No vehicles", 0.5]
    assert describe_error(score.errors[-1]) == "00000 missed Stop (30 px), turned down (best guess No vehicles, 0.50)"
    assert score.signless_scenes == 2 and score.report()["fp_per_signless_scene"] == 0.5
    assert (score.tp, score.fp, score.fn) == (1, 2, 2)


def test_figures_are_rounded_once() -> None:
    """The held-out F1 is 250/271 = 0.92251: 0.9225 in the JSON, and 0.923 printed, not 0.9225 rounded again."""
    score = DetectionScore(tp=125, fp=7, fn=14)
    assert score.report()["f1"] == 0.9225
    assert f"{score.report(digits=None)['f1']:.3f}" == "0.923"


def test_mean_iou_is_over_the_signs_found_only() -> None:
    score = DetectionScore()
    assert score.report()["mean_iou_of_hits"] is None
    match_scene([Detection((101, 101, 140, 140), 14, 0.9),    # 39x39 of 40x40 boxes: 1521 / 1679
                 Detection((0, 0, 39, 39), 14, 0.8),          # exact, but its sign is another class
                 Detection((300, 0, 339, 39), 14, 0.7)],      # nothing there
                _scene((100, 100, 139, 139, 14), (0, 0, 39, 39, 1)), score)
    assert score.report()["mean_iou_of_hits"] == round(1521 / 1679, 4)


def test_low_overlap_is_not_a_hit() -> None:
    score = DetectionScore()
    assert match_scene([Detection((100, 100, 159, 159), 14, 0.9)], _scene((100, 100, 129, 129, 14)), score) == [False]


@pytest.mark.parametrize(("bottom", "hit"), [(49, True), (44, False)], ids=["iou-0.50", "iou-0.45"])
def test_a_hit_needs_an_overlap_of_at_least_half(bottom: int, hit: bool) -> None:
    """Pixels are inclusive: a 100x100 sign boxed by its top 50 rows overlaps it by exactly 0.5."""
    score = DetectionScore()
    assert match_scene([Detection((0, 0, 99, bottom), 14, 0.9)], _scene((0, 0, 99, 99, 14)), score) == [hit]


def test_widths_fall_in_the_bins_by_their_lower_bound() -> None:
    score = DetectionScore()
    widths = (23, 24, 31, 32, 47, 48)
    match_scene([], _scene(*((0, 0, w - 1, w - 1, 14) for w in widths)), score)
    groups = score.report()["recall_by_group"]
    assert (groups["<24"][1], groups["24-48"][1], groups[">=48"][1], groups[">=32"][1]) == (1, 4, 1, 3)


def test_eval_detect_command_scores_real_scenes(gtsdb_dir: Path, tmp_path: Path) -> None:
    """The command end to end on six held-out scenes, with the detector and its threshold given."""
    import json

    from signcam.proposals import DEFAULT_DETECTOR
    from training.cli import main as train_main

    numbers = [f"{n:05d}" for n in range(450, 456)]
    lines = [line for line in (gtsdb_dir / "gt.txt").read_text().splitlines() if line[:5] in numbers]
    (tmp_path / "gt.txt").write_text("\n".join(lines) + "\n")
    for stem in numbers:
        (tmp_path / f"{stem}.jpg").write_bytes((gtsdb_dir / f"{stem}.jpg").read_bytes())
    report_file, errors = tmp_path / "report.json", tmp_path / "errors"
    assert train_main(["eval-detect", str(tmp_path), "--split", "all", "--detector", str(DEFAULT_DETECTOR),
                       "--peak-threshold", "0.2", "--max-peaks", "10", "--vote-iou", "none", "--json", str(report_file),
                       "--save-dir", str(errors)]) == 0
    report = json.loads(report_file.read_text())
    assert report["scenes"] == 6 and report["signs"] == len(lines)
    assert report["recall"] >= 0.5 and report["precision"] >= 0.5
    assert report["vote_iou"] is None and 0.5 <= report["mean_iou_of_hits"] <= 1
    assert sorted(path.name for path in errors.iterdir()) == sorted({f"{e['scene']:05d}.jpg" for e in report["errors"]})


def test_eval_detect_with_a_missing_detector_file_says_so_in_one_line(
        gtsdb_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from training.cli import main as train_main

    missing = tmp_path / "nope.onnx"
    assert train_main(["eval-detect", str(gtsdb_dir), "--detector", str(missing)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("signcam-train: error:") and str(missing) in err and "\n" not in err


def test_a_save_dir_made_for_a_run_whose_model_is_missing_goes_again(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from training.cli import main as train_main

    saved = tmp_path / "saved"
    assert train_main(["eval-detect", str(_scenes(tmp_path, 450)), "--detector", str(tmp_path / "nope.onnx"),
                       "--save-dir", str(saved)]) == 2
    assert "nope.onnx" in capsys.readouterr().err and not saved.exists()


def test_conf_out_of_range_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from training.cli import main as train_main

    with pytest.raises(SystemExit) as exit_info:
        train_main(["eval-detect", str(tmp_path), "--conf", "5"])
    assert exit_info.value.code == 2 and "must be between 0 and 1" in capsys.readouterr().err


def test_a_split_with_no_scene_says_which_split_to_use(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from training.cli import main as train_main

    (tmp_path / "00001.jpg").write_bytes(b"")
    (tmp_path / "gt.txt").write_text("")
    assert train_main(["eval-detect", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "holds no holdout scene" in err and "--split all" in err and err.count("\n") == 1


def test_an_unwritable_json_fails_before_any_scene_is_scored(gtsdb_dir: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    from training.cli import main as train_main

    target = tmp_path / "missing" / "report.json"
    assert train_main(["eval-detect", str(gtsdb_dir), "--json", str(target)]) == 2
    assert capsys.readouterr().err == f"signcam-train: error: cannot write {target}: its folder does not exist\n"


@pytest.mark.parametrize("option", [["--levels", "0"], ["--levels", "-1"], ["--finder-scale", "0"],
                                    ["--finder-scale", "-1"], ["--finder-scale", "20"], ["--vote-iou", "1.5"]],
                         ids=lambda option: " ".join(option))
def test_finder_options_out_of_range_are_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      option: list[str]) -> None:
    from training.cli import main as train_main

    with pytest.raises(SystemExit) as exit_info:
        train_main(["eval-detect", str(tmp_path), *option])
    assert exit_info.value.code == 2 and f"argument {option[0]}: must be " in capsys.readouterr().err


def test_a_vote_iou_that_is_not_a_number_names_the_word_that_turns_voting_off(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from training.cli import main as train_main

    with pytest.raises(SystemExit) as exit_info:
        train_main(["eval-detect", str(tmp_path), "--vote-iou", "off"])
    assert exit_info.value.code == 2 and "'none' turns box voting off" in capsys.readouterr().err


@pytest.mark.parametrize(("option", "target"), [("--save-dir", "."), ("--save-dir", "00450.jpg"),
                                                ("--json", "gt.txt"), ("--json", "00451.jpg")])
def test_outputs_never_replace_the_scenes_or_their_annotations(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, target: str) -> None:
    """Refused before any model loads (the detector named does not exist): nothing is scored."""
    from training.cli import main as train_main

    folder = _scenes(tmp_path, 450, 451)
    before = {path.name: path.read_bytes() for path in folder.iterdir()}
    assert train_main(["eval-detect", str(folder), "--detector", str(tmp_path / "missing.onnx"),
                       option, str(folder / target)]) == 2
    assert f"{option} {folder / target} would overwrite the input" in capsys.readouterr().err
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == before


def test_a_save_dir_that_is_a_file_is_refused_before_any_model_loads(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from training.cli import main as train_main

    folder = _scenes(tmp_path, 450)
    (tmp_path / "a file").write_text("")
    assert train_main(["eval-detect", str(folder), "--detector", str(tmp_path / "missing.onnx"),
                       "--save-dir", str(tmp_path / "a file")]) == 2
    assert capsys.readouterr().err.startswith(f"signcam-train: error: cannot create folder {tmp_path / 'a file'}")
