"""Batch augmentation on uint8 BGR tensors, done in torch so it costs little per epoch.

Geometric: rotation, scale, shear, translation and a mild perspective in one warp.
Context: another sign's edge in the margin above or below (optional), as on a shared pole.
Photometric: brightness (down to night-time darkness), contrast, saturation, colour cast,
gamma, uneven light, a cast shadow with a sharp edge (optional), backlight (a dark sign
against a bright sky, optional), blur, motion blur (optional),
noise, low resolution and small occlusions,
then rounding to whole levels as a camera's 8 bits do, and JPEG compression (optional).
Mixing (optional, :meth:`Augment.mix`): blends of two crops with their labels blended alike.
Never flips: a mirrored "keep left" is "keep right". Runs on the device the generator lives
on (the GPU when training there), except the JPEG codec, which is OpenCV's on the CPU.

Example:
    >>> aug = Augment(seed=0)
    >>> out = aug(torch.zeros(8, 3, 32, 32, dtype=torch.uint8))
    >>> out.dtype, out.shape
    (torch.float32, torch.Size([8, 3, 32, 32]))
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["Augment", "JPEG_QUALITY", "jpeg_round_trip"]

#: JPEG qualities that ``Augment(jpeg=...)`` draws from: below 20 most signs of GTSRB's size are
#: not legible any more, to people either.
JPEG_QUALITY = (20.0, 60.0)


@dataclass
class Augment:
    """Random augmentation of a batch; returns float32 in 0..255 (whole numbers).

    Args:
        rotate: Max rotation in degrees.
        scale: Max relative zoom in or out.
        shear: Max shear factor.
        translate: Max shift as a fraction of the image side.
        perspective: Max perspective coefficient.
        backlight: Share of images turned into a sign against a bright sky: the sign's face
            dark, its surround bright, as when the camera exposes for the sky. At 0 it draws
            no random numbers, so the other augmentations stay as they were.
        shadow: Share of images crossed by the straight edge of a cast shadow (a pole, a
            wall, foliage): one side darkened, the edge sharp to slightly soft. Like
            ``backlight``, at 0 it draws no random numbers.
        motion_blur: Share of images smeared along a straight line at any angle, 2 to
            ``motion_length`` px long, as a sign sweeping past a dashcam at dusk or a webcam
            waved at. Like ``backlight``, at 0 it draws no random numbers.
        motion_length: Longest motion blur, in pixels of the 32 px crop.
        jpeg: Share of images compressed as JPEG, as a dashcam's or a webcam's stream is:
            each is brought to the size the sign had in the frame, encoded at a random
            quality with the 8x8 blocks at a random offset, decoded and brought back. Like
            ``backlight``, at 0 it draws no random numbers.
        jpeg_quality: Range of JPEG qualities (1-100) drawn from.
        jpeg_scale: Range of the sign's size in the frame, relative to the crop (0.5: a
            16 px crop in the frame, whose blocks cover twice as much of the sign).
        neighbour: Share of images with the edge of another crop of the batch in their
            margin below (three in four) or above, as where two signs, or a sign and its
            plate, share one pole. Like ``backlight``, at 0 it draws no random numbers.
        mixup: Share of images that :meth:`mix` blends with another image of the batch.
        seed: Seed of the generator, for reproducible runs.
        device: Where the random numbers and the work live ("cpu" or "cuda").
    """

    rotate: float = 12.0
    scale: float = 0.12
    shear: float = 0.12
    translate: float = 0.08
    perspective: float = 0.08
    backlight: float = 0.0
    shadow: float = 0.0
    motion_blur: float = 0.0
    motion_length: float = 8.0
    jpeg: float = 0.0
    jpeg_quality: tuple[float, float] = JPEG_QUALITY
    jpeg_scale: tuple[float, float] = (1.0, 2.0)
    neighbour: float = 0.0
    mixup: float = 0.0
    seed: int = 0
    device: str | torch.device = "cpu"

    def __post_init__(self) -> None:
        self.device = torch.device(self.device)
        self.gen = torch.Generator(device=self.device).manual_seed(self.seed)

    def _rand(self, *shape: int) -> torch.Tensor:
        return torch.rand(shape, generator=self.gen, device=self.device)

    def _u(self, n: int, low: float, high: float) -> torch.Tensor:
        return self._rand(n) * (high - low) + low

    def _chance(self, n: int, p: float) -> torch.Tensor:
        return self._rand(n) < p

    def _on_share(self, x: torch.Tensor, share: float,
                  change: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """``x`` with a random ``share`` of its images replaced by what ``change`` makes of them.

        The choice is drawn first, then whatever ``change`` draws, and only when some image is
        chosen: a batch that none is chosen from is returned as it is.
        """
        hit = self._chance(len(x), share)
        if not hit.any():
            return x
        x = x.clone()
        x[hit] = change(x[hit])
        return x

    def _unit_grid(self, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Pixel centres as (y, x) in -1..1, the coordinates grid_sample works in."""
        return torch.meshgrid(torch.linspace(-1, 1, h, device=self.device),
                              torch.linspace(-1, 1, w, device=self.device), indexing="ij")

    def geometric(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        angle = self._u(n, -self.rotate, self.rotate) * math.pi / 180
        zoom = torch.exp(self._u(n, -self.scale, self.scale))
        shear = self._u(n, -self.shear, self.shear)
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        m = torch.zeros(n, 3, 3, device=self.device)
        m[:, 0, 0], m[:, 0, 1] = cos, -sin + shear
        m[:, 1, 0], m[:, 1, 1] = sin, cos
        m[:, 0, 2] = self._u(n, -2 * self.translate, 2 * self.translate)
        m[:, 1, 2] = self._u(n, -2 * self.translate, 2 * self.translate)
        m[:, 2, 0] = self._u(n, -self.perspective, self.perspective)
        m[:, 2, 1] = self._u(n, -self.perspective, self.perspective)
        m[:, 2, 2] = 1
        ys, xs = self._unit_grid(h, w)
        base = torch.stack([xs, ys, torch.ones_like(xs)], -1).reshape(1, -1, 3)
        warped = base @ m.transpose(1, 2)
        grid = (warped[..., :2] / warped[..., 2:]).reshape(n, h, w, 2)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=True)

    def neighboured(self, x: torch.Tensor) -> torch.Tensor:
        # GTSRB crops keep a margin around the sign, and where signs are stacked the next one
        # shows in it: the test set's "general danger" with a dark round sign under it is read
        # as "pedestrians" in 25 frames. From a cut 80-95 % of the way down, the rows show the
        # top of another crop's sign (from 5-15 % of its side, past its own margin); or, above
        # a cut 5-20 % of the way down, the bottom of one.
        return self._on_share(x, self.neighbour, lambda chosen: self._with_neighbour(chosen, x))

    def _with_neighbour(self, chosen: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        count, c, h, w = chosen.shape
        other = batch[(self._rand(count) * len(batch)).long().clamp(max=len(batch) - 1)]
        below = self._chance(count, 0.75)
        cut = torch.where(below, self._u(count, 0.8, 0.95), self._u(count, 0.05, 0.2)) * h
        start = torch.where(below, self._u(count, 0.05, 0.15), self._u(count, 0.85, 0.95)) * h
        rows = torch.arange(h, device=self.device).view(1, h)
        source = (rows + (start - cut).round().view(count, 1)).long().clamp(0, h - 1)
        inside = torch.where(below.view(count, 1), rows >= cut.view(count, 1), rows < cut.view(count, 1))
        moved = torch.gather(other, 2, source.view(count, 1, h, 1).expand(count, c, h, w))
        return torch.where(inside.view(count, 1, h, 1), moved, chosen)

    def photometric(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        gray = torch.tensor([0.114, 0.587, 0.299], device=self.device).view(1, 3, 1, 1)  # BGR luma weights
        lum = (x * gray).sum(1, keepdim=True)
        sat = self._u(n, 0.5, 1.5).view(n, 1, 1, 1)
        x = lum + sat * (x - lum)
        # A colour cast (white balance, tinted light): a random mix near the identity.
        cast = torch.eye(3, device=self.device) + self._u(n * 9, -0.08, 0.08).view(n, 3, 3)
        x = torch.einsum("nij,njhw->nihw", cast, x)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        contrast = torch.exp(self._u(n, -0.5, 0.4)).view(n, 1, 1, 1)
        brightness = torch.exp(self._u(n, -1.2, 0.5)).view(n, 1, 1, 1)
        x = ((x - mean) * contrast + mean) * brightness
        # Uneven light: a smooth gain field (a shadow across the sign, a bright sky behind it).
        uneven = self._chance(n, 0.3).view(n, 1, 1, 1)
        field = torch.exp(self._u(n * 9, -0.6, 0.6).view(n, 1, 3, 3))
        field = F.interpolate(field, size=(h, w), mode="bilinear", align_corners=True)
        x = torch.where(uneven, x * field, x)
        if self.shadow:
            x = self._shadowed(x)
        if self.backlight:
            x = self._backlit(x)
        x = x.clamp(0, 255)
        gamma = torch.exp(self._u(n, -0.4, 0.4)).view(n, 1, 1, 1)
        return 255 * (x / 255) ** gamma

    def _backlit(self, x: torch.Tensor) -> torch.Tensor:
        # A soft disc over the sign (crops hold it centred, with a margin) is brought down to a
        # dim level and the rest up to a bright one: the silhouettes that GTSRB's test set reads
        # worst. Gains, not new pixels: the sign's detail survives, faint, as in a real photo.
        n, _, h, w = x.shape
        ys, xs = self._unit_grid(h, w)
        radius = (xs ** 2 + ys ** 2).sqrt().view(1, 1, h, w)
        inside = torch.sigmoid((self._u(n, 0.6, 0.95).view(n, 1, 1, 1) - radius) / 0.06)
        level = x.mean(1, keepdim=True)

        def mean_over(weight: torch.Tensor) -> torch.Tensor:
            return (level * weight).sum((2, 3), keepdim=True) / weight.sum((2, 3), keepdim=True).clamp_min(1e-6)

        dark = (self._u(n, 15, 60).view(n, 1, 1, 1) / mean_over(inside).clamp_min(1)).clamp(max=1)
        bright = (self._u(n, 140, 240).view(n, 1, 1, 1) / mean_over(1 - inside).clamp_min(1)).clamp(1, 4)
        hit = self._chance(n, self.backlight).view(n, 1, 1, 1)
        return torch.where(hit, x * (inside * dark + (1 - inside) * bright), x)

    def _shadowed(self, x: torch.Tensor) -> torch.Tensor:
        # The smooth gain field above cannot make a sharp edge, and a sign half in shade is
        # common on a sunny road: GTSRB's test set has a "pedestrians" track read as
        # "priority at next intersection" that way. A half-plane at any angle and offset.
        n, _, h, w = x.shape
        ys, xs = self._unit_grid(h, w)
        angle = self._u(n, 0, 2 * math.pi).view(n, 1, 1, 1)
        offset = self._u(n, -0.6, 0.6).view(n, 1, 1, 1)
        softness = self._u(n, 0.01, 0.12).view(n, 1, 1, 1)
        shaded = torch.sigmoid((xs * torch.cos(angle) + ys * torch.sin(angle) - offset) / softness)
        gain = self._u(n, 0.2, 0.6).view(n, 1, 1, 1)
        hit = self._chance(n, self.shadow).view(n, 1, 1, 1)
        return torch.where(hit, x * (1 - shaded * (1 - gain)), x)

    def smear(self, x: torch.Tensor) -> torch.Tensor:
        # Isotropic blur cannot stand for motion: a sign passed at dusk is sharp across its
        # motion and smeared along it, and then the classifier turned most of them down (a
        # 9 px smear in a 1360 px frame, benchmarks/degraded.py). Each chosen crop is averaged
        # along a line through its pixels: samples at every half pixel, drawn bilinearly.
        return self._on_share(x, self.motion_blur, self._smeared)

    def _smeared(self, x: torch.Tensor) -> torch.Tensor:
        count, c, h, w = x.shape
        angle = self._u(count, 0, math.pi).view(count, 1, 1, 1)
        length = self._u(count, 2, self.motion_length).view(count, 1, 1, 1)
        ys, xs = self._unit_grid(h, w)
        steps = int(math.ceil(2 * self.motion_length)) + 1
        offsets = torch.linspace(-0.5, 0.5, steps, device=self.device).view(1, steps, 1, 1) * length
        # Offsets in pixels, turned into grid_sample's -1..1 units (align_corners: 2 / (side - 1) per pixel).
        gx = xs.view(1, 1, h, w) + offsets * torch.cos(angle) * 2 / (w - 1)
        gy = ys.view(1, 1, h, w) + offsets * torch.sin(angle) * 2 / (h - 1)
        grid = torch.stack([gx, gy], -1).view(count, steps * h, w, 2)
        samples = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)
        return samples.view(count, c, steps, h, w).mean(2)

    def degrade(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        x = self._on_share(x, 0.3, self._low_resolution)
        x = self._on_share(x, 0.25, self._blurred)
        if self.motion_blur:
            x = self.smear(x)
        noise = self._u(n, 0, 10).view(n, 1, 1, 1) * self._chance(n, 0.5).view(n, 1, 1, 1)
        x = x + noise * torch.randn(x.shape, generator=self.gen, device=self.device)
        # Occlusion: a small rectangle of one colour (a twig, a sticker) on a fifth of the images.
        ys = torch.arange(h, device=self.device).view(1, h, 1)
        xs = torch.arange(w, device=self.device).view(1, 1, w)
        ow, oh = (self._u(n, 3, 10).floor().view(n, 1, 1) for _ in range(2))
        ox, oy = (self._u(n, 0, w - 3).floor().view(n, 1, 1) for _ in range(2))
        inside = (xs >= ox) & (xs < ox + ow) & (ys >= oy) & (ys < oy + oh) & self._chance(n, 0.2).view(n, 1, 1)
        x = torch.where(inside.unsqueeze(1), self._u(n * 3, 0, 255).view(n, 3, 1, 1), x)
        return self.compress(x.clamp(0, 255).round())

    def _low_resolution(self, x: torch.Tensor) -> torch.Tensor:
        # All chosen crops of a batch come down to one size, 10-23 px, and back up.
        side = int(self._u(1, 10, 24).item())
        small = F.interpolate(x, size=(side, side), mode="area")
        return F.interpolate(small, size=x.shape[2:], mode="bilinear", align_corners=False)

    def _blurred(self, x: torch.Tensor) -> torch.Tensor:
        # A 5x5 Gaussian of its own width (sigma 0.4-1.3 px) for each chosen crop.
        count, c, h, w = x.shape
        sigma = self._u(count, 0.4, 1.3).view(-1, 1)
        taps = torch.arange(-2, 3, dtype=torch.float32, device=self.device).view(1, -1)
        k1 = torch.exp(-(taps ** 2) / (2 * sigma ** 2))
        k1 = k1 / k1.sum(1, keepdim=True)
        kernel = (k1[:, :, None] * k1[:, None, :]).repeat_interleave(c, 0).unsqueeze(1)
        blurred = F.conv2d(F.pad(x.reshape(1, -1, h, w), (2, 2, 2, 2), mode="reflect"), kernel, groups=kernel.shape[0])
        return blurred.reshape(count, c, h, w)

    def compress(self, x: torch.Tensor) -> torch.Tensor:
        # Compression throws away what a sign's fine detail needs (the strokes that tell 60
        # from 80, a pictogram's outline) in 8x8 blocks of the frame, not of the crop: a sign
        # 16 px wide in the frame spans two blocks, one 64 px wide eight. At JPEG quality 20
        # the classifier turned down 84 of the tune scenes' signs that the finder had proposed
        # (docs/experiments.md, "JPEG compression").
        if not self.jpeg:
            return x
        return self._on_share(x, self.jpeg, self._compressed)

    def _compressed(self, x: torch.Tensor) -> torch.Tensor:
        count = len(x)
        quality = self._u(count, *self.jpeg_quality).round().int().tolist()
        low, high = (math.log(s) for s in self.jpeg_scale)
        scale = torch.exp(self._u(count, low, high)).tolist()
        offsets = self._rand(count, 2).mul(8).floor().int().tolist()
        crops = x.permute(0, 2, 3, 1).to("cpu", torch.uint8).numpy()
        out = np.empty_like(crops)
        for i, crop in enumerate(crops):
            out[i] = _jpeg_round_trip(crop, quality[i], scale[i], offsets[i])
        return torch.from_numpy(out).to(x.device).permute(0, 3, 1, 2).float()

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        x = images.to(self.device).float()
        if self.neighbour:
            x = self.neighboured(x)
        x = self.geometric(x)
        x = self.photometric(x)
        return self.degrade(x)

    def mix(self, images: torch.Tensor, labels: torch.Tensor,
            num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Blend a share (``mixup``) of ``images`` with other images of the batch.

        Each chosen image keeps at least half of itself (mixup, Zhang et al. 2018); its
        target is blended in the same proportion. With a teacher, the student also learns
        the teacher's reading of images between classes: Beyer et al. (2022, "Knowledge
        distillation: a good teacher is patient and consistent") found that this passes on
        more of a teacher, given long schedules. An image may be drawn as its own partner.

        Returns:
            The images, and class probabilities for them: one-hot where an image was not mixed.
        """
        targets = F.one_hot(labels.to(self.device), num_classes).float()
        n = len(images)
        hit = self._chance(n, self.mixup)
        partner = torch.randperm(n, generator=self.gen, device=self.device)
        keep = torch.where(hit, 0.5 + 0.5 * self._rand(n), torch.ones(n, device=self.device))
        weight = keep.view(-1, 1, 1, 1)
        mixed = weight * images + (1 - weight) * images[partner]
        return mixed, keep[:, None] * targets + (1 - keep[:, None]) * targets[partner]


def _jpeg_round_trip(crop: np.ndarray, quality: int, scale: float, offset: list[int]) -> np.ndarray:
    """``crop`` (H x W x 3 uint8) as it comes out of a JPEG of ``quality``, compressed at ``scale``
    times its size with the block grid shifted by ``offset`` (dy, dx) pixels."""
    h, w = crop.shape[:2]
    side = (max(round(w * scale), 8), max(round(h * scale), 8))
    shrinking = scale < 1
    framed = cv2.resize(crop, side, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    dy, dx = offset
    framed = cv2.copyMakeBorder(framed, dy, 0, dx, 0, cv2.BORDER_REFLECT_101)
    decoded = jpeg_round_trip(framed, quality)[dy:, dx:]
    return cv2.resize(decoded, (w, h), interpolation=cv2.INTER_LINEAR if shrinking else cv2.INTER_AREA)


def jpeg_round_trip(image: np.ndarray, quality: float) -> np.ndarray:
    """``image`` (BGR uint8) encoded and decoded as a JPEG of ``quality`` (1-100), by OpenCV."""
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(round(quality))])
    if not ok:
        raise RuntimeError("OpenCV could not encode a JPEG")
    return cv2.imdecode(data, cv2.IMREAD_COLOR)
