"""Training crops for SignDet: random crops of GTSDB scenes, signs pasted in, and their targets.

:class:`SceneCrops` streams batches of jittered crops with the heatmap targets of
:func:`heatmap_targets`, some made worse as a camera does (:mod:`training.camera`); a
:class:`SignPaster` adds GTSRB signs cut out along their outline (:func:`sign_mask`).

Example:
    >>> crops = SceneCrops(scenes, scale=0.5, crop=192, seed=0)
    >>> images, heat, reg, mask = next(iter(crops))
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
from tqdm import tqdm

from signcam.classes import CLASSES
from signcam.gtsdb import Scene
from training.camera import degrade
from training.signdet import STRIDE

__all__ = ["SceneCrops", "SignPaster", "heatmap_targets", "sign_mask", "DEFAULT_ZOOM"]

#: The range of the natural log of the extra zoom drawn per crop by default (why: beside ``--zoom`` in
#: :func:`training.detector.add_arguments`).
DEFAULT_ZOOM = (-0.35, 0.6)


def heatmap_targets(boxes: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Targets on the output grid for boxes (x1, y1, x2, y2) in input pixels.

    Returns:
        heat (H x W), regression (4 x H x W: log w, log h, dx, dy) and a mask of centre cells.
    """
    h, w = shape
    heat = np.zeros((h, w), np.float32)
    reg = np.zeros((4, h, w), np.float32)
    mask = np.zeros((h, w), np.float32)
    ys, xs = np.mgrid[0:h, 0:w]
    for x1, y1, x2, y2 in boxes:
        bw, bh = (x2 - x1 + 1) / STRIDE, (y2 - y1 + 1) / STRIDE
        cx, cy = (x1 + x2 + 1) / 2 / STRIDE, (y1 + y2 + 1) / 2 / STRIDE
        ix, iy = int(cx), int(cy)
        if not (0 <= ix < w and 0 <= iy < h):
            continue
        sigma = max(min(bw, bh) / 6, 0.6)
        heat = np.maximum(heat, np.exp(-((xs - ix) ** 2 + (ys - iy) ** 2) / (2 * sigma ** 2)))
        reg[:, iy, ix] = (math.log(bw), math.log(bh), cx - ix, cy - iy)
        mask[iy, ix] = 1
    return heat.astype(np.float32), reg, mask


def sign_mask(class_id: int, side: int) -> np.ndarray:
    """The sign's outline as a float mask (0..1) of ``side`` x ``side``: circle, triangle, octagon or diamond."""
    mask = np.zeros((side * 4, side * 4), np.uint8)  # drawn 4x larger, then shrunk: smooth edges
    n = side * 4 - 1
    if class_id == 12:  # priority road
        points = [(n / 2, 0), (n, n / 2), (n / 2, n), (0, n / 2)]
    elif class_id == 13:  # give way
        points = [(0, 0.07 * n), (n, 0.07 * n), (n / 2, 0.93 * n)]
    elif class_id == 14:  # stop
        points = [(n / 2 + n / 2 * math.cos(a), n / 2 + n / 2 * math.sin(a))
                  for a in np.arange(8) * math.pi / 4 + math.pi / 8]
    elif CLASSES[class_id].category == "danger":
        points = [(n / 2, 0.07 * n), (n, 0.93 * n), (0, 0.93 * n)]
    else:
        points = None
    if points is None:
        cv2.circle(mask, (n // 2, n // 2), n // 2, 255, -1, cv2.LINE_AA)
    else:
        cv2.fillPoly(mask, [np.round(np.array(points)).astype(np.int32)], 255, cv2.LINE_AA)
    return cv2.resize(mask, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32) / 255


class SignPaster:
    """Pastes GTSRB signs, cut out along their outline, into training crops (copy-paste augmentation).

    GTSDB's tune scenes hold about 700 signs; GTSRB's training set holds 39,209 crops of
    1,300 physical signs in every light. Pasted at the sizes signs have in road scenes, they
    show the finder many more signs than the scenes alone.

    Args:
        images: GTSRB crops, N x 32 x 32 x 3 uint8 BGR (a border of about 10 % around the sign).
        labels: Their classes.
        share: Share of training crops that get pasted signs (1 to 3 each).
        sizes: Range of the pasted signs' width, network input pixels.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, share: float,
                 sizes: tuple[int, int] = (10, 64)) -> None:
        self.images, self.labels, self.share, self.sizes = images, labels, share, sizes

    def __call__(self, patch: np.ndarray, boxes: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        if self.share <= 0 or rng.random() >= self.share:
            return patch, boxes
        patch, boxes = patch.copy(), [*boxes]
        h, w = patch.shape[:2]
        for _ in range(int(rng.integers(1, 4))):
            side = int(round(math.exp(rng.uniform(*np.log(self.sizes)))))
            x, y = int(rng.integers(0, max(w - side, 1))), int(rng.integers(0, max(h - side, 1)))
            box = np.array([x, y, x + side - 1, y + side - 1], np.float32)
            if any(min(box[2], b[2]) >= max(box[0], b[0]) - 2 and min(box[3], b[3]) >= max(box[1], b[1]) - 2
                   for b in boxes):
                continue  # never over another sign
            k = int(rng.integers(len(self.images)))
            sign = cv2.resize(self.images[k][3:29, 3:29], (side, side), interpolation=cv2.INTER_LINEAR)
            alpha = sign_mask(int(self.labels[k]), side)[..., None]
            region = patch[y:y + side, x:x + side].astype(np.float32)
            patch[y:y + side, x:x + side] = np.round(alpha * sign + (1 - alpha) * region).astype(patch.dtype)
            boxes.append(box)
        return patch, np.array(boxes, np.float32).reshape(-1, 4)


class SceneCrops(torch.utils.data.IterableDataset):
    """Random training crops of half-resolution scenes, with scale and colour jitter.

    Iterating yields endless batches; in a DataLoader each worker draws from its own seed.

    Args:
        scenes: The annotated scenes to cut crops from.
        scale: Frame scale the network sees (0.5: half resolution).
        crop: Side of the square crops, network input pixels.
        seed: Seed of the crop sampler.
        batch_size: Crops per batch.
        zoom: Range of the natural log of the extra scale factor drawn per crop.
        balanced: Centre crops on signs drawn with a weight per class of 1 / sqrt(its count),
            so rarer classes are seen more often without repeating a lone sign endlessly;
            otherwise on a random sign of a random scene.
        paster: Pastes GTSRB signs into some crops (``None``: the scenes' own signs only).
        degrade: Share of crops made worse as a camera does (:func:`training.camera.degrade`),
            in the scene's own pixels, before they are brought to the network's scale.
    """

    def __init__(self, scenes: list[Scene], scale: float, crop: int, seed: int, batch_size: int = 32,
                 zoom: tuple[float, float] = DEFAULT_ZOOM, balanced: bool = True,
                 paster: SignPaster | None = None, degrade: float = 0.0) -> None:
        super().__init__()
        self.seed, self.batch_size, self.paster, self.degrade = seed, batch_size, paster, degrade
        self.rng = np.random.default_rng(seed)
        self.crop, self.scale, self.zoom = crop, scale, zoom
        self.images, self.boxes = [], []
        for scene in tqdm(scenes, desc="loading scenes", unit="scene", leave=False):
            self.images.append(scene.read())
            self.boxes.append(np.array([b[:4] for b in scene.boxes], np.float32).reshape(-1, 4))
        # Every sign as (scene, box), with its weight when drawing the sign a crop is centred on.
        self.signs = [(i, j) for i, scene in enumerate(scenes) for j in range(len(scene.boxes))]
        classes = [scenes[i].boxes[j][4] for i, j in self.signs]
        counts = np.bincount(classes) if classes else np.zeros(0)
        weights = np.array([counts[c] ** -0.5 for c in classes])
        self.sign_weights = weights / weights.sum() if balanced and len(weights) else None

    def _centre_sign(self, i: int) -> tuple[int, np.ndarray | None]:
        """The scene to cut from and the box to centre on (``None``: anywhere), 70 % of crops around a sign."""
        if self.sign_weights is not None:
            if self.rng.random() < 0.7:
                i, j = self.signs[self.rng.choice(len(self.signs), p=self.sign_weights)]
                return i, self.boxes[i][j]
            return i, None
        boxes = self.boxes[i]
        if len(boxes) and self.rng.random() < 0.7:  # mostly crops around a sign
            return i, boxes[self.rng.integers(len(boxes))]
        return i, None

    def sample(self) -> tuple[np.ndarray, np.ndarray]:
        i = int(self.rng.integers(len(self.images)))
        s = self.scale * float(np.exp(self.rng.uniform(*self.zoom)))
        i, centre = self._centre_sign(i)
        image, boxes = self.images[i], self.boxes[i]
        side = int(self.crop / s)
        h, w = image.shape[:2]
        if centre is not None:
            x1, y1, x2, y2 = centre
            cx = self.rng.uniform(x2 - side + 8, x1 - 8) if side > x2 - x1 + 16 else x1
            cy = self.rng.uniform(y2 - side + 8, y1 - 8) if side > y2 - y1 + 16 else y1
            left, top = int(np.clip(cx, 0, max(w - side, 0))), int(np.clip(cy, 0, max(h - side, 0)))
        else:
            left, top = int(self.rng.integers(max(w - side, 1))), int(self.rng.integers(max(h - side, 1)))
        patch = image[top:top + side, left:left + side]
        if patch.shape[:2] != (side, side):  # a crop larger than the scene: grey beyond it, not the scene stretched
            patch = cv2.copyMakeBorder(patch, 0, side - patch.shape[0], 0, side - patch.shape[1],
                                       cv2.BORDER_CONSTANT, value=(128, 128, 128))
        if self.degrade and self.rng.random() < self.degrade:
            patch = degrade(np.ascontiguousarray(patch), self.rng)
        patch = cv2.resize(patch, (self.crop, self.crop), interpolation=cv2.INTER_AREA)
        b = (boxes - [left, top, left, top]) * s
        b = b[(b[:, 2] > 2) & (b[:, 3] > 2) & (b[:, 0] < self.crop - 2) & (b[:, 1] < self.crop - 2)]
        if self.paster is not None:
            patch, b = self.paster(patch, b, self.rng)
        if self.rng.random() < 0.5:  # a mirrored sign is still a sign
            patch = patch[:, ::-1]
            b = np.stack([self.crop - 1 - b[:, 2], b[:, 1], self.crop - 1 - b[:, 0], b[:, 3]], 1)
        # Light: from dusk and backlit shade to glare, with a tint and a gamma.
        patch = patch.astype(np.float32) * np.exp(self.rng.uniform(-1.0, 0.35)) + self.rng.uniform(-25, 25, 3)
        patch = 255 * (np.clip(patch, 0, 255) / 255) ** np.exp(self.rng.uniform(-0.3, 0.3))
        return np.round(patch).astype(np.float32), b.reshape(-1, 4)

    def batch(self, size: int) -> tuple[torch.Tensor, ...]:
        images, heats, regs, masks = [], [], [], []
        grid = (self.crop // STRIDE, self.crop // STRIDE)
        for _ in range(size):
            image, boxes = self.sample()
            heat, reg, mask = heatmap_targets(boxes, grid)
            images.append(image.transpose(2, 0, 1))
            heats.append(heat)
            regs.append(reg)
            masks.append(mask)
        return tuple(torch.from_numpy(np.ascontiguousarray(np.stack(a))) for a in (images, heats, regs, masks))

    def __iter__(self):
        worker = torch.utils.data.get_worker_info()
        if worker is not None:
            self.rng = np.random.default_rng([self.seed, worker.id])
        while True:
            yield self.batch(self.batch_size)
