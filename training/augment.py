"""Batch augmentation on uint8 BGR tensors, done in torch so it costs little per epoch.

Geometric: rotation, scale, shear, translation and a mild perspective in one warp.
Photometric: brightness, contrast, saturation, colour cast, gamma, blur, noise, low resolution
and small occlusions. Never flips: a mirrored "keep left" is "keep right".

Example:
    >>> aug = Augment(seed=0)
    >>> out = aug(torch.zeros(8, 3, 32, 32, dtype=torch.uint8))
    >>> out.dtype, out.shape
    (torch.float32, torch.Size([8, 3, 32, 32]))
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["Augment"]


@dataclass
class Augment:
    """Random augmentation of a batch; returns float32 in 0..255.

    Args:
        rotate: Max rotation in degrees.
        scale: Max relative zoom in or out.
        shear: Max shear factor.
        translate: Max shift as a fraction of the image side.
        perspective: Max perspective coefficient.
        seed: Seed of the generator, for reproducible runs.
    """

    rotate: float = 12.0
    scale: float = 0.12
    shear: float = 0.12
    translate: float = 0.08
    perspective: float = 0.08
    seed: int = 0

    def __post_init__(self) -> None:
        self.gen = torch.Generator().manual_seed(self.seed)

    def _u(self, n: int, low: float, high: float) -> torch.Tensor:
        return torch.rand(n, generator=self.gen) * (high - low) + low

    def _chance(self, n: int, p: float) -> torch.Tensor:
        return torch.rand(n, generator=self.gen) < p

    def geometric(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        angle = self._u(n, -self.rotate, self.rotate) * math.pi / 180
        zoom = torch.exp(self._u(n, -self.scale, self.scale))
        shear = self._u(n, -self.shear, self.shear)
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        m = torch.zeros(n, 3, 3)
        m[:, 0, 0], m[:, 0, 1] = cos, -sin + shear
        m[:, 1, 0], m[:, 1, 1] = sin, cos
        m[:, 0, 2] = self._u(n, -2 * self.translate, 2 * self.translate)
        m[:, 1, 2] = self._u(n, -2 * self.translate, 2 * self.translate)
        m[:, 2, 0] = self._u(n, -self.perspective, self.perspective)
        m[:, 2, 1] = self._u(n, -self.perspective, self.perspective)
        m[:, 2, 2] = 1
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
        base = torch.stack([xs, ys, torch.ones_like(xs)], -1).reshape(1, -1, 3)
        warped = base @ m.transpose(1, 2)
        grid = (warped[..., :2] / warped[..., 2:]).reshape(n, h, w, 2)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=True)

    def photometric(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        gray = torch.tensor([0.114, 0.587, 0.299]).view(1, 3, 1, 1)  # BGR luma weights
        lum = (x * gray).sum(1, keepdim=True)
        sat = self._u(n, 0.5, 1.5).view(n, 1, 1, 1)
        x = lum + sat * (x - lum)
        # A colour cast (white balance, tinted light): a random mix near the identity.
        cast = torch.eye(3) + self._u(n * 9, -0.08, 0.08).view(n, 3, 3)
        x = torch.einsum("nij,njhw->nihw", cast, x)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        contrast = torch.exp(self._u(n, -0.5, 0.4)).view(n, 1, 1, 1)
        brightness = torch.exp(self._u(n, -0.7, 0.5)).view(n, 1, 1, 1)
        x = ((x - mean) * contrast + mean) * brightness
        x = x.clamp(0, 255)
        gamma = torch.exp(self._u(n, -0.4, 0.4)).view(n, 1, 1, 1)
        x = 255 * (x / 255) ** gamma
        return x

    def degrade(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        low = self._chance(n, 0.3)
        if low.any():
            side = int(self._u(1, 10, 24).item())
            small = F.interpolate(x[low], size=(side, side), mode="area")
            x[low] = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
        blur = self._chance(n, 0.25)
        if blur.any():
            sigma = self._u(int(blur.sum()), 0.4, 1.3).view(-1, 1)
            taps = torch.arange(-2, 3, dtype=torch.float32).view(1, -1)
            k1 = torch.exp(-(taps ** 2) / (2 * sigma ** 2))
            k1 = k1 / k1.sum(1, keepdim=True)
            kernel = (k1[:, :, None] * k1[:, None, :]).repeat_interleave(c, 0).unsqueeze(1)
            sub = x[blur].reshape(1, -1, h, w)
            blurred = F.conv2d(F.pad(sub, (2, 2, 2, 2), mode="reflect"), kernel, groups=kernel.shape[0])
            x[blur] = blurred.reshape(-1, c, h, w)
        noise = self._u(n, 0, 10).view(n, 1, 1, 1) * self._chance(n, 0.5).view(n, 1, 1, 1)
        x = x + noise * torch.randn(x.shape, generator=self.gen)
        occlude = torch.nonzero(self._chance(n, 0.2)).flatten().tolist()
        for i in occlude:
            ow, oh = (int(v) for v in self._u(2, 3, 10))
            ox, oy = (int(v) for v in self._u(2, 0, w - 3))
            x[i, :, oy:oy + oh, ox:ox + ow] = self._u(3, 0, 255).view(3, 1, 1)
        return x.clamp(0, 255)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float()
        x = self.geometric(x)
        x = self.photometric(x)
        return self.degrade(x)
