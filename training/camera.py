"""What a dashcam or webcam does to a frame: dusk, motion blur, soft focus, noise, haze, compression.

Each effect takes a BGR uint8 image in the camera's own pixels and returns one. Two users:
``benchmarks/degraded.py`` applies each at fixed strengths to score the runtime on worse
footage, and ``fit-detector --degrade`` draws them at random strengths (:func:`degrade`) so
the finder learns to see through them.

Example:
    >>> worse = degrade(patch, np.random.default_rng(0))  # doctest: +SKIP
"""

from __future__ import annotations

import cv2
import numpy as np

from training.augment import jpeg_round_trip

__all__ = ["dusk", "smear", "focus", "noise", "haze", "jpeg", "degrade", "DEGRADE_EFFECTS"]


def _to_8bit(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def dusk(image: np.ndarray, exposure: float, rng: np.random.Generator) -> np.ndarray:
    """Less light: linear intensities times ``exposure``, then shot noise (variance proportional
    to the light) and read noise, both amplified as a camera's gain brings the image back up;
    the result is as dark as the light, as a camera at its gain limit shows it."""
    linear = (image.astype(np.float32) / 255) ** 2.2 * exposure
    full_well = 4000.0  # photo-electrons at white: a small dashcam pixel
    electrons = rng.poisson(linear * full_well).astype(np.float32) + rng.normal(0, 3.0, image.shape)
    return _to_8bit(255 * np.clip(electrons / full_well, 0, 1) ** (1 / 2.2))


def smear(image: np.ndarray, length: float, angle: float = 0.0) -> np.ndarray:
    """Motion blur: each pixel averaged along a line ``length`` px long at ``angle`` radians
    (0: horizontal, as a sign sweeping past a dashcam)."""
    size = max(int(round(length)), 1)
    if angle == 0.0:
        kernel = np.full((1, size), 1 / size, np.float32)
    else:
        side = size | 1  # odd, so the line is centred
        kernel = np.zeros((side, side), np.float32)
        centre, half = (side - 1) / 2, (size - 1) / 2
        dx, dy = half * np.cos(angle), half * np.sin(angle)
        cv2.line(kernel, (round(centre - dx), round(centre - dy)), (round(centre + dx), round(centre + dy)), 1.0)
        kernel /= kernel.sum()
    return cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REPLICATE)


def focus(image: np.ndarray, sigma: float) -> np.ndarray:
    """Soft focus or a smeared windscreen: Gaussian blur of ``sigma`` px."""
    return cv2.GaussianBlur(image, (0, 0), sigma)


def noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Sensor noise: Gaussian, ``sigma`` grey levels, independent per pixel and channel."""
    return _to_8bit(image + rng.normal(0, sigma, image.shape))


def haze(image: np.ndarray, amount: float, level: float = 220.0) -> np.ndarray:
    """Fog or glare: ``amount`` of each pixel is light of grey ``level`` (a scalar, or one per channel)."""
    return _to_8bit(image * (1 - amount) + np.asarray(level, np.float64) * amount)


def jpeg(image: np.ndarray, quality: float) -> np.ndarray:
    """Encoded and decoded as a JPEG of ``quality`` (1-100)."""
    return jpeg_round_trip(image, quality)


#: What ``degrade`` draws from, in the order a camera brings them about, with the strengths it
#: draws: wider than ``benchmarks/degraded.py`` tests, in any direction for the smear, and hazes
#: of any light grey, so that the finder learns the kind of loss rather than the benchmark's settings.
DEGRADE_EFFECTS = {
    "focus": lambda image, rng: focus(image, rng.uniform(0.6, 2.5)),
    "smear": lambda image, rng: smear(image, rng.uniform(3, 15), rng.uniform(0, np.pi)),
    "haze": lambda image, rng: haze(image, rng.uniform(0.15, 0.65), rng.uniform(170, 240, 3)),
    "noise": lambda image, rng: noise(image, rng.uniform(3, 24), rng),
    "jpeg": lambda image, rng: jpeg(image, rng.uniform(15, 70)),
}


def degrade(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``image`` (BGR uint8, the camera's pixels) made worse in one way, or in a third of cases
    two, drawn from :data:`DEGRADE_EFFECTS` at random strengths and applied in a camera's order."""
    names = list(DEGRADE_EFFECTS)
    chosen = set(rng.choice(len(names), 2 if rng.random() < 1 / 3 else 1, replace=False).tolist())
    for i, name in enumerate(names):
        if i in chosen:
            image = DEGRADE_EFFECTS[name](image, rng)
    return image
