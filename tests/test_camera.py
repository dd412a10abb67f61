"""What a camera does to a frame (training.camera): each effect does what it says, and degrade draws them."""

from __future__ import annotations

import numpy as np
import pytest

from training import camera


def _dot(side: int = 41) -> np.ndarray:
    """A black frame with one white pixel in the middle."""
    image = np.zeros((side, side, 3), np.uint8)
    image[side // 2, side // 2] = 255
    return image


# 9 px long at 45 degrees spans 9 / sqrt(2), about 7 px, each way.
@pytest.mark.parametrize(("angle", "rows", "cols"), [(0.0, 1, 9), (np.pi / 2, 9, 1), (np.pi / 4, 7, 7)])
def test_a_smear_spreads_a_point_along_its_line(angle: float, rows: int, cols: int) -> None:
    lit = np.nonzero(camera.smear(_dot(), 9, angle)[..., 0])
    assert (np.ptp(lit[0]) + 1, np.ptp(lit[1]) + 1) == (rows, cols)
    assert len(lit[0]) == max(rows, cols)  # one line, not a square


def test_haze_mixes_the_frame_with_light_of_its_level() -> None:
    black = np.zeros((4, 4, 3), np.uint8)
    assert (camera.haze(black, 0.5) == 110).all()
    tinted = camera.haze(black, 0.25, level=np.array([200.0, 220.0, 240.0]))
    assert tinted[0, 0].tolist() == [50, 55, 60]


def test_noise_has_the_asked_spread_and_repeats_with_its_seed() -> None:
    grey = np.full((200, 200, 3), 128, np.uint8)
    noisy = camera.noise(grey, 12, np.random.default_rng(3))
    assert noisy.astype(float).std() == pytest.approx(12, rel=0.05)
    assert np.array_equal(noisy, camera.noise(grey, 12, np.random.default_rng(3)))


def test_degrade_changes_the_frame_in_one_or_two_ways_and_keeps_its_shape() -> None:
    rng = np.random.default_rng(0)
    frame = (np.indices((48, 64)).sum(0) % 2 * 255).astype(np.uint8)[..., None].repeat(3, 2)  # fine checkerboard
    for _ in range(30):
        worse = camera.degrade(frame, rng)
        assert worse.shape == frame.shape and worse.dtype == np.uint8
        assert not np.array_equal(worse, frame)
    assert frame.max() == 255 and frame.min() == 0  # the input is left as it was


def test_degrade_draws_every_effect(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[str] = []
    monkeypatch.setattr(camera, "DEGRADE_EFFECTS", {
        name: (lambda image, rng, name=name: drawn.append(name) or image) for name in camera.DEGRADE_EFFECTS})
    rng = np.random.default_rng(0)
    for _ in range(600):
        camera.degrade(np.zeros((8, 8, 3), np.uint8), rng)
    counts = {name: drawn.count(name) for name in camera.DEGRADE_EFFECTS}
    assert len(drawn) == pytest.approx(600 * 4 / 3, rel=0.06)  # two effects in a third of the frames
    assert all(count == pytest.approx(len(drawn) / 5, rel=0.2) for count in counts.values()), counts
