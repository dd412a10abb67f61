"""Train SignDet (:mod:`training.signdet`), the network that says where signs are in a full frame.

It learns on GTSDB-format scenes (the tune part only) at half resolution (``--scale``; the app
runs it at 1.2 times that, 0.6, see ``signcam.proposals.UPSCALE``) to mark sign centres with
each sign's size, and writes ``assets/signdet.onnx``. The classifier then names or rejects
each place it marks.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from signcam.cli import (
    non_negative_int,
    number,
    positive_float,
    positive_int,
    probability,
    random_seed,
    thread_count,
)
from signcam.errors import DataError, TrainingError
from signcam.files import check_writable, output_folder, refuse_overwriting
from signcam.gtsdb import HOLDOUT_FROM, VALIDATION_FROM, Scene, load_scenes, select_scenes
from signcam.proposals import DEFAULT_DETECTOR, DETECTOR_METADATA_KEY
from training.device import pick_device
from training.onnx_io import export_onnx, write_onnx
from training.onnx_weights import calibrate_batchnorm, signdet_from_onnx
from training.scene_crops import DEFAULT_ZOOM, SceneCrops, SignPaster
from training.signdet import INPUT_MULTIPLE, STRIDE, SignDet

__all__ = ["add_arguments", "main", "load_data", "train_steps", "export", "crop_side", "MAX_LOG_ZOOM"]

#: Most --zoom either way, in the log: e^2, 7.4 times closer or farther. Zoomed in much further, a
#: crop would cover less than a pixel of the scene.
MAX_LOG_ZOOM = 2.0
#: Batches of training crops whose statistics a finder file's batch norms are measured on (``--init``).
CALIBRATION_BATCHES = 16


def _focal_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    prob = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = target.eq(1).float()
    pos_loss = -torch.log(prob) * (1 - prob) ** 2 * pos
    neg_loss = -torch.log(1 - prob) * prob ** 2 * (1 - target) ** 4 * (1 - pos)
    return (pos_loss.sum() + neg_loss.sum()) / pos.sum().clamp_min(1)


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
    parser.add_argument("--seed", type=random_seed, default=0, help="seeds the initial weights and the crop sampler")
    parser.add_argument("--limit", type=non_negative_int, default=0,
                        help="use only the first N tune scenes (smoke tests; 0: all)")
    parser.add_argument("--threads", type=thread_count, default=0, help="CPU threads (0: torch's default)")
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
    parser.add_argument("--degrade", type=probability, default=0.0,
                        help="share of training crops made worse as a dashcam or webcam does: soft focus, "
                             "motion blur, haze, sensor noise or JPEG compression, at random strengths (0: none)")
    parser.add_argument("--init", type=Path, metavar="MODEL.onnx",
                        help="start from the weights of a finder file fit-detector wrote (to fine-tune it, "
                             "with fewer --steps and a lower --lr), instead of at random")
    parser.add_argument("--validation", action="store_true",
                        help=f"keep tune scenes {VALIDATION_FROM}+ out of training, to compare recipes on them "
                             "with `eval-detect --split val`")


def _check_options(args: argparse.Namespace) -> None:
    """Options that contradict each other, refused before anything loads."""
    if args.paste and args.gtsrb_dir is None:
        raise TrainingError("--paste needs --gtsrb-dir, the GTSRB signs to paste")
    if args.gtsrb_dir is not None and not args.paste:
        raise TrainingError("--gtsrb-dir is read only to paste its signs: give --paste SHARE too, or leave it out")


def _tune_scenes(args: argparse.Namespace, scenes: list[Scene]) -> list[Scene]:
    """The ``scenes`` to train on: the tune ones, less the validation ones with ``--validation``."""
    tune = select_scenes(scenes, "tune")
    if not tune:
        raise DataError(f"{args.gtsdb_dir} holds no tune scene (numbered below {HOLDOUT_FROM}) to train on")
    if args.validation:
        tune = select_scenes(scenes, "train")
        if not tune:
            raise DataError(f"{args.gtsdb_dir} holds no tune scene below {VALIDATION_FROM} to train on: "
                            f"--validation keeps {VALIDATION_FROM}-{HOLDOUT_FROM - 1} out")
    return tune[: args.limit] if args.limit else tune


def load_data(args: argparse.Namespace, scenes: list[Scene]) -> Iterator[tuple[torch.Tensor, ...]]:
    """Endless training batches cut from ``scenes``, with GTSRB signs pasted in under ``--paste``."""
    paster = None
    if args.paste:
        from training.data import load_gtsrb

        gtsrb = load_gtsrb(args.gtsrb_dir, "train")
        paster = SignPaster(gtsrb.images.permute(0, 2, 3, 1).numpy(), gtsrb.labels.numpy(), args.paste)
    data = SceneCrops(scenes, args.scale, args.crop, args.seed, args.batch_size, args.zoom, args.balanced,
                      paster, args.degrade)
    return iter(torch.utils.data.DataLoader(data, batch_size=None, num_workers=args.workers,
                                            persistent_workers=args.workers > 0))


def train_steps(model: nn.Module, batches: Iterator[tuple[torch.Tensor, ...]], optimizer: torch.optim.Optimizer,
                scheduler: torch.optim.lr_scheduler.LRScheduler, steps: int, device: torch.device) -> None:
    """Train ``model`` for ``steps`` batches of (images, heatmaps, regression targets, centre masks).

    Raises:
        TrainingError: the loss stopped being a finite number (the training diverged).
    """
    bar = tqdm(range(steps), desc="fit-detector", unit="step", dynamic_ncols=True)
    running = None
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


def main(args: argparse.Namespace) -> int:
    _check_options(args)
    scenes = load_scenes(args.gtsdb_dir)
    tune = _tune_scenes(args, scenes)
    # Checked now, not after an hour of training: a folder in the way, one that cannot be written,
    # or a file it reads.
    dataset = [args.gtsdb_dir / "gt.txt", *(scene.path for scene in scenes)]
    refuse_overwriting("--output", args.output, dataset)
    device = pick_device(args.device)
    with output_folder(Path(args.output).parent):  # gone again if the run ends before writing into it
        check_writable(args.output)
        return _train(args, tune, device)


def _train(args: argparse.Namespace, tune: list[Scene], device: torch.device) -> int:
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    tuned = _model_to_tune(args) if args.init else None  # before the scenes load: a wrong file fails at once
    batches = load_data(args, tune)
    if tuned is not None:
        # A model file's batch norms are folded away: measure them again on training crops.
        calibrate_batchnorm(tuned, torch.cat([next(batches)[0] for _ in range(CALIBRATION_BATCHES)]),
                            batch_size=args.batch_size)
    # A new network is made after the data, as before --init was added: earlier seeds give the same weights.
    model = (tuned if tuned is not None else SignDet()).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=args.steps, pct_start=0.1)
    started = time.time()
    train_steps(model, batches, optimizer, scheduler, args.steps, device)
    summary = {"scenes": len(tune), "steps": args.steps, "seconds": round(time.time() - started)}
    export(model.cpu().eval(), args, summary)
    return 0


def _model_to_tune(args: argparse.Namespace) -> SignDet:
    """The SignDet ``--init`` names, refused if it saw its frames at another scale."""
    try:
        model, meta = signdet_from_onnx(args.init)
    except FileNotFoundError:
        raise TrainingError(f"--init: no finder file at {args.init}") from None
    if float(meta["scale"]) != args.scale:
        raise TrainingError(f"{args.init} learnt on frames at {meta['scale']} of their size: give --scale "
                            f"{meta['scale']} to fine-tune it")
    print(f"starting from the weights of {args.init}")
    return model


def export(model: SignDet, args: argparse.Namespace, summary: dict) -> None:
    """Write the detector as ONNX with the metadata the runtime reads."""
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
