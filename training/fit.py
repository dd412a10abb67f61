"""``signcam-train fit``: train SignNet on GTSRB (+ GTSDB crops for the "not a sign" class).

A progress bar shows the loss, accuracy and time left. After every epoch the checkpoint is
written whole: one dict ``{model, ema, optimizer, lr_scheduler, epoch, args, history}``, plus
the random-number states (``augment_rng``, ``torch_rng``, ``cuda_rng``), the data summary
(``data``) and the network's shape (``arch``), so ``--resume`` continues an interrupted run.
The code is cut as torchvision's reference scripts are: :func:`load_data`,
:func:`train_one_epoch`, :func:`evaluate`.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from signcam.classes import NOT_A_SIGN
from signcam.cli import (
    non_negative_float,
    non_negative_int,
    number,
    positive_float,
    positive_int,
    probability,
    random_seed,
    thread_count,
)
from signcam.errors import DataError, TrainingError
from signcam.files import check_writable, output_folder, write_text_whole
from signcam.gtsdb import HOLDOUT_FROM, load_scenes, select_scenes
from training.augment import JPEG_QUALITY, Augment
from training.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from training.data import VAL_EVERY, TensorSet, cut_scene_crops, load_gtsrb, split_by_track, tensor_digest
from training.device import pick_device
from training.metrics import accepted_share, rejected_share, top1_accuracy
from training.model import (
    CONTRAST_MODES,
    DEFAULT_CONTRAST,
    DEFAULT_DEPTHS,
    DEFAULT_WIDTHS,
    INPUT_SIZE,
    MAX_STAGES,
    SignNet,
    predict,
)
from training.onnx_io import OnnxRunner
from training.onnx_weights import calibrate_batchnorm, signnet_from_onnx

__all__ = ["add_arguments", "main", "load_data", "train_one_epoch", "evaluate"]

#: Training crops whose statistics a model file's batch norms are measured on (``--init model.onnx``).
CALIBRATION_CROPS = 4096


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, required=True, help="GTSRB root (holds gtsrb/GTSRB/...)")
    parser.add_argument("--download", action="store_true", help="download GTSRB into --data-dir first")
    parser.add_argument("--gtsdb-dir", type=Path, help="GTSDB scenes (gt.txt + images) for 'not a sign' crops")
    parser.add_argument("--output-dir", type=Path, default=Path("runs/signnet"), help="checkpoints and history")
    parser.add_argument("--epochs", type=positive_int, default=40, help="length of the learning-rate schedule")
    parser.add_argument("--stop-after", type=non_negative_int, default=0,
                        help="end the run after this many epochs, the schedule still spanning --epochs (0: all)")
    parser.add_argument("--batch-size", type=positive_int, default=256, help="training crops per step")
    parser.add_argument("--lr", type=positive_float, default=4e-3, help="peak AdamW learning rate (one-cycle)")
    parser.add_argument("--weight-decay", type=non_negative_float, default=0.05, help="AdamW weight decay")
    parser.add_argument("--label-smoothing", type=probability, default=0.1, help="cross-entropy label smoothing")
    parser.add_argument("--ema-decay", type=probability, default=0.998,
                        help="weight EMA; the EMA model is exported")
    # The shape options default to None so that an --init run can tell one given from the default.
    parser.add_argument("--widths", type=positive_int, nargs="+",
                        help=f"channels per stage (default: {' '.join(map(str, DEFAULT_WIDTHS))})")
    parser.add_argument("--depths", type=positive_int, nargs="+",
                        help=f"3x3 convolutions per stage (default: {' '.join(map(str, DEFAULT_DEPTHS))})")
    parser.add_argument("--contrast", choices=CONTRAST_MODES,
                        help=f"input normalisation: per image (global), or per image plus local contrast (local); "
                             f"default: {DEFAULT_CONTRAST}")
    # Against a run without it (same CPU, same seed), 0.15 scored higher on validation, on GTSRB's
    # test set and on held-out GTSDB scenes; the shipped model predates it (README, "What falls short").
    parser.add_argument("--backlight", type=probability, default=0.15,
                        help="share of training crops turned into dark signs against a bright sky (0: none)")
    parser.add_argument("--shadow", type=probability, default=0.0,
                        help="share of training crops crossed by the sharp edge of a cast shadow (0: none)")
    parser.add_argument("--motion-blur", type=probability, default=0.0,
                        help="share of training crops smeared along a line, as signs passing at dusk (0: none)")
    parser.add_argument("--neighbour", type=probability, default=0.0,
                        help="share of training crops with the edge of another sign in their margin below or "
                             "above, as on a shared pole (0: none)")
    parser.add_argument("--jpeg", type=probability, default=0.0,
                        help="share of training crops compressed as JPEG at quality 20-60, as a dashcam's "
                             "stream is; with --detector, its candidates on compressed scenes are mined too (0: none)")
    parser.add_argument("--mixup", type=probability, default=0.0,
                        help="share of training crops blended with another crop of the batch, their labels "
                             "blended alike; with --teacher, the teachers read the blend too (0: none)")
    parser.add_argument("--teacher", type=Path, nargs="+", default=[],
                        help="fit checkpoints whose averaged prediction on each augmented batch the network "
                             "also learns from (distillation)")
    parser.add_argument("--distill-weight", type=probability, default=0.5,
                        help="share of the loss that follows the teachers rather than the labels")
    parser.add_argument("--distill-temperature", type=positive_float, default=2.0,
                        help="softmax temperature of the teachers' and the network's distilled predictions")
    parser.add_argument("--val-every", type=_val_every, default=VAL_EVERY,
                        help="keep one GTSRB track in N out of training, for validation (evaluate uses the same)")
    parser.add_argument("--seed", type=random_seed, default=0,
                        help="seeds the initial weights, sampling and augmentation")
    parser.add_argument("--limit", type=non_negative_int, default=0,
                        help="use only N training images, N/4 validation images and N/50 GTSDB scenes "
                             "(smoke tests; 0: all)")
    parser.add_argument("--threads", type=thread_count, default=0, help="CPU threads (0: torch's default)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--detector", type=Path,
                        help="SignDet ONNX: mine its proposals on the GTSDB scenes as hard negatives/positives")
    parser.add_argument("--init", type=Path,
                        help="start from the weights and network shape of a fit checkpoint (its EMA weights) or "
                             "of a model file export wrote, such as assets/signnet.onnx (fine-tuning: the "
                             "network keeps its shape; --val-every must be the one it had)")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run (same recipe) from OUTPUT_DIR/checkpoint.pt")


def _val_every(text: str) -> int:
    value = number(text, int)
    if value < 2:
        raise argparse.ArgumentTypeError(f"must be 2 or more (one track in {value} leaves none to train on)")
    return value


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def synthetic_clutter(count: int, seed: int, size: int = 32) -> TensorSet:
    """Smooth random colour fields and stripes: background the classifier must reject."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(count, 3, 4, 4, generator=gen) * 255
    images = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)
    frequency = torch.randint(1, 6, (count, 1, 1, 1), generator=gen)
    stripes = torch.sin(torch.linspace(0, 6.28, size).view(1, 1, 1, -1) * frequency)
    images = images + 60 * stripes * (torch.rand(count, 1, 1, 1, generator=gen) < 0.5)
    labels = torch.full((count,), NOT_A_SIGN, dtype=torch.long)
    return TensorSet(images.clamp(0, 255).to(torch.uint8), labels)


def load_data(args: argparse.Namespace) -> tuple[TensorSet, TensorSet, dict]:
    """Training and validation sets, and a summary for the model's metadata."""
    gtsrb = load_gtsrb(args.data_dir, "train", download=args.download)
    train, val = split_by_track(gtsrb, args.val_every)
    if args.limit:
        train = train.subset(np.random.default_rng(args.seed).permutation(len(train))[: args.limit])
        val = val.subset(np.random.default_rng(args.seed).permutation(len(val))[: max(args.limit // 4, 1)])
    parts, val_parts = [train], [val]
    summary = {"gtsrb_train": len(train), "gtsrb_val": len(val)}
    if args.gtsdb_dir:
        tune = select_scenes(load_scenes(args.gtsdb_dir), "tune")
        if not tune:
            raise DataError(f"{args.gtsdb_dir} holds no tune scene (numbered below {HOLDOUT_FROM}) to cut crops from")
        if args.limit:
            tune = tune[: max(args.limit // 50, 2)]
        proposer = None
        if args.detector:
            from signcam.proposals import SignDetProposer

            proposer = SignDetProposer(args.detector)
        # Compressed crops make the network name signs from less detail, and more of the finder's
        # false candidates with them: with --jpeg, those on compressed scenes are mined too.
        compressed = JPEG_QUALITY if args.jpeg and proposer is not None else None
        positives, negatives = cut_scene_crops(tune, seed=args.seed, proposer=proposer, compressed=compressed)
        order = np.random.default_rng(args.seed).permutation(len(negatives))
        cut = len(negatives) // 10
        parts += [positives, negatives.subset(order[cut:])]
        val_parts.append(negatives.subset(order[:cut]))
        summary.update(gtsdb_scenes=len(tune), gtsdb_positives=len(positives), gtsdb_negatives=len(negatives))
    clutter = synthetic_clutter(max(len(train) // 20, 16), seed=args.seed)
    parts.append(clutter)
    summary["synthetic_negatives"] = len(clutter)
    train_set, val_set = TensorSet.concat(*parts), TensorSet.concat(*val_parts)
    summary["data_sha256"] = tensor_digest(train_set)
    return train_set, val_set, summary


class Distillation(nn.Module):
    """Loss towards the averaged, softened prediction of trained networks (Hinton et al., 2015).

    The teachers see the same augmented batch as the student, so it learns their reading of
    the hard cases (dark, shaded, blurred) and not only the label.

    Args:
        teachers: Networks in eval mode, or :class:`OnnxRunner` s of them (faster on a CPU).
        temperature: Softens both predictions; the loss is scaled by its square so that its
            gradients keep the size of the cross-entropy's.
    """

    def __init__(self, teachers: list[nn.Module | OnnxRunner], temperature: float) -> None:
        super().__init__()
        for teacher in teachers:
            if isinstance(teacher, nn.Module):
                teacher.requires_grad_(False)
        self.teachers = teachers  # a plain list: the teachers are not the student's to save or move
        self.temperature = temperature

    def forward(self, logits: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        t = self.temperature
        with torch.no_grad():
            target = torch.stack([torch.softmax(m(images) / t, 1) for m in self.teachers]).mean(0)
        return F.kl_div(F.log_softmax(logits / t, 1), target, reduction="batchmean") * t * t


def train_one_epoch(model: nn.Module, ema: torch.optim.swa_utils.AveragedModel, data: TensorSet,
                    augment: Augment, optimizer: torch.optim.Optimizer, scheduler, criterion: nn.Module,
                    batch_size: int, device: torch.device, epoch: int, epochs: int,
                    distillation: Distillation | None = None, distill_weight: float = 0.0) -> dict:
    model.train()
    order = torch.randperm(len(data), generator=augment.gen, device=augment.device).to(data.labels.device)
    steps = len(data) // batch_size
    total_loss = correct = seen = 0
    bar = tqdm(range(steps), desc=f"epoch {epoch + 1}/{epochs}", unit="batch", dynamic_ncols=True)
    for step in bar:
        idx = order[step * batch_size:(step + 1) * batch_size]
        images = augment(data.images[idx])
        labels = data.labels[idx].to(device)
        targets = labels
        if augment.mixup:
            images, targets = augment.mix(images, labels, NOT_A_SIGN + 1)
        logits = model(images)
        loss = criterion(logits, targets)
        if distillation is not None:
            loss = (1 - distill_weight) * loss + distill_weight * distillation(logits, images)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        ema.update_parameters(model)
        value = loss.item()
        if not math.isfinite(value):
            raise TrainingError(f"the loss became {value} in epoch {epoch + 1}, batch {step + 1}: the training "
                                "diverged (try a lower --lr)")
        total_loss += value * len(idx)
        correct += (logits.argmax(1) == labels).sum().item()
        seen += len(idx)
        bar.set_postfix(loss=f"{total_loss / seen:.3f}", acc=f"{correct / seen:.4f}",
                        lr=f"{scheduler.get_last_lr()[0]:.2e}")
    return {"train_loss": total_loss / max(seen, 1), "train_acc": correct / max(seen, 1)}


def evaluate(model: nn.Module, data: TensorSet, device: torch.device) -> dict:
    """Sign accuracy (best of the 43 classes) and the share of negatives taken for a sign."""
    probs = predict(model, data.images, device)
    signs = data.labels != NOT_A_SIGN
    result = {}
    if signs.any():
        result["val_acc"] = top1_accuracy(probs[signs], data.labels[signs])
        result["val_rejected_signs"] = rejected_share(probs[signs])
    if (~signs).any():
        result["val_false_accept"] = accepted_share(probs[~signs])
    return result


def _plain(value: object) -> object:
    """A command-line value as JSON holds it (paths as text)."""
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return str(value) if isinstance(value, Path) else value


# What a resumed run must share with the run it continues. Runs from before an option existed
# are read with the value they had in effect.
_SAME_ON_RESUME = ("epochs", "batch_size", "lr", "seed", "limit", "backlight", "shadow", "motion_blur", "jpeg",
                   "neighbour", "mixup", "teacher", "val_every", "gtsdb_dir", "detector", "widths", "depths",
                   "contrast", "init")
_SHAPE = ("widths", "depths", "contrast")
_BEFORE_THE_OPTION = {"backlight": 0.0, "shadow": 0.0, "motion_blur": 0.0, "jpeg": 0.0, "neighbour": 0.0,
                      "mixup": 0.0, "teacher": [], "val_every": VAL_EVERY}


def _resumable_state(path: Path, recipe: dict, device: torch.device) -> dict:
    """The checkpoint to continue, refused before any data is loaded if its recipe differs."""
    if not path.is_file():
        raise FileNotFoundError(f"--resume: no checkpoint at {path}")
    state = read_checkpoint(path, device)
    saved = {**_BEFORE_THE_OPTION, **json.loads(state["args"])}
    # An --init run's shape is that of its starting network, which "init" already compares; runs from
    # before the recipe recorded it hold fit's default shape there.
    compared = [k for k in _SAME_ON_RESUME if not (recipe["init"] and k in _SHAPE)]
    changed = [k for k in compared if k in saved and saved[k] != recipe[k]]
    if recipe["teacher"] and saved.get("distill_weight") != recipe["distill_weight"]:
        changed.append("distill_weight")
    if changed:
        raise TrainingError(f"--resume continues the same recipe; {', '.join(changed)} "
                            f"{'differs' if len(changed) == 1 else 'differ'} from {path}")
    return state


def _check_options(args: argparse.Namespace) -> None:
    """Options that contradict each other, refused before anything loads."""
    if args.stop_after > args.epochs:
        raise TrainingError(f"--stop-after {args.stop_after} is past the end of the schedule (--epochs {args.epochs})")
    if len(args.widths) > MAX_STAGES:
        raise TrainingError(f"at most {MAX_STAGES} stages (--widths): a 32 px crop halved {MAX_STAGES - 1} times "
                            "is 1 px")
    if len(args.widths) != len(args.depths):
        raise TrainingError(f"one depth per stage: {len(args.widths)} --widths but {len(args.depths)} --depths")
    if args.detector and not args.gtsdb_dir:
        raise TrainingError("--detector mines its boxes on GTSDB scenes: give --gtsdb-dir too")


def main(args: argparse.Namespace) -> int:
    given = {k: getattr(args, k) for k in _SHAPE if getattr(args, k) is not None}
    args.widths = args.widths or list(DEFAULT_WIDTHS)
    args.depths = args.depths or list(DEFAULT_DEPTHS)
    args.contrast = args.contrast or DEFAULT_CONTRAST
    _check_options(args)
    seed_everything(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    checkpoint_path = args.output_dir / "checkpoint.pt"
    # The teachers and the network are made before the data loads, so a wrong path or shape fails at once.
    distillation = None
    if args.teacher:
        teachers = [load_checkpoint(path, device=device)[0] for path in args.teacher]
        reader = "torch"
        if device.type == "cpu":
            teachers = [OnnxRunner(teacher, INPUT_SIZE, torch.get_num_threads()) for teacher in teachers]
            reader = "ONNX Runtime"
        distillation = Distillation(teachers, args.distill_temperature)
        print(f"distilling from {len(args.teacher)} teacher(s), weight {args.distill_weight}, read by {reader}")
    if args.init:
        model = _initial_model(args, device)
        _check_init_shape(args.init, given, model.arch)
    else:
        model = SignNet(num_classes=NOT_A_SIGN + 1, widths=tuple(args.widths), depths=tuple(args.depths),
                        contrast=args.contrast).to(device)
    # The recipe names the shape trained, which --init takes from the network it starts from.
    recipe = {k: _plain(v) for k, v in vars(args).items() if k != "func"} | model.arch
    state = _resumable_state(checkpoint_path, recipe, device) if args.resume else None
    # The run folder is made (and checked) now, not after the data loads; it goes again if the run
    # ends before writing anything into it.
    with output_folder(args.output_dir):
        check_writable(checkpoint_path)
        return _fit(args, model, state, distillation, device, checkpoint_path, recipe)


def _is_model_file(path: Path | None) -> bool:
    """Whether ``--init`` names a model file export wrote rather than a checkpoint."""
    return path is not None and path.suffix.lower() == ".onnx"


def _check_init_shape(path: Path, given: dict, arch: dict) -> None:
    """An --init run trains its network's own shape: a shape option that says otherwise is refused."""
    def text(value: object) -> str:
        return " ".join(map(str, value)) if isinstance(value, list) else str(value)

    other = [f"--{k} {text(arch[k])}, not {text(v)}" for k, v in given.items() if v != arch[k]]
    if other:
        raise TrainingError(f"{path} has {'; '.join(other)}: a run from --init keeps its network's shape "
                            "(leave those options out)")


def _initial_model(args: argparse.Namespace, device: torch.device) -> nn.Module:
    """The network ``--init`` names, refused if it kept other tracks out: they would be trained on."""
    if _is_model_file(args.init):
        model, recipe = signnet_from_onnx(args.init)
        what = "the weights of the model file"
    else:
        model, info = load_checkpoint(args.init, device=device)
        recipe, what = info["args"], "the EMA weights of"
    kept_out = recipe.get("val_every", VAL_EVERY)
    if kept_out != args.val_every:
        raise TrainingError(f"{args.init} kept one GTSRB track in {kept_out} out for validation: give --val-every "
                            f"{kept_out}, or the tracks it never saw are validated on and those it saw trained on")
    print(f"starting from {what} {args.init}")
    return model.to(device)


def _fit(args: argparse.Namespace, model: nn.Module, state: dict | None, distillation: Distillation | None,
         device: torch.device, checkpoint_path: Path, recipe: dict) -> int:
    train_set, val_set, summary = load_data(args)
    steps_per_epoch = len(train_set) // args.batch_size
    if steps_per_epoch == 0:
        raise TrainingError(f"--batch-size {args.batch_size} is more than the {len(train_set)} training crops: "
                            "not one step to train (use a smaller batch or more data)")
    print(f"training on {len(train_set)} crops ({summary}), validating on {len(val_set)}; device {device}")
    if state is None and _is_model_file(args.init):
        # A model file's batch norms are folded away: measure them again on the training crops.
        chosen = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(args.seed))[:CALIBRATION_CROPS]
        calibrate_batchnorm(model, train_set.images[chosen.to(train_set.images.device)])
    ema = torch.optim.swa_utils.AveragedModel(
        model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(args.ema_decay), use_buffers=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, epochs=args.epochs,
                                                    steps_per_epoch=steps_per_epoch, pct_start=0.15)
    criterion = nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)
    augment = Augment(seed=args.seed, device=device, backlight=args.backlight, shadow=args.shadow,
                      motion_blur=args.motion_blur, jpeg=args.jpeg, neighbour=args.neighbour,
                      mixup=args.mixup)
    if device.type != "cpu":  # the whole set fits on the GPU: no copies per batch
        train_set = TensorSet(train_set.images.to(device), train_set.labels.to(device))
    start_epoch, history = 0, []

    if state is not None:
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["lr_scheduler"])
        augment.gen.set_state(state["augment_rng"].cpu())
        if "torch_rng" in state:  # dropout draws from torch's own generator
            torch.set_rng_state(state["torch_rng"].cpu())
        if state.get("cuda_rng") is not None and device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"].cpu(), device)
        start_epoch, history = state["epoch"] + 1, json.loads(state["history"])
        print(f"resumed from {checkpoint_path} after epoch {start_epoch}")

    for epoch in range(start_epoch, args.stop_after or args.epochs):
        started = time.time()
        stats = train_one_epoch(model, ema, train_set, augment, optimizer, scheduler, criterion,
                                args.batch_size, device, epoch, args.epochs, distillation, args.distill_weight)
        stats.update(evaluate(ema.module, val_set, device))
        stats.update(epoch=epoch + 1, seconds=round(time.time() - started, 1))
        history.append(stats)
        print(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in stats.items()), flush=True)
        save_checkpoint({"model": model.state_dict(), "ema": ema.state_dict(), "optimizer": optimizer.state_dict(),
                         "lr_scheduler": scheduler.state_dict(), "augment_rng": augment.gen.get_state(),
                         "torch_rng": torch.get_rng_state(),
                         "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                         "epoch": epoch, "args": json.dumps(recipe),
                         "history": json.dumps(history), "data": json.dumps(summary),
                         "arch": json.dumps(model.arch)}, checkpoint_path)
    write_text_whole(args.output_dir / "history.json", json.dumps(history, indent=1))
    print(f"checkpoint: {checkpoint_path}")
    return 0
