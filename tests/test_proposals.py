"""Candidate boxes: colour regions and the learned detector's peaks."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from close_up import close_up  # noqa: E402

from signcam.detection import iou_matrix
from signcam.errors import ModelError
from signcam.gtsdb import load_scenes, split_scenes
from signcam.proposals import (
    COARSE_MIN_SIDE,
    DEFAULT_COARSE_DETECTOR,
    DEFAULT_DETECTOR,
    ColourProposer,
    DiamondProposer,
    SignDetProposer,
    UnionProposer,
    default_proposer,
)


def _best_iou(boxes: np.ndarray, box: tuple[int, int, int, int]) -> float:
    return float(iou_matrix(boxes, np.array([box])).max()) if len(boxes) else 0.0


@pytest.mark.parametrize(("colour", "thickness"), [((30, 30, 200), 5), ((200, 80, 20), -1)])
def test_colour_proposer_boxes_a_red_ring_and_a_blue_disc(colour, thickness) -> None:
    frame = np.full((480, 640, 3), (90, 110, 100), np.uint8)
    cv2.circle(frame, (400, 200), 30, colour, thickness)
    assert _best_iou(ColourProposer()(frame), (370, 170, 430, 230)) >= 0.7


def test_colour_proposer_finds_a_ring_merged_with_a_red_wall_by_its_hole() -> None:
    frame = np.full((480, 640, 3), (90, 110, 100), np.uint8)
    frame[150:250, 420:640] = (30, 30, 190)          # a red wall touching the sign
    cv2.circle(frame, (400, 200), 30, (30, 30, 200), 6)
    cv2.circle(frame, (400, 200), 26, (235, 235, 235), -1)
    assert _best_iou(ColourProposer()(frame), (370, 170, 430, 230)) >= 0.5


def test_colour_proposer_on_a_plain_frame_proposes_nothing() -> None:
    assert len(ColourProposer()(np.full((240, 320, 3), 128, np.uint8))) == 0


def _diamond(frame: np.ndarray, centre: tuple[int, int], width: int, core=(20, 190, 235), border=(235, 235, 235),
             edge=(20, 20, 20)) -> tuple[int, int, int, int]:
    """Draws a priority-road sign (black edge, white border, yellow core) and returns its box."""
    cx, cy = centre
    for half, colour in ((width / 2, edge), (width / 2 - 2, border), (width / 2 / 2.08, core)):
        _fill_diamond(frame, centre, half, colour)
    return cx - width // 2, cy - width // 2, cx + width // 2, cy + width // 2


def _fill_diamond(frame: np.ndarray, centre: tuple[int, int], half: float, colour: tuple[int, int, int]) -> None:
    cx, cy = centre
    corners = np.round([(cx - half, cy), (cx, cy - half), (cx + half, cy), (cx, cy + half)]).astype(np.int32)
    cv2.fillPoly(frame, [corners], colour)


@pytest.mark.parametrize(("width", "core"), [(60, (20, 190, 235)), (30, (20, 190, 235)), (48, (10, 30, 45))],
                         ids=["sunlit", "small", "in-shade"])
def test_diamond_proposer_boxes_a_priority_road_sign(width: int, core: tuple[int, int, int]) -> None:
    frame = np.full((480, 640, 3), (90, 110, 100), np.uint8)
    border = (235, 235, 235) if core[2] > 100 else (60, 62, 64)  # in shade the border is dim too
    box = _diamond(frame, (400, 200), width, core, border)
    assert _best_iou(DiamondProposer()(frame), box) >= 0.7


def test_a_diamond_whose_core_fades_at_its_edges_is_boxed_whole() -> None:
    """In shade the core's edges fall under the fixed colour thresholds; its box must not shrink."""
    frame = np.full((480, 640, 3), (60, 62, 64), np.uint8)
    box = _diamond(frame, (300, 240), 80, core=(6, 14, 19), border=(60, 62, 64))  # value 19: under min_value
    _fill_diamond(frame, (300, 240), 0.75 * 40 / 2.08, (10, 30, 45))               # only the middle is brighter
    width = np.ptp(DiamondProposer()(frame)[:, [0, 2]], axis=1) + 1
    assert len(width) == 1 and 0.85 * 80 <= width[0] <= 1.2 * 80
    assert _best_iou(DiamondProposer()(frame), box) >= 0.7


def test_diamond_proposer_needs_a_pale_border_and_a_diamond_shape() -> None:
    frame = np.full((480, 640, 3), (90, 110, 100), np.uint8)
    frame[100:300, 50:250] = (40, 40, 190)                                         # a red wall...
    borderless = _diamond(frame, (150, 200), 60, border=(40, 40, 190), edge=(40, 40, 190))  # ...and a diamond on it
    cv2.rectangle(frame, (380, 170), (440, 230), (235, 235, 235), -1)
    cv2.rectangle(frame, (395, 185), (425, 215), (20, 190, 235), -1)               # a yellow square in white
    assert len(DiamondProposer()(frame)) == 0
    assert _best_iou(DiamondProposer(border_ratio=2.0)(frame), borderless) >= 0.7  # the border is what excludes it


def test_diamond_proposer_finds_diamonds_in_real_scenes(gtsdb_dir: Path) -> None:
    """Tune scenes: the priority-road signs of scenes 8, 39 and 49 (38, 85 and 44 px wide)."""
    scenes = {scene.number: scene for scene in load_scenes(gtsdb_dir)}
    for number in (8, 39, 49):
        box = next(box[:4] for box in scenes[number].boxes if box[4] == 12)
        assert _best_iou(DiamondProposer()(scenes[number].read()), box) >= 0.6


def test_union_proposer_joins_boxes_and_keeps_the_first_grid() -> None:
    first = lambda image: np.array([[0, 0, 9, 9]])  # noqa: E731
    first.grid_px = 80
    union = UnionProposer(first, lambda image: np.zeros((0, 4)), lambda image: [[5, 5, 20, 20], [1, 2, 3, 4]])
    assert union.grid_px == 80
    assert union(np.zeros((32, 32, 3), np.uint8)).tolist() == [[0, 0, 9, 9], [5, 5, 20, 20], [1, 2, 3, 4]]
    assert UnionProposer(DiamondProposer()).grid_px == 1
    with pytest.raises(ValueError, match="at least one"):
        UnionProposer()


@pytest.mark.skipif(not DEFAULT_DETECTOR.is_file(), reason="assets/signdet.onnx not built")
def test_the_runtime_looks_with_the_finder_and_for_diamonds() -> None:
    proposer = default_proposer(threads=1)
    assert [type(p) for p in proposer.proposers] == [SignDetProposer, DiamondProposer]
    assert proposer.grid_px == proposer.proposers[0].grid_px


@pytest.mark.parametrize("content", [None, b"not an onnx file"])
def test_detector_file_errors_are_clear(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "signdet.onnx"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelError, match="detector"):
        SignDetProposer(path)


@pytest.mark.skipif(not DEFAULT_DETECTOR.is_file(), reason="assets/signdet.onnx not built")
def test_detector_finds_most_held_out_signs(gtsdb_dir: Path) -> None:
    """Held-out scenes (never trained on): most signs at least 32 px wide get a box with IoU >= 0.5."""
    _, holdout = split_scenes(load_scenes(gtsdb_dir))
    proposer = SignDetProposer()
    found = total = 0
    for scene in holdout[:60]:
        boxes = proposer(cv2.imread(str(scene.path)))
        assert boxes.shape[1] == 4 and len(boxes) <= proposer.max_peaks * len(proposer.box_scales)
        for x1, y1, x2, y2, _ in scene.boxes:
            if x2 - x1 + 1 >= 32:
                total += 1
                found += _best_iou(boxes, (x1, y1, x2, y2)) >= 0.5
    assert total >= 30 and found / total >= 0.85


@pytest.mark.skipif(not DEFAULT_DETECTOR.is_file(), reason="assets/signdet.onnx not built")
@pytest.mark.parametrize("scale, grid", [(None, 80), (0.5, 32), (1.0, 16), (0.55, 1)])
def test_detector_scale_and_the_grid_it_sees_whole_cells_on(scale: float | None, grid: int) -> None:
    proposer = SignDetProposer(scale=scale)
    assert proposer.scale == pytest.approx(0.6 if scale is None else scale)  # trained at 0.5, run 1.2x
    assert proposer.grid_px == grid
    frame = np.zeros((160, 240, 3), np.uint8)
    assert proposer.heatmap(frame).shape[1:] == (round(160 * proposer.scale / 16) * 16 // proposer.stride,
                                                 round(240 * proposer.scale / 16) * 16 // proposer.stride)


@pytest.mark.skipif(not DEFAULT_DETECTOR.is_file(), reason="assets/signdet.onnx not built")
@pytest.mark.parametrize(("shape", "levels", "runs"), [((800, 1360), 3, 3), ((480, 640), 3, 3), ((800, 1360), 1, 1),
                                                        ((160, 160), 3, 1), ((480, 640), 2, 2)],
                         ids=["frame", "webcam", "one-level", "small-window", "two-levels"])
def test_coarser_levels_run_where_they_have_room_on_the_coarse_finder(
        monkeypatch: pytest.MonkeyPatch, shape: tuple[int, int], levels: int, runs: int) -> None:
    proposer = SignDetProposer(levels=levels)
    calls = []
    run = SignDetProposer._run
    monkeypatch.setattr(SignDetProposer, "_run", staticmethod(lambda session, small: calls.append(
        (session, small.shape)) or run(session, small)))
    proposer(np.zeros((*shape, 3), np.uint8))
    assert len(calls) == runs
    assert [session for session, _ in calls] == [proposer._session] + [proposer._coarse_session] * (runs - 1)
    widths = [size[1] for _, size in calls]
    assert all(b == pytest.approx(a / 2, abs=16) for a, b in zip(widths, widths[1:], strict=False))  # halves
    assert min(calls[-1][1][:2]) >= COARSE_MIN_SIDE or runs == 1


@pytest.mark.skipif(not DEFAULT_COARSE_DETECTOR.is_file(), reason="assets/signdet-coarse.onnx not built")
def test_the_coarse_finder_is_its_own_network_and_optional(tmp_path: Path) -> None:
    both = SignDetProposer()
    assert both.coarse_path == DEFAULT_COARSE_DETECTOR and both._coarse_session is not both._session
    alone = SignDetProposer(coarse_path=None)
    assert alone.coarse_path is None and alone._coarse_session is alone._session
    with pytest.raises(ModelError, match="detector"):
        SignDetProposer(coarse_path=tmp_path / "missing.onnx")


@pytest.mark.skipif(not DEFAULT_DETECTOR.is_file(), reason="assets/signdet.onnx not built")
def test_signs_filling_a_webcam_frame_are_found(gtsdb_dir: Path) -> None:
    """Held-out signs magnified to 200 and 320 px in a 640x480 frame, as a sign held up to a webcam."""
    _, holdout = split_scenes(load_scenes(gtsdb_dir))
    proposer = SignDetProposer()
    found = total = 0
    for scene in holdout:
        image = cv2.imread(str(scene.path))
        for *box, _ in scene.boxes:
            if box[2] - box[0] + 1 < 40:
                continue
            for width in (200, 320):
                frame, sign = close_up(image, tuple(box), width)  # the benchmark's own magnified frame, 640x480
                total += 1
                found += _best_iou(proposer(frame), sign) >= 0.5
        if total >= 40:
            break
    assert total >= 40 and found / total >= 0.8

