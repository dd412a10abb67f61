"""SignDet: heatmap targets, and a short training run that the runtime can load."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest
import torch

from signcam.classifier import DEFAULT_MODEL
from signcam.gtsdb import Scene, load_scenes, split_scenes
from signcam.proposals import DEFAULT_DETECTOR, SignDetProposer
from training import detector, scene_crops
from training.cli import main as train_main
from training.detector import crop_side
from training.scene_crops import SceneCrops, SignPaster, heatmap_targets, sign_mask
from training.signdet import STRIDE, SignDet


def _scenes(folder: Path, *numbers: int) -> Path:
    """A GTSDB-format folder of small blank scenes, one sign in each."""
    folder.mkdir(exist_ok=True)
    for number in numbers:
        cv2.imwrite(str(folder / f"{number:05d}.jpg"), np.zeros((64, 96, 3), np.uint8))
    (folder / "gt.txt").write_text("".join(f"{number:05d}.jpg;10;10;30;30;1\n" for number in numbers))
    return folder


@pytest.fixture
def no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fails the test if fit-detector starts cutting crops: what is refused is refused before that."""
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("training started")

    monkeypatch.setattr(detector, "SceneCrops", refuse)


def test_heatmap_target_peaks_at_the_centre_cell_with_the_size() -> None:
    heat, reg, mask = heatmap_targets(np.array([[40, 20, 71, 51]], np.float32), (32, 32))
    iy, ix = np.unravel_index(heat.argmax(), heat.shape)
    assert (iy, ix) == (36 // STRIDE, 56 // STRIDE) and heat.max() == 1.0 and mask.sum() == 1
    assert np.exp(reg[0, iy, ix]) * STRIDE == pytest.approx(32)
    assert 0 <= reg[2, iy, ix] < 1 and heat.dtype == np.float32


def test_boxes_outside_the_grid_are_ignored() -> None:
    heat, _, mask = heatmap_targets(np.array([[500, 500, 520, 520]], np.float32), (16, 16))
    assert heat.max() == 0 and mask.sum() == 0


def test_fit_detector_smoke_run_writes_a_loadable_model(gtsdb_dir: Path, tmp_path: Path) -> None:
    output = tmp_path / "signdet.onnx"
    assert train_main(["fit-detector", "--gtsdb-dir", str(gtsdb_dir), "--limit", "4", "--steps", "20",
                       "--batch-size", "4", "--workers", "1", "--output", str(output)]) == 0
    proposer = SignDetProposer(output)
    boxes = proposer(cv2.imread(str(gtsdb_dir / "00001.jpg")))
    assert boxes.ndim == 2 and boxes.shape[1] == 4


@pytest.mark.parametrize(("class_id", "area"), [(1, np.pi / 4), (12, 0.5), (14, 0.71), (18, 0.43), (13, 0.43)],
                         ids=["round", "diamond", "octagon", "danger", "give way"])
def test_sign_mask_has_the_outline_of_the_class(class_id: int, area: float) -> None:
    mask = sign_mask(class_id, 64)
    assert mask.shape == (64, 64) and 0 <= mask.min() and mask.max() <= 1
    assert mask.mean() == pytest.approx(area, abs=0.04)
    assert mask[32, 32] == 1 and mask[0, 0] == 0
    # Danger signs point up, "give way" points down.
    if class_id in (18, 13):
        assert (mask[6, 32] > mask[58, 32]) == (class_id == 13)


def test_sign_paster_adds_signs_with_their_boxes_and_never_over_another() -> None:
    rng = np.random.default_rng(0)
    signs = np.full((4, 32, 32, 3), 250, np.uint8)  # bright signs on a dark crop
    paster = SignPaster(signs, np.array([1, 12, 14, 18]), share=1.0, sizes=(12, 30))
    patch, existing = np.full((96, 96, 3), 10, np.float32), np.array([[40, 40, 60, 60]], np.float32)
    added = 0
    for _ in range(20):
        out, boxes = paster(patch, existing, rng)
        assert np.array_equal(boxes[:1], existing) and np.array_equal(patch[40:61, 40:61], out[40:61, 40:61])
        for x1, y1, x2, y2 in boxes[1:].astype(int):
            assert out[(y1 + y2) // 2, (x1 + x2) // 2].min() > 200, "a pasted sign's centre is the sign"
            assert 12 <= x2 - x1 + 1 <= 30 and x2 < 96 and y2 < 96
        changed = np.argwhere(out.max(2) > 10)
        covered = np.zeros((96, 96), bool)
        for x1, y1, x2, y2 in boxes[1:].astype(int):
            covered[y1:y2 + 1, x1:x2 + 1] = True
        assert covered[changed[:, 0], changed[:, 1]].all(), "nothing changes outside the pasted boxes"
        added += len(boxes) - 1
    assert added >= 20
    unchanged, boxes = SignPaster(signs, np.array([1, 12, 14, 18]), share=0.0)(patch, existing, rng)
    assert unchanged is patch and boxes is existing


def test_paste_without_gtsrb_is_one_clear_error(gtsdb_dir: Path, capsys: pytest.CaptureFixture) -> None:
    assert train_main(["fit-detector", "--gtsdb-dir", str(gtsdb_dir), "--paste", "0.5", "--steps", "1"]) != 0
    assert "--paste needs --gtsrb-dir" in capsys.readouterr().err


def test_scene_crops_stream_batches_of_the_asked_size(gtsdb_dir: Path) -> None:
    tune, _ = split_scenes(load_scenes(gtsdb_dir))
    crops = SceneCrops(tune[:3], scale=0.5, crop=96, seed=0, batch_size=5)
    images, heat, reg, mask = next(iter(crops))
    assert images.shape == (5, 3, 96, 96) and heat.shape == mask.shape == (5, 24, 24) and reg.shape == (5, 4, 24, 24)
    assert images.min() >= 0 and images.max() <= 255 and torch.equal(images, images.round())


def test_a_crop_larger_than_the_scene_keeps_the_signs_under_their_boxes(tmp_path: Path) -> None:
    """Zoomed out past the scene's edges, the crop is padded, not stretched, so the boxes still fit the signs."""
    scene = np.zeros((64, 96, 3), np.uint8)
    scene[10:31, 40:61] = 255  # a white sign, 21 px, in a black 96x64 scene
    cv2.imwrite(str(tmp_path / "scene.png"), scene)
    crops = SceneCrops([Scene(0, tmp_path / "scene.png", [(40, 10, 60, 30, 1)])], scale=0.5, crop=96, seed=0,
                       zoom=(0.0, 0.0))  # a 192 px square of the scene, brought down to 96
    for _ in range(20):
        patch, boxes = crops.sample()
        grey = patch.mean(2)
        ys, xs = np.nonzero(grey > 0.8 * grey.max() + 0.2 * grey.min())
        assert boxes == pytest.approx(np.array([[xs.min(), ys.min(), xs.max(), ys.max()]]), abs=1.5)


@pytest.mark.parametrize(("balanced", "share"), [(False, 0.1), (True, 0.25)])
def test_balanced_crops_centre_on_rare_classes_more_often(tmp_path: Path, balanced: bool, share: float) -> None:
    """Nine signs of class 1 and one of class 2: drawn by 1/sqrt(count), class 2 gets 1 / (1 + 9/3) of the crops."""
    cv2.imwrite(str(tmp_path / "scene.png"), np.zeros((64, 64, 3), np.uint8))
    scenes = [Scene(n, tmp_path / "scene.png", [(10, 10, 30, 30, 2 if n == 9 else 1)]) for n in range(10)]
    crops = SceneCrops(scenes, scale=0.5, crop=32, seed=0, balanced=balanced)
    centred = [crops._centre_sign(int(crops.rng.integers(10))) for _ in range(4000)]
    scenes_centred = [i for i, box in centred if box is not None]
    assert len(scenes_centred) == pytest.approx(0.7 * 4000, rel=0.05)
    assert scenes_centred.count(9) / len(scenes_centred) == pytest.approx(share, abs=0.03)


@pytest.mark.parametrize("option", [
    ["--batch-size", "0"], ["--steps", "0"], ["--crop", "0"], ["--crop", "7"], ["--crop", "190"],
    ["--scale", "0"], ["--scale", "-0.5"], ["--scale", "1.5"], ["--zoom", "0.6", "-0.35"], ["--zoom", "0", "nan"],
    ["--limit", "-1"], ["--paste", "-2"], ["--paste", "7"], ["--lr", "0"], ["--workers", "-1"], ["--seed", "-1"],
    ["--threads", "10000000000"]],
    ids=lambda option: " ".join(option))
def test_out_of_range_options_are_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               option: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        train_main(["fit-detector", "--gtsdb-dir", str(tmp_path), *option])
    assert exit_info.value.code == 2 and f"argument {option[0]}: " in capsys.readouterr().err


def test_the_crops_it_takes_give_the_network_the_grid_of_the_targets() -> None:
    model = SignDet().eval()
    with torch.no_grad():
        for side in (16, 48, 192):
            assert model(torch.zeros(1, 3, crop_side(str(side)), side)).shape[-2:] == (side // STRIDE,) * 2


@pytest.mark.parametrize(("output", "message"), [("out", "it is a folder"),
                                                 ("file/signdet.onnx", "cannot create folder")],
                         ids=["a folder", "under a file"])
def test_an_output_that_cannot_be_written_is_refused_before_training(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], no_training: None, output: str, message: str) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "file").write_text("")
    assert train_main(["fit-detector", "--gtsdb-dir", str(_scenes(tmp_path / "scenes", 1)),
                       "--output", str(tmp_path / output)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("signcam-train: error: ") and message in err and err.count("\n") == 1
    assert not list(tmp_path.rglob("*.partial*"))


@pytest.mark.parametrize(("number", "options", "message"), [
    (450, [], "holds no tune scene (numbered below 450) to train on"),
    (400, ["--validation"], "holds no tune scene below 375 to train on: --validation keeps 375-449 out")],
    ids=["held-out only", "validation only"])
def test_a_folder_without_scenes_to_train_on_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     no_training: None, number: int, options: list[str],
                                                     message: str) -> None:
    assert train_main(["fit-detector", "--gtsdb-dir", str(_scenes(tmp_path, number)), *options]) == 2
    assert message in capsys.readouterr().err


def test_gtsrb_dir_without_paste_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             no_training: None) -> None:
    assert train_main(["fit-detector", "--gtsdb-dir", str(_scenes(tmp_path, 1)), "--gtsrb-dir", str(tmp_path),
                       "--output", str(tmp_path / "signdet.onnx")]) == 2
    assert "--gtsrb-dir is read only to paste its signs: give --paste" in capsys.readouterr().err


def test_help_shows_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        train_main(["fit-detector", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # unwrapped
    for option, default in [("--output", str(DEFAULT_DETECTOR)), ("--steps", "10000"), ("--batch-size", "32"),
                            ("--lr", "0.003"), ("--crop", "192"), ("--seed", "0"), ("--limit", "0")]:
        section = text.split(f" {option} ", 1)[1].split(" --", 1)[0]
        assert f"(default:{default})" in section.replace(" ", ""), option  # a long path may wrap at a hyphen


def test_a_diverging_run_stops_with_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(detector, "_focal_loss", lambda logits, target: logits.sum() * float("nan"))
    out = tmp_path / "signdet.onnx"
    assert train_main(["fit-detector", "--gtsdb-dir", str(_scenes(tmp_path / "scenes", 0, 1)), "--steps", "3",
                       "--batch-size", "2", "--crop", "32", "--output", str(out)]) == 2
    assert "the training diverged" in capsys.readouterr().err and not out.exists()


def test_a_device_that_is_not_there_leaves_no_output_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "new" / "signdet.onnx"
    assert train_main(["fit-detector", "--gtsdb-dir", str(_scenes(tmp_path / "scenes", 1)), "--device", "gpu",
                       "--output", str(out)]) == 2
    assert "--device gpu" in capsys.readouterr().err and not out.parent.exists()


def _finder_output(path: Path, frames: torch.Tensor) -> np.ndarray:
    session = ort.InferenceSession(str(path.with_suffix(".onnx")))
    return session.run(None, {session.get_inputs()[0].name: frames.numpy()})[0]


def test_init_fine_tunes_the_finder_in_the_file(tmp_path: Path) -> None:
    """With --init the run starts from the file's weights: at a vanishing learning rate it writes the same finder."""
    scenes = _scenes(tmp_path / "scenes", 0, 1, 2)
    run = ["fit-detector", "--gtsdb-dir", str(scenes), "--steps", "2", "--batch-size", "4", "--crop", "64"]
    assert train_main([*run, "--output", str(tmp_path / "first.onnx")]) == 0
    assert train_main([*run, "--lr", "1e-12", "--seed", "1", "--init", str(tmp_path / "first.onnx"),
                       "--output", str(tmp_path / "tuned.onnx")]) == 0
    assert train_main([*run, "--lr", "1e-12", "--seed", "1", "--output", str(tmp_path / "fresh.onnx")]) == 0
    frames = torch.rand(1, 3, 64, 96) * 255
    first = _finder_output(tmp_path / "first", frames)
    tuned, fresh = (np.abs(_finder_output(tmp_path / name, frames) - first).max() for name in ("tuned", "fresh"))
    assert tuned < 1e-3 < 0.1 < fresh


@pytest.mark.parametrize(("make_init", "message"), [
    (lambda d: d / "missing.onnx", "--init: no finder file at {d}/missing.onnx"),
    (lambda d: DEFAULT_DETECTOR, "learnt on frames at 0.5 of their size: give --scale 0.5 to fine-tune it"),
    (lambda d: DEFAULT_MODEL, "is not a finder that fit-detector wrote")])
def test_an_init_file_that_cannot_be_fine_tuned_is_one_clear_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], no_training: None, make_init, message: str) -> None:
    assert train_main(["fit-detector", "--gtsdb-dir", str(_scenes(tmp_path / "scenes", 1)), "--scale", "0.25",
                       "--init", str(make_init(tmp_path)), "--output", str(tmp_path / "signdet.onnx")]) == 2
    err = capsys.readouterr().err
    assert message.format(d=tmp_path) in err and err.count("\n") == 1


def test_degrade_makes_that_share_of_crops_worse_in_the_scene_s_pixels(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    cv2.imwrite(str(tmp_path / "scene.png"), np.zeros((256, 256, 3), np.uint8))
    scenes = [Scene(0, tmp_path / "scene.png", [(40, 40, 80, 80, 1)])]
    seen = []
    monkeypatch.setattr(scene_crops, "degrade", lambda patch, rng: seen.append(patch.shape) or patch)
    for share in (0.0, 0.4):
        seen.clear()
        crops = SceneCrops(scenes, scale=0.5, crop=64, seed=0, zoom=(0.0, 0.0), degrade=share)
        for _ in range(500):
            crops.sample()
        assert len(seen) == pytest.approx(500 * share, abs=40)
    assert set(seen) == {(128, 128, 3)}  # before it is brought down to the network's 64 px
