"""Training data held in memory: GTSRB crops plus positives and negatives cut from GTSDB scenes.

Everything is loaded once into uint8 tensors (N x 3 x 32 x 32, BGR); augmentation
happens on batches (see :mod:`training.augment`).
"""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from signcam.classes import NOT_A_SIGN
from signcam.classifier import crop_patches
from signcam.detection import iou_matrix
from signcam.errors import DataError, user_message
from signcam.gtsdb import Scene
from training.augment import jpeg_round_trip

__all__ = ["TensorSet", "load_gtsrb", "split_by_track", "VAL_EVERY", "cut_scene_crops", "tensor_digest", "GTSRB_LAYOUT"]

GTSRB_LAYOUT = """expected torchvision's GTSRB layout under DATA_DIR:
  DATA_DIR/gtsrb/GTSRB/Training/00000..00042/*.ppm
  DATA_DIR/gtsrb/GTSRB/Final_Test/Images/*.ppm
  DATA_DIR/gtsrb/GT-final_test.csv
(pass --download to fetch it, or extract gtsrb-32.tar.xz into DATA_DIR)"""
#: Seconds a download may wait for the server before it is given up (a stalled proxy would hang it).
DOWNLOAD_TIMEOUT_S = 60


@dataclass
class TensorSet:
    """Images (uint8, N x 3 x S x S, BGR) with labels and, for GTSRB, track ids."""

    images: torch.Tensor
    labels: torch.Tensor
    tracks: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: np.ndarray) -> TensorSet:
        idx = torch.as_tensor(index, dtype=torch.long)
        return TensorSet(self.images[idx], self.labels[idx], None if self.tracks is None else self.tracks[index])

    @staticmethod
    def concat(*parts: TensorSet) -> TensorSet:
        return TensorSet(torch.cat([p.images for p in parts]), torch.cat([p.labels for p in parts]))


def _to_tensor(patches: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(patches.transpose(0, 3, 1, 2)))


def load_gtsrb(root: str | Path, split: str, size: int = 32, download: bool = False) -> TensorSet:
    """Load a GTSRB split through torchvision into memory, resized to ``size``.

    Raises:
        FileNotFoundError: with the expected layout, when the data is not there.
        DataError: when ``download`` fails (e.g. offline).
    """
    from torchvision.datasets import GTSRB

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)  # torchvision's urlopen sets none of its own
    try:
        dataset = GTSRB(str(root), split=split, download=download)
    except (RuntimeError, OSError) as exc:  # OSError: urllib's errors when offline, and timeouts
        if download:
            layout = GTSRB_LAYOUT.rsplit("\n", 1)[0]  # its last line offers --download
            raise DataError(f"downloading GTSRB failed ({exc}); without internet, extract a copy of it "
                            f"(gtsrb-32.tar.xz) into {root} instead.\n{layout}") from None
        raise FileNotFoundError(f"GTSRB {split} split not found in {root}.\n{GTSRB_LAYOUT}") from None
    except (ValueError, KeyError, UnicodeDecodeError) as exc:  # torchvision reading a damaged annotation file
        raise DataError(f"GTSRB {split} split in {root} cannot be read ({user_message(exc)})") from None
    finally:
        socket.setdefaulttimeout(previous)
    # torchvision keeps (path, label) pairs; reading them with OpenCV gives BGR like the app.
    samples = dataset._samples
    if not samples:
        raise FileNotFoundError(f"GTSRB {split} split in {root} is empty.\n{GTSRB_LAYOUT}")
    images = np.empty((len(samples), size, size, 3), np.uint8)
    labels = np.empty(len(samples), np.int64)
    tracks = np.empty(len(samples), np.int64)
    for i, (path, label) in enumerate(tqdm(samples, desc=f"GTSRB {split}", unit="img", leave=False)):
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(f"cannot read {path}")
        if image.shape[:2] != (size, size):  # resized as `signcam classify` resizes a crop
            h, w = image.shape[:2]
            image = crop_patches(image, [(0, 0, w - 1, h - 1)], size, margin=0.0)[0]
        images[i] = image
        labels[i] = label
        name = Path(path).name
        # Training files are TTTTT_FFFFF.ppm: 30 frames of one physical sign per track.
        tracks[i] = label * 100_000 + int(name.split("_")[0]) if "_" in name else -1
    return TensorSet(_to_tensor(images), torch.from_numpy(labels), tracks)


VAL_EVERY = 12


def split_by_track(data: TensorSet, every: int = VAL_EVERY) -> tuple[TensorSet, TensorSet]:
    """Hold out whole tracks (all frames of one physical sign) for validation: one in ``every``.

    Splitting by image would leak near-identical frames into validation. The tracks kept out
    at ``every=12`` are among those kept out at 6, 4, 3 and 2, so a larger split holds the smaller.
    """
    if every < 2:
        raise ValueError(f"every must be at least 2 (one track in {every} leaves none to train on)")
    track_no = data.tracks % 100_000
    val = (track_no % every) == 5 % every
    return data.subset(np.flatnonzero(~val)), data.subset(np.flatnonzero(val))


def _colour_points(image: np.ndarray, rng: np.random.Generator, count: int) -> np.ndarray:
    """Pixels with strong red, blue or yellow: where the colour-based proposals look."""
    b, g, r = (image[..., i].astype(np.int16) for i in range(3))
    chroma = np.maximum.reduce([r - np.maximum(g, b), b - np.maximum(r, g), np.minimum(r, g) - b])
    ys, xs = np.nonzero(chroma[::4, ::4] > 40)
    if len(xs) == 0:
        return np.zeros((0, 2))
    pick = rng.integers(0, len(xs), count)
    return np.stack([xs[pick] * 4, ys[pick] * 4], 1).astype(float)


def _sort_proposals(proposed: np.ndarray, gt: np.ndarray) -> tuple[dict[int, int], np.ndarray]:
    """A proposer's boxes on a sign of ``gt`` (IoU >= 0.6: {box index: sign index}) and off every sign
    (IoU < 0.3: indices); those in between are neither a fair sign crop nor a fair negative."""
    overlap = iou_matrix(proposed, gt)
    best = overlap.max(1) if len(gt) else np.zeros(len(proposed))
    on_sign = {int(i): int(overlap[i].argmax()) for i in np.flatnonzero(best >= 0.6)}
    return on_sign, np.flatnonzero(best < 0.3)


def cut_scene_crops(scenes: list[Scene], seed: int, negatives_per_scene: int = 40,
                    jitters_per_sign: int = 4, size: int = 32,
                    proposer: Callable[[np.ndarray], np.ndarray] | None = None,
                    compressed: tuple[float, float] | None = None) -> tuple[TensorSet, TensorSet]:
    """Positives (jittered sign crops) and "not a sign" negatives cut from full road scenes.

    Negatives are random boxes, boxes around strongly coloured pixels, and badly framed
    boxes around real signs (shifted, far too large or too small), all with IoU < 0.3
    to every annotated sign, so that the classifier learns to reject what the proposal
    stage will feed it. With a ``proposer``, its own boxes are added too: those off every
    sign as negatives (hard negatives), those on a sign (IoU >= 0.6) as that sign.

    Args:
        compressed: With a ``proposer``, also take its boxes on a copy of each scene
            compressed as JPEG at a quality drawn from this range, cut from that copy: the
            false candidates that compression brings (blocky foliage, smudged lights).

    Returns:
        (positives, negatives) as TensorSets.
    """
    rng = np.random.default_rng(seed)
    pos_patches, pos_labels, neg_patches = [], [], []
    for scene in tqdm(scenes, desc="GTSDB crops", unit="scene", leave=False):
        image = scene.read()
        h, w = image.shape[:2]
        gt = np.array([b[:4] for b in scene.boxes], float).reshape(-1, 4)
        boxes, labels = [], []
        for (x1, y1, x2, y2, cls) in scene.boxes:
            bw, bh = x2 - x1 + 1, y2 - y1 + 1
            for _ in range(jitters_per_sign):
                dx, dy = rng.normal(0, 0.05, 2) * (bw, bh)
                s = np.exp(rng.normal(0, 0.06))
                cx, cy = (x1 + x2) / 2 + dx, (y1 + y2) / 2 + dy
                boxes.append((cx - s * bw / 2, cy - s * bh / 2, cx + s * bw / 2, cy + s * bh / 2))
                labels.append(cls)
        proposed = proposer(image) if proposer is not None else np.zeros((0, 4))
        on_sign, off_sign = _sort_proposals(proposed, gt)
        boxes += [tuple(box) for box in proposed[list(on_sign)]]
        labels += [scene.boxes[j][4] for j in on_sign.values()]
        pos_patches.append(crop_patches(image, boxes, size))
        pos_labels += labels

        negatives = []
        centres = np.concatenate([rng.uniform((0, 0), (w, h), (negatives_per_scene // 2, 2)),
                                  _colour_points(image, rng, negatives_per_scene // 2)])
        for cx, cy in centres:
            side = np.exp(rng.uniform(np.log(14), np.log(160)))
            aspect = np.exp(rng.uniform(-0.2, 0.2))
            half_w, half_h = side * aspect / 2, side / aspect / 2
            negatives.append((cx - half_w, cy - half_h, cx + half_w, cy + half_h))
        for x1, y1, x2, y2 in gt:
            bw, bh = x2 - x1 + 1, y2 - y1 + 1
            for _ in range(3):
                s = np.exp(rng.choice([rng.uniform(np.log(0.3), np.log(0.5)), rng.uniform(np.log(1.9), np.log(3))]))
                shift = rng.uniform(-0.6, 0.6, 2) * (bw, bh)
                cx, cy = (x1 + x2) / 2 + shift[0], (y1 + y2) / 2 + shift[1]
                negatives.append((cx - s * bw / 2, cy - s * bh / 2, cx + s * bw / 2, cy + s * bh / 2))
                shift = rng.choice([-1, 1], 2) * rng.uniform(0.6, 1.1, 2) * (bw, bh)
                negatives.append((x1 + shift[0], y1 + shift[1], x2 + shift[0], y2 + shift[1]))
        negatives = np.array(negatives, float).reshape(-1, 4)
        if len(gt):
            negatives = negatives[iou_matrix(negatives, gt).max(1) < 0.3]
        kept = np.concatenate([negatives, proposed[off_sign]])
        neg_patches.append(crop_patches(image, kept, size))
        if proposer is not None and compressed is not None:
            worse = jpeg_round_trip(image, rng.uniform(*compressed))
            worse_proposed = proposer(worse)
            worse_on, worse_off = _sort_proposals(worse_proposed, gt)
            pos_patches.append(crop_patches(worse, worse_proposed[list(worse_on)], size))
            pos_labels += [scene.boxes[j][4] for j in worse_on.values()]
            neg_patches.append(crop_patches(worse, worse_proposed[worse_off], size))

    positives = np.concatenate(pos_patches) if pos_patches else np.zeros((0, size, size, 3), np.uint8)
    negatives = np.concatenate(neg_patches)
    return (TensorSet(_to_tensor(positives), torch.tensor(pos_labels, dtype=torch.long).reshape(-1)),
            TensorSet(_to_tensor(negatives), torch.full((len(negatives),), NOT_A_SIGN, dtype=torch.long)))


def tensor_digest(*parts: TensorSet) -> str:
    """sha256 of the exact pixels and labels a model was trained on."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.images.numpy().tobytes())
        digest.update(part.labels.numpy().tobytes())
    return digest.hexdigest()
