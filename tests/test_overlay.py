"""The overlay: a new image with coloured boxes, tags, pictograms and the HUD, at every frame size."""

from __future__ import annotations

import time

import numpy as np
import pytest

from signcam.detection import Detection
from signcam.overlay import CATEGORY_COLORS, REJECTED_COLOR, draw_overlay

SIZES = [(480, 640), (720, 1280), (800, 1360), (1080, 1920)]


def _frame(height: int, width: int) -> np.ndarray:
    """A grey road-like frame with a little texture, so drawing shows as a change."""
    rng = np.random.default_rng(0)
    return rng.integers(90, 110, (height, width, 3), dtype=np.uint8)


def _signs(height: int, width: int) -> list[Detection]:
    """One sign per category, placed and sized relative to the frame."""
    s = min(height, width) / 480

    def box(x: float, y: float, side: float) -> tuple[int, int, int, int]:
        return int(x * width), int(y * height), int(x * width + side * s), int(y * height + side * s)

    return [Detection(box(0.5, 0.3, 40), 2, 0.97, track_id=1),     # prohibitory
            Detection(box(0.2, 0.5, 30), 18, 0.81, track_id=2),    # danger
            Detection(box(0.7, 0.6, 50), 38, 0.9),                 # mandatory, a still
            Detection(box(0.9, 0.02, 35), 14, 0.99, track_id=3)]   # other, at the top edge


@pytest.mark.parametrize("height, width", SIZES)
def test_returns_a_new_image_and_leaves_the_input(height: int, width: int) -> None:
    frame = _frame(height, width)
    before = frame.copy()
    out = draw_overlay(frame, _signs(height, width), speed_limit=50, show_rejected=True)
    assert out is not frame and out.shape == frame.shape and out.dtype == np.uint8
    assert np.array_equal(frame, before)
    assert not np.array_equal(out, frame)


@pytest.mark.parametrize("height, width", SIZES)
def test_boxes_in_category_colours(height: int, width: int) -> None:
    signs = _signs(height, width)
    out = draw_overlay(_frame(height, width), signs, show_labels=False)
    for d in signs:
        x1, y1, x2, y2 = d.box
        assert tuple(out[(y1 + y2) // 2, x1]) == CATEGORY_COLORS[d.category]    # left edge
        assert tuple(out[y2, (x1 + x2) // 2]) == CATEGORY_COLORS[d.category]    # bottom edge
        inside = out[y1 + 4:y2 - 3, x1 + 4:x2 - 3]
        assert np.array_equal(inside, _frame(height, width)[y1 + 4:y2 - 3, x1 + 4:x2 - 3])


@pytest.mark.parametrize("height, width", SIZES)
def test_labels_draw_tag_and_pictogram_near_the_box(height: int, width: int) -> None:
    frame = _frame(height, width)
    (sign,) = _signs(height, width)[:1]
    out = draw_overlay(frame, [sign], show_boxes=False)
    changed = np.any(out != frame, axis=2)
    x1, y1, x2, y2 = sign.box
    assert changed[y1:y2 + 1, :x1].any()                    # the pictogram to the left
    assert not changed[:y1].any()                           # nothing above: stacked signs stay visible
    assert not changed[y1:y2 + 1, x1:x2 + 1].any()          # nor on the sign
    tag = out[y1:y2 + 1, x2 + 1:].reshape(-1, 3)            # the tag to the right
    assert (tag == CATEGORY_COLORS["prohibitory"]).all(axis=1).sum() > 50


@pytest.mark.parametrize("height, width", SIZES)
@pytest.mark.parametrize("limit", [None, 30, 130])
def test_hud_only_with_a_limit(height: int, width: int, limit: int | None) -> None:
    frame = _frame(height, width)
    out = draw_overlay(frame, [], speed_limit=limit)
    corner = (slice(0, height // 4), slice(0, width // 5))
    assert np.any(out[corner] != frame[corner]) == (limit is not None)
    if limit is not None:
        b, g, r = (out[corner].reshape(-1, 3).astype(int)).T
        assert np.sum((r > 150) & (r > g + 80) & (r > b + 80)) > 100     # its red ring


def test_nothing_drawn_when_everything_is_off() -> None:
    frame = _frame(480, 640)
    out = draw_overlay(frame, _signs(480, 640), show_boxes=False, show_labels=False)
    assert np.array_equal(out, frame)


@pytest.mark.parametrize("show_rejected", [False, True])
def test_rejected_candidates_only_on_request(show_rejected: bool) -> None:
    frame = _frame(480, 640)
    rejected = Detection((100, 100, 140, 140), 5, 0.3, accepted=False)
    out = draw_overlay(frame, [rejected], show_rejected=show_rejected)
    assert (tuple(out[120, 100]) == REJECTED_COLOR) == show_rejected
    assert np.array_equal(out[:, 200:], frame[:, 200:])


def test_boxes_at_and_beyond_the_edges() -> None:
    frame = _frame(480, 640)
    signs = [Detection((0, 0, 30, 30), 17, 0.9, track_id=1), Detection((620, 450, 660, 490), 35, 0.9, track_id=2),
             Detection((-20, 200, 15, 235), 12, 0.9)]
    out = draw_overlay(frame, signs, speed_limit=100)
    assert out.shape == frame.shape


def test_fast_enough_for_every_frame() -> None:
    frame = _frame(800, 1360)
    signs = _signs(800, 1360)
    draw_overlay(frame, signs, speed_limit=50)       # fills the caches
    start = time.perf_counter()
    for _ in range(20):
        draw_overlay(frame, signs, speed_limit=50)
    # About 1 ms on a laptop; generous, as tests may share the CPU with other work.
    assert (time.perf_counter() - start) / 20 < 0.015
