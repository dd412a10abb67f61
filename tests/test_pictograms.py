"""The drawn signs: all different, shaped and coloured like the real ones, cached and read-only."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from signcam.classes import CLASSES, NUM_SIGN_CLASSES
from signcam.pictograms import pictogram, sign_layers, speed_limit_sign


def _dominant_colour(class_id: int) -> str:
    """The most common paint (red, blue, yellow or white) on the sign's face, from hue and saturation."""
    bgr, alpha = sign_layers(class_id, 64)
    hsv = cv2.cvtColor(np.ascontiguousarray(bgr), cv2.COLOR_BGR2HSV)[alpha > 0.99].astype(int)
    hue, sat, val = hsv[:, 0], hsv[:, 1], hsv[:, 2]
    vivid = sat > 120
    counts = {
        "red": int(np.sum(vivid & ((hue < 8) | (hue > 170)))),
        "yellow": int(np.sum(vivid & (hue > 15) & (hue < 35))),
        "blue": int(np.sum(vivid & (hue > 95) & (hue < 130))),
        "white": int(np.sum((sat < 40) & (val > 200))),
    }
    return max(counts, key=counts.get)


# Prohibitory signs: a red ring around a larger white face; danger signs: a broad red rim around a
# white face half covered by the black symbol; the priority road's white border outweighs its yellow.
_EXPECTED = {c.id: {"prohibitory": "white", "danger": "red", "mandatory": "blue"}.get(c.category) for c in CLASSES}
_EXPECTED.update({6: "white", 12: "white", 13: "red", 14: "red", 17: "red", 32: "white", 41: "white", 42: "white"})


@pytest.mark.parametrize("class_id", range(NUM_SIGN_CLASSES))
def test_dominant_colour(class_id: int) -> None:
    assert _dominant_colour(class_id) == _EXPECTED[class_id]


_PAINT = {
    "red": lambda b, g, r: r > 150 and r > g + 80 and r > b + 80,
    "blue": lambda b, g, r: b > 120 and b > r + 80,
    "yellow": lambda b, g, r: r > 200 and g > 150 and b < 80,
    "white": lambda b, g, r: min(b, g, r) > 200,
}


@pytest.mark.parametrize("class_id, pixel, colour", [
    (0, (59, 32), "red"),       # the ring of a speed limit
    (18, (56, 32), "red"),      # a danger triangle's rim, bottom edge
    (13, (9, 32), "red"),       # give way: the top edge of the inverted triangle
    (33, (6, 32), "blue"),
    (12, (32, 32), "yellow"),
    (14, (32, 5), "red"),
    (17, (10, 32), "red"),
    (17, (32, 32), "white"),    # no entry's bar
])
def test_paint_where_it_belongs(class_id: int, pixel: tuple[int, int], colour: str) -> None:
    bgr, _ = sign_layers(class_id, 64)
    assert _PAINT[colour](*(int(v) for v in bgr[pixel])), bgr[pixel]


def test_all_signs_differ() -> None:
    """Every pair differs clearly somewhere (the closest: a grey lorry or car behind the stripes)."""
    images = [pictogram(c, 64).astype(np.int16) for c in range(NUM_SIGN_CLASSES)]
    for a, b in itertools.combinations(range(NUM_SIGN_CLASSES), 2):
        assert np.sum(np.abs(images[a] - images[b]).max(axis=2) > 50) >= 30, (a, b)


@pytest.mark.parametrize("class_id, inside_fraction", [(14, 0.71), (17, 0.785), (18, 0.43), (13, 0.43), (12, 0.5)])
def test_shape_area(class_id: int, inside_fraction: float) -> None:
    """Octagon, disc, triangles and diamond cover the share of the square their shapes should."""
    _, alpha = sign_layers(class_id, 128)
    assert alpha.mean() == pytest.approx(inside_fraction, abs=0.04)
    assert alpha[0, 0] == 0.0 and alpha[64, 64] == 1.0


def test_layers_are_cached_read_only_and_sized() -> None:
    bgr, alpha = sign_layers(2, 48)
    assert (bgr.shape, bgr.dtype, alpha.shape, alpha.dtype) == ((48, 48, 3), np.uint8, (48, 48), np.float32)
    assert sign_layers(2, 48)[0] is bgr
    assert not bgr.flags.writeable and not pictogram(2, 48).flags.writeable
    assert 0.0 <= alpha.min() and alpha.max() <= 1.0


def test_background_shows_outside_the_sign() -> None:
    assert tuple(pictogram(18, 40, (0, 255, 0))[0, 0]) == (0, 255, 0)


def test_speed_limit_sign_draws_any_number() -> None:
    forty = speed_limit_sign(40, 64)[0].astype(int)
    assert np.abs(forty - speed_limit_sign(30, 64)[0]).mean() > 2
    assert np.array_equal(speed_limit_sign(50, 64)[0], sign_layers(2, 64)[0])


def _top_of_first_digit(limit: int) -> float:
    """How much of the first digit's width its top twentieth inks, on a 256 px sign."""
    bgr, alpha = speed_limit_sign(limit, 256)
    ink = ((bgr.max(axis=2) < 100) & (alpha > 0.99)).astype(np.uint8)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(ink)
    first = min(range(1, len(stats)), key=lambda k: stats[k, cv2.CC_STAT_LEFT])
    x, y, w, h = stats[first, :4]
    band = labels[y:y + h // 20, x:x + w] == first
    return band.any(axis=0).mean()


def test_the_three_is_round_on_top_as_on_german_signs() -> None:
    # A flat top with a stroke down from it is the 5's; the 3 of every sharp GTSRB "30" is
    # rounded, and a flat-topped 30 is read as 50 by networks that fit GTSRB closely.
    assert _top_of_first_digit(30) < 0.7 < _top_of_first_digit(50)


def test_stop_letters_are_as_large_as_on_real_signs() -> None:
    # GTSRB's stop signs letter four fifths of the width and a third of the height; smaller, the
    # word blurs into the white bar of "no entry" at the sizes distant signs have.
    bgr, alpha = sign_layers(14, 256)
    white = ((bgr.min(axis=2) > 200) & (alpha > 0.99)).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(white)
    rim = max(range(1, count), key=lambda k: stats[k, cv2.CC_STAT_AREA])
    letters = [k for k in range(1, count) if k != rim and stats[k, cv2.CC_STAT_AREA] > 50]
    left = min(stats[k, cv2.CC_STAT_LEFT] for k in letters)
    right = max(stats[k, cv2.CC_STAT_LEFT] + stats[k, cv2.CC_STAT_WIDTH] for k in letters)
    top = min(stats[k, cv2.CC_STAT_TOP] for k in letters)
    bottom = max(stats[k, cv2.CC_STAT_TOP] + stats[k, cv2.CC_STAT_HEIGHT] for k in letters)
    assert len(letters) == 4
    assert (right - left) / 256 > 0.75 and (bottom - top) / 256 > 0.28


@pytest.mark.parametrize("class_id, size", [(-1, 32), (43, 32), (2, 2)])
def test_invalid_arguments(class_id: int, size: int) -> None:
    with pytest.raises(ValueError):
        sign_layers(class_id, size)
