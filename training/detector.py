"""SignDet: a small fully-convolutional network that says where signs are in a full frame.

It learns on frames at half resolution (``--scale``; the app runs it at 1.2 times that, 0.6,
see ``signcam.proposals.UPSCALE``) and predicts, on a grid of stride 4, a heatmap
of sign centres plus each sign's size and sub-cell offset (CenterNet-style, one class:
"a sign"). The classifier then names or rejects each peak. ``signcam-train fit-detector``
trains it on GTSDB-format scenes (the tune part only) and writes ``assets/signdet.onnx``.
"""

from __future__ import annotations

import argparse
import math
import time
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from signcam.classes import CLASSES
from signcam.cli import non_negative_int, number, positive_float, positive_int, probability
from signcam.errors import DataError, TrainingError
from signcam.gtsdb import HOLDOUT_FROM, VALIDATION_FROM, Scene, load_scenes, select_scenes
from signcam.proposals import DEFAULT_DETECTOR, DETECTOR_METADATA_KEY
from signcam.sinks import check_writable
from training.fit import pick_device

__all__ = ["SignDet", "SignPaster", "add_arguments", "main", "heatmap_targets", "sign_mask", "STRIDE",
           "INPUT_MULTIPLE", "crop_side"]

STRIDE = 4  # output cell size, in pixels of the network's input
#: Input sides the network's grids line up for: it halves its input four times, and the merge
#: back to stride 4 adds each stage's map to the one before it (the runtime rounds frames to it too).
INPUT_MULTIPLE = 16
#: Most --zoom either way, in the log: e^2, 7.4 times closer or farther. Zoomed in much further, a
#: crop would cover less than a pixel of the scene.
MAX_LOG_ZOOM = 2.0
#: The range of that log drawn per crop by default (why: beside ``--zoom`` in :func:`add_arguments`).
DEFAULT_ZOOM = (-0.35, 0.6)


def _cbr(c_in: int, c_out: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, padding=dilation, dilation=dilation, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class SignDet(nn.Module):
    """Encoder to stride 16, top-down merge back to stride 4, three heads.

    Output: N x 5 x H/4 x W/4 = heatmap logit, log width, log height (in cells), x and y offset.
    """

    def __init__(self, widths: tuple[int, int, int, int] = (16, 16, 32, 48)) -> None:
        super().__init__()
        w1, w2, w3, w4 = widths
        self.c2 = nn.Sequential(_cbr(3, w1, 2), _cbr(w1, w2, 2), _cbr(w2, w2))
        self.c3 = nn.Sequential(_cbr(w2, w3, 2), _cbr(w3, w3))
        self.c4 = nn.Sequential(_cbr(w3, w4, 2), _cbr(w4, w4, dilation=2))
        self.lat4 = nn.Conv2d(w4, w3, 1)
        self.lat3 = nn.Conv2d(w3, w2, 1)
        self.head = nn.Sequential(_cbr(w2, w2), nn.Conv2d(w2, 5, 1))
        nn.init.constant_(self.head[1].bias[:1], -4.0)  # start with "no sign" everywhere

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - 110.0) / 70.0
        c2 = self.c2(x)
        c3 = self.c3(c2)
        c4 = self.c4(c3)
        p3 = c3 + F.interpolate(self.lat4(c4), size=c3.shape[-2:], mode="nearest")
        p2 = c2 + F.interpolate(self.lat3(p3), size=c2.shape[-2:], mode="nearest")
        return self.head(p2)


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


def _focal_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    prob = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = target.eq(1).float()
    pos_loss = -torch.log(prob) * (1 - prob) ** 2 * pos
    neg_loss = -torch.log(1 - prob) * prob ** 2 * (1 - target) ** 4 * (1 - pos)
    return (pos_loss.sum() + neg_loss.sum()) / pos.sum().clamp_min(1)


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
    """

    def __init__(self, scenes: list[Scene], scale: float, crop: int, seed: int, batch_size: int = 32,
                 zoom: tuple[float, float] = DEFAULT_ZOOM, balanced: bool = True,
                 paster: SignPaster | None = None) -> None:
        super().__init__()
        self.seed, self.batch_size, self.paster = seed, batch_size, paster
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


def crop_side(text: str) -> int:
    """An argparse type: a training crop side, a whole multiple of :data:`INPUT_MULTIPLE`."""
    value = number(text, int)
    if value < INPUT_MULTIPLE or value % INPUT_MULTIPLE:
        raise argparse.ArgumentTypeError(f"must be a multiple of {INPUT_MULTIPLE} (the network halves its input "
                                         f"four times), {INPUT_MULTIPLE} or more, got {value}")
    return value


def _frame_scale(text: str) -> float:
    value = number(text, float)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be above 0 and at most 1 (the scenes' own resolution), got {value}")
    return value


def _log_zoom(text: str) -> float:
    value = number(text, float)
    if not -MAX_LOG_ZOOM <= value <= MAX_LOG_ZOOM:
        raise argparse.ArgumentTypeError(f"must be between {-MAX_LOG_ZOOM:g} and {MAX_LOG_ZOOM:g}, got {value}")
    return value


class _Range(argparse.Action):
    """Stores ``LO HI`` as a tuple; LO above HI is a usage error."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: list[float],
                 option_string: str | None = None) -> None:
        low, high = values
        if low > high:
            parser.error(f"argument {option_string}: LO must not be above HI, got {low:g} {high:g}")
        setattr(namespace, self.dest, (low, high))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gtsdb-dir", type=Path, required=True, help="GTSDB scenes (gt.txt + images)")
    parser.add_argument("--output", type=Path, default=DEFAULT_DETECTOR, help="ONNX file to write")
    parser.add_argument("--steps", type=positive_int, default=10000, help="training steps (one batch each)")
    parser.add_argument("--batch-size", type=positive_int, default=32, help="training crops per step")
    parser.add_argument("--crop", type=crop_side, default=192,
                        help=f"training crop side, network input pixels (a multiple of {INPUT_MULTIPLE})")
    parser.add_argument("--scale", type=_frame_scale, default=0.5,
                        help="frame scale the network sees (above 0, at most 1: full resolution)")
    parser.add_argument("--lr", type=positive_float, default=3e-3, help="peak AdamW learning rate (one-cycle)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the initial weights and the crop sampler")
    parser.add_argument("--limit", type=non_negative_int, default=0,
                        help="use only the first N tune scenes (smoke tests; 0: all)")
    parser.add_argument("--threads", type=non_negative_int, default=0, help="CPU threads (0: torch's default)")
    parser.add_argument("--workers", type=non_negative_int, default=0,
                        help="processes cutting training crops (0: in the loop)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    # Balanced crops with zoom up to e^0.6 beat the earlier sampling (--no-balanced --zoom -0.35
    # 0.35, which made the shipped finder) at equal training: F1 0.967 vs 0.950 on the validation
    # scenes (reports/finder-recipes.json).
    parser.add_argument("--zoom", type=_log_zoom, nargs=2, action=_Range, default=DEFAULT_ZOOM, metavar=("LO", "HI"),
                        help=f"range of the log of the random extra scale per crop ({-MAX_LOG_ZOOM:g} <= LO <= HI "
                             f"<= {MAX_LOG_ZOOM:g})")
    parser.add_argument("--balanced", action=argparse.BooleanOptionalAction, default=True,
                        help="centre crops on rarer sign classes more often (weight 1/sqrt(count))")
    parser.add_argument("--paste", type=probability, default=0.0,
                        help="share of training crops that get GTSRB signs pasted in (needs --gtsrb-dir; 0: none)")
    parser.add_argument("--gtsrb-dir", type=Path, help="GTSRB root (holds gtsrb/GTSRB/...), for --paste")
    parser.add_argument("--validation", action="store_true",
                        help=f"keep tune scenes {VALIDATION_FROM}+ out of training, to compare recipes on them "
                             "with `eval-detect --split val`")


def _check_options(args: argparse.Namespace) -> None:
    """Options that contradict each other, refused before anything loads."""
    if args.paste and args.gtsrb_dir is None:
        raise TrainingError("--paste needs --gtsrb-dir, the GTSRB signs to paste")
    if args.gtsrb_dir is not None and not args.paste:
        raise TrainingError("--gtsrb-dir is read only to paste its signs: give --paste SHARE too, or leave it out")


def _tune_scenes(args: argparse.Namespace) -> list[Scene]:
    """The scenes to train on: the tune ones, less the validation ones with ``--validation``."""
    scenes = load_scenes(args.gtsdb_dir)
    tune = select_scenes(scenes, "tune")
    if not tune:
        raise DataError(f"{args.gtsdb_dir} holds no tune scene (numbered below {HOLDOUT_FROM}) to train on")
    if args.validation:
        tune = select_scenes(scenes, "train")
        if not tune:
            raise DataError(f"{args.gtsdb_dir} holds no tune scene below {VALIDATION_FROM} to train on: "
                             f"--validation keeps {VALIDATION_FROM}-{HOLDOUT_FROM - 1} out")
    return tune[: args.limit] if args.limit else tune


def main(args: argparse.Namespace) -> int:
    _check_options(args)
    tune = _tune_scenes(args)
    # Checked now, not after an hour of training: a folder in the way or one that cannot be written.
    check_writable(args.output, create_folder=True)
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    paster = None
    if args.paste:
        from training.data import load_gtsrb

        gtsrb = load_gtsrb(args.gtsrb_dir, "train")
        paster = SignPaster(gtsrb.images.permute(0, 2, 3, 1).numpy(), gtsrb.labels.numpy(), args.paste)
    data = SceneCrops(tune, args.scale, args.crop, args.seed, args.batch_size, args.zoom, args.balanced,
                      paster)
    batches = iter(torch.utils.data.DataLoader(data, batch_size=None, num_workers=args.workers,
                                               persistent_workers=args.workers > 0))
    model = SignDet().to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=args.steps, pct_start=0.1)
    bar = tqdm(range(args.steps), desc="fit-detector", unit="step", dynamic_ncols=True)
    started, running = time.time(), None
    for step in bar:
        images, heat, reg, mask = (t.to(device, non_blocking=True) for t in next(batches))
        out = model(images)
        loss_heat = _focal_loss(out[:, 0], heat)
        m = mask.unsqueeze(1)
        loss_reg = (F.l1_loss(out[:, 1:] * m, reg * m, reduction="sum")) / mask.sum().clamp_min(1)
        loss = loss_heat + 0.5 * loss_reg
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        value = loss.item()
        if not math.isfinite(value):
            raise TrainingError(f"the loss became {value} at step {step + 1}: the training diverged (try a lower --lr)")
        running = value if running is None else 0.98 * running + 0.02 * value
        bar.set_postfix(loss=f"{running:.3f}", heat=f"{loss_heat.item():.3f}", reg=f"{loss_reg.item():.3f}")
    summary = {"scenes": len(tune), "steps": args.steps, "seconds": round(time.time() - started)}
    export(model.cpu().eval(), args, summary)
    return 0


def export(model: SignDet, args: argparse.Namespace, summary: dict) -> None:
    """Write the detector as ONNX with the metadata the runtime reads."""
    from training.export import export_onnx, write_onnx

    meta = {"scale": args.scale, "stride": STRIDE, "input": "BGR 0..255, N x 3 x H x W",
            "outputs": "heatmap logit, log w, log h (cells), dx, dy", "recipe": {
                k: str(v) for k, v in vars(args).items() if k != "func"}, "training": summary,
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    proto = export_onnx(model, torch.zeros(1, 3, 400, 688), "maps", {"image": {0: "n", 2: "h", 3: "w"}},
                        DETECTOR_METADATA_KEY, meta, "SignDet sign finder: image N x 3 x H x W float32 BGR 0..255 "
                        f"-> maps N x 5 x H/{STRIDE} x W/{STRIDE}. Metadata key '{DETECTOR_METADATA_KEY}' holds the "
                        "details.")
    write_onnx(proto, args.output)
    print(f"wrote {args.output}")
