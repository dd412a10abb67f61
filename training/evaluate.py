"""``signcam-train evaluate``: test-set accuracy, per-class table, plots and a JSON report.

Measures a checkpoint on the GTSRB test set (top-1 over the 43 signs, and how many
test signs the "not a sign" output would reject), each image read as ``signcam classify``
reads crops: at the first of the ``--read-zooms`` and, when unsure (``--reread-below``), at
all of them, averaged; with the validation tracks' accuracy at
single zooms beside it to show what suits this model; and, with ``--gtsdb-dir``, on crops
cut from the held-out GTSDB scenes: the false-accept rate on background and the
accuracy on the signs. Writes ``evaluate-report.json`` (which ``signcam-train export``
embeds in the model), ``confusion.png``, ``training-curves.png`` and ``worst-mistakes.png``.

Example:
    $ signcam-train evaluate --checkpoint runs/signnet/checkpoint.pt --data-dir DATA --gtsdb-dir GTSDB
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from signcam.classes import CLASSES, NOT_A_SIGN, NUM_SIGN_CLASSES
from signcam.classifier import READ_ZOOMS, REREAD_BELOW, best_signs, read_at_zooms, zoom_patches
from signcam.cli import non_negative_int, probability, read_zoom
from signcam.errors import DataError
from signcam.files import make_folder, write_text_whole
from signcam.gtsdb import HOLDOUT_FROM, load_scenes, select_scenes
from signcam.recognizer import DEFAULT_CONF
from training.checkpoint import load_checkpoint
from training.data import VAL_EVERY, TensorSet, cut_scene_crops, load_gtsrb, split_by_track
from training.device import pick_device
from training.metrics import accepted_share, log_loss, rejected_share, top1_accuracy
from training.model import predict

__all__ = ["add_arguments", "main", "per_class_accuracy",
           "confusion_matrix", "format_table", "plot_confusion", "plot_history", "plot_mistakes", "evaluate_gtsdb",
           "read_in_batches", "zoom_images", "REPORT_NAME", "ZOOM_SCAN"]

REPORT_NAME = "evaluate-report.json"
#: Another seed than fit's, so the held-out crops are framed differently from anything tuned on.
CROP_SEED = 1
#: Read zooms tried on the validation tracks (GTSRB training tracks that fit kept out).
ZOOM_SCAN = (1.0, 1.05, 1.1, 1.15, 1.2)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", type=Path, default=Path("runs/signnet/checkpoint.pt"),
                        help="checkpoint written by `signcam-train fit`")
    parser.add_argument("--weights", choices=("ema", "model"), default="ema",
                        help="the checkpoint's weight average (ema, what export ships) or its last raw weights")
    parser.add_argument("--data-dir", type=Path, required=True, help="GTSRB root (holds gtsrb/GTSRB/...)")
    parser.add_argument("--read-zooms", type=read_zoom, nargs="+", default=list(READ_ZOOMS), metavar="Z",
                        help="read each GTSRB image at the first of these zooms and, where unsure, at all of "
                             "them, averaged, as `signcam classify` will (export records them)")
    parser.add_argument("--reread-below", type=probability, default=REREAD_BELOW, metavar="P",
                        help="read an image at the zooms after the first only when its first reading's top "
                             "probability is below P, as `signcam classify` will (1: always; export records it)")
    parser.add_argument("--gtsdb-dir", type=Path, help="GTSDB scenes: false accepts on the held-out scenes")
    parser.add_argument("--output-dir", type=Path, default=Path("reports"), help="report JSON and PNGs")
    parser.add_argument("--worst", type=non_negative_int, default=36, help="mistakes shown in worst-mistakes.png")
    parser.add_argument("--limit", type=non_negative_int, default=0,
                        help="use only N test images, N validation images and N/50 held-out scenes (smoke tests; "
                             "0: all)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")


def read_in_batches(model: nn.Module, images: torch.Tensor, zooms: list[float], reread_below: float = REREAD_BELOW,
                    device: torch.device | str = "cpu", desc: str = "predict") -> torch.Tensor:
    """Softmax probabilities of uint8 N x 3 x S x S images read as ``signcam classify`` reads crops
    (:func:`signcam.classifier.read_at_zooms`)."""
    def read(patches: np.ndarray) -> np.ndarray:
        return predict(model, torch.from_numpy(patches).permute(0, 3, 1, 2), device, desc=desc).numpy()

    nhwc = np.ascontiguousarray(images.permute(0, 2, 3, 1).numpy())
    return torch.from_numpy(read_at_zooms(read, nhwc, zooms, reread_below))


def zoom_images(images: torch.Tensor, zoom: float) -> torch.Tensor:
    """uint8 N x 3 x S x S images read ``zoom`` times closer, exactly as the runtime reads whole crops."""
    if zoom == 1:
        return images
    nhwc = np.ascontiguousarray(images.permute(0, 2, 3, 1).numpy())
    return torch.from_numpy(zoom_patches(nhwc, zoom)).permute(0, 3, 1, 2).contiguous()



def confusion_matrix(probs: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """43 x 43 counts, rows true class, columns predicted (best of the 43)."""
    predicted = probs[:, :NUM_SIGN_CLASSES].argmax(1)
    flat = labels * NUM_SIGN_CLASSES + predicted
    return torch.bincount(flat, minlength=NUM_SIGN_CLASSES ** 2).reshape(NUM_SIGN_CLASSES, -1).numpy()


def per_class_accuracy(probs: torch.Tensor, labels: torch.Tensor) -> list[dict[str, Any]]:
    """One row per class: id, name, number of test images, accuracy and how many were rejected."""
    predicted = probs[:, :NUM_SIGN_CLASSES].argmax(1)
    rejected = probs.argmax(1) == NOT_A_SIGN
    rows = []
    for sign in CLASSES:
        mine = labels == sign.id
        n = int(mine.sum())
        rows.append({"id": sign.id, "name": sign.name, "n": n,
                     "acc": (predicted[mine] == sign.id).float().mean().item() if n else None,
                     "rejected": int(rejected[mine].sum())})
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """The per-class rows as an aligned text table, worst classes easy to spot."""
    width = max(len(r["name"]) for r in rows)
    lines = [f"{'id':>3}  {'name':<{width}}  {'n':>5}  {'acc':>7}  {'rejected':>8}"]
    for r in rows:
        acc = "-" if r["acc"] is None else f"{r['acc']:.4f}"
        lines.append(f"{r['id']:>3}  {r['name']:<{width}}  {r['n']:>5}  {acc:>7}  {r['rejected']:>8}")
    return "\n".join(lines)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no screen here, and none needed
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(matrix: np.ndarray, path: Path, title: str) -> None:
    """Confusion matrix with a log colour scale, so single mistakes stay visible beside the diagonal."""
    from matplotlib.colors import LogNorm

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(14.5, 12), layout="constrained")
    norm = LogNorm(vmin=1, vmax=max(int(matrix.max()), 2))
    image = ax.imshow(np.ma.masked_equal(matrix, 0), cmap="viridis", norm=norm)
    ticks = np.arange(NUM_SIGN_CLASSES)
    ax.set_xticks(ticks, [str(i) for i in ticks], fontsize=8)
    ax.set_yticks(ticks, [f"{c.name} {c.id:>2}" for c in CLASSES], fontsize=8)
    ax.set_xticks(ticks[:-1] + 0.5, minor=True)
    ax.set_yticks(ticks[:-1] + 0.5, minor=True)
    ax.grid(which="minor", color="0.92", linewidth=0.5)
    ax.tick_params(which="minor", length=0)
    ax.set_facecolor("white")
    for true, pred in zip(*np.nonzero(matrix), strict=True):
        if true != pred:
            # viridis is light at the top: dark digits there, light ones below.
            colour = "black" if norm(matrix[true, pred]) > 0.6 else "white"
            ax.text(pred, true, str(matrix[true, pred]), ha="center", va="center", fontsize=6, color=colour)
    ax.set_xlabel("predicted class id (best of the 43 signs)")
    ax.set_ylabel("true class")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, shrink=0.6, label="test images (log scale)")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_history(history: list[dict[str, Any]], path: Path, title: str, distilled: bool = False) -> None:
    """Loss, accuracy and validation false accepts per epoch, from the checkpoint's history.

    ``distilled``: the run also learnt from teachers, so its loss is a mix of both targets.
    """
    plt = _pyplot()
    epochs = [h["epoch"] for h in history]
    series = lambda key: [h.get(key, np.nan) for h in history]  # noqa: E731
    fig, (loss_ax, acc_ax, fa_ax) = plt.subplots(1, 3, figsize=(15, 4.2), layout="constrained")
    loss_label = "train loss (labels and teachers)" if distilled else "train loss (label-smoothed)"
    loss_ax.plot(epochs, series("train_loss"), "o-", label=loss_label)
    loss_ax.set_ylabel("loss")
    acc_ax.plot(epochs, series("train_acc"), "o-", label="train accuracy (augmented, 44-way)")
    acc_ax.plot(epochs, series("val_acc"), "s-", label="validation accuracy (best of 43)")
    acc_ax.set_ylabel("accuracy")
    acc_ax.set_ylim(min(0.9, np.nanmin(series("val_acc") + series("train_acc"))) - 0.02, 1.005)
    fa_ax.plot(epochs, series("val_false_accept"), "o-", color="tab:red", label="negatives taken for a sign")
    fa_ax.plot(epochs, series("val_rejected_signs"), "s-", color="tab:purple", label="signs rejected")
    fa_ax.set_ylabel("share of validation crops")
    fa_ax.set_yscale("symlog", linthresh=0.01)
    fa_ax.set_ylim(0, 1.05)
    for ax in (loss_ax, acc_ax, fa_ax):
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=9)
    fig.suptitle(title)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_mistakes(images: torch.Tensor, labels: torch.Tensor, probs: torch.Tensor, path: Path,
                  count: int = 36, columns: int = 6) -> int:
    """A grid of the most confident mistakes (best of the 43 wrong), upscaled; returns how many are shown."""
    plt = _pyplot()
    best, predicted = probs[:, :NUM_SIGN_CLASSES].max(1)
    wrong = torch.nonzero(predicted != labels).flatten()
    shown = wrong[best[wrong].argsort(descending=True)][:count].tolist()
    rows = max((len(shown) + columns - 1) // columns, 1)
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 2.6, rows * 3.0), squeeze=False, layout="constrained")
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, shown, strict=False):
        rgb = images[i].permute(1, 2, 0).float().numpy()[..., ::-1]  # BGR tensors, matplotlib wants RGB
        # Contrast-stretched like the network's own per-image standardisation: dark crops become legible.
        rgb = (rgb - rgb.min()) / max(float(rgb.max() - rgb.min()), 1.0)
        ax.imshow(rgb, interpolation="nearest")  # the real pixels, no resampling artefacts
        ax.set_title(f"true: {CLASSES[int(labels[i])].name}\npred: {CLASSES[int(predicted[i])].name}\n"
                     f"confidence {best[i]:.2f}", fontsize=8)
    if not shown:
        axes[0, 0].text(0.5, 0.5, "no mistakes", ha="center", va="center")
    fig.suptitle(f"Most confident mistakes ({len(wrong)} of {len(labels)} test signs wrong; contrast-stretched)")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return len(shown)


def evaluate_gtsdb(model: nn.Module, folder: Path, device: torch.device, limit: int = 0) -> dict[str, Any]:
    """False-accept rate and sign accuracy on crops cut from the held-out GTSDB scenes."""
    holdout = select_scenes(load_scenes(folder), "holdout")
    if not holdout:
        raise DataError(f"{folder} holds no held-out scene (numbered {HOLDOUT_FROM} and up) to cut crops from")
    if limit:
        holdout = holdout[: max(limit // 50, 2)]
    positives, negatives = cut_scene_crops(holdout, seed=CROP_SEED)
    pos_probs = predict(model, positives.images, device, desc="GTSDB positives")
    neg_probs = predict(model, negatives.images, device, desc="GTSDB negatives")
    # As the runtime decides: "not a sign" is not the top output, and the sign scores at least --conf.
    accepted = best_signs(neg_probs.numpy(), DEFAULT_CONF)[3]
    return {"gtsdb_scenes": len(holdout), "gtsdb_negatives": len(negatives),
            "false_accept_rate": accepted_share(neg_probs) if len(negatives) else None,
            "false_accept_rate_at_conf": float(accepted.mean()) if len(negatives) else None,
            "gtsdb_conf": DEFAULT_CONF,
            "gtsdb_positives": len(positives),
            "gtsdb_positive_accuracy": top1_accuracy(pos_probs, positives.labels) if len(positives) else None,
            "gtsdb_positive_rejected": rejected_share(pos_probs) if len(positives) else None}


def _gtsrb_sets(args: argparse.Namespace, val_every: int) -> tuple[TensorSet, TensorSet]:
    """The validation tracks kept out one in ``val_every`` and the test set, both cut to ``--limit``."""
    _train, val = split_by_track(load_gtsrb(args.data_dir, "train"), val_every)
    test: TensorSet = load_gtsrb(args.data_dir, "test")
    if args.limit:
        test = test.subset(np.random.default_rng(0).permutation(len(test))[: args.limit])
        val = val.subset(np.random.default_rng(0).permutation(len(val))[: args.limit])
    return val, test


def _score_gtsrb(model: nn.Module, val: TensorSet, test: TensorSet, read_zooms: list[float], reread_below: float,
                 device: torch.device) -> tuple[dict[str, Any], torch.Tensor]:
    """Validation accuracy at each zoom of :data:`ZOOM_SCAN` and as ``classify`` reads, test accuracy.

    Returns:
        The figures for the report, and the test probabilities (read as ``classify`` reads).
    """
    val_probs = {zoom: predict(model, zoom_images(val.images, zoom), device, desc=f"validation x{zoom}")
                 for zoom in sorted({*ZOOM_SCAN, *read_zooms})}
    by_zoom = {zoom: top1_accuracy(p, val.labels) for zoom, p in val_probs.items()}
    val_read_probs = read_in_batches(model, val.images, read_zooms, reread_below, device, desc="validation")
    val_read = top1_accuracy(val_read_probs, val.labels)
    probs = read_in_batches(model, test.images, read_zooms, reread_below, device, desc="GTSRB test")
    return {
        "validation_accuracy": val_read, "validation_images": len(val),
        "validation_errors": round((1 - val_read) * len(val)),
        "validation_log_loss": log_loss(val_read_probs, val.labels),
        "validation_by_zoom": {str(zoom): acc for zoom, acc in by_zoom.items()}, "test_images": len(test),
        "test_accuracy": top1_accuracy(probs, test.labels), "test_rejected": rejected_share(probs),
    }, probs


def _write_plots(args: argparse.Namespace, info: dict[str, Any], test: TensorSet, probs: torch.Tensor,
                 test_accuracy: float) -> None:
    """confusion.png, training-curves.png and worst-mistakes.png in ``--output-dir``."""
    name = f"{args.checkpoint} (epoch {info['epoch']}, {args.weights} weights)"
    plot_confusion(confusion_matrix(probs, test.labels), args.output_dir / "confusion.png",
                   f"GTSRB test confusion, {name}: top-1 {test_accuracy:.4f}")
    plot_history(info["history"], args.output_dir / "training-curves.png", f"Training of {args.checkpoint}",
                 distilled=bool(info["args"].get("teacher")))
    plot_mistakes(test.images, test.labels, probs, args.output_dir / "worst-mistakes.png", args.worst)


def _print_report(report: dict[str, Any]) -> None:
    """The per-class table, then validation, test and (if measured) GTSDB figures."""
    print(format_table(report["per_class"]))
    first, *others = report["read_zooms"]
    reading = f"x{first}" + (f", and {' and '.join(f'x{z}' for z in others)} averaged in where its top "
                             f"probability is below {report['reread_below']}" if others else "")
    singles = ", ".join(f"x{zoom} {acc:.4f}" for zoom, acc in report["validation_by_zoom"].items())
    print(f"validation top-1 ({report['validation_images']} images) read at one zoom: {singles}; as classify "
          f"reads ({reading}): {report['validation_accuracy']:.4f} ({report['validation_errors']} wrong, log-loss "
          f"{report['validation_log_loss']:.4f})")
    print(f"GTSRB test, read at {reading}: top-1 {report['test_accuracy']:.4f} on {report['test_images']} signs; "
          f"{report['test_rejected']:.4f} would be rejected as 'not a sign'")
    if "gtsdb_scenes" in report:
        far, pos_acc = report["false_accept_rate"], report["gtsdb_positive_accuracy"]
        far_conf = report["false_accept_rate_at_conf"]
        print(f"GTSDB held-out ({report['gtsdb_scenes']} scenes): false accepts "
              f"{'-' if far is None else f'{far:.4f}'} of {report['gtsdb_negatives']} negatives "
              f"({'-' if far_conf is None else f'{far_conf:.4f}'} scoring at least {report['gtsdb_conf']}, "
              f"as the app and detect decide); sign accuracy "
              f"{'-' if pos_acc is None else f'{pos_acc:.4f}'} on {report['gtsdb_positives']} crops")


def main(args: argparse.Namespace) -> int:
    device = pick_device(args.device)
    model, info = load_checkpoint(args.checkpoint, args.weights, device)
    make_folder(args.output_dir)  # before the evaluation, not after it
    # The tracks this checkpoint was validated on (runs from before --val-every kept 1 in 12).
    val, test = _gtsrb_sets(args, info["args"].get("val_every", VAL_EVERY))
    scores, probs = _score_gtsrb(model, val, test, args.read_zooms, args.reread_below, device)
    report: dict[str, Any] = {
        "checkpoint": str(args.checkpoint), "checkpoint_sha256": info["sha256"], "epoch": info["epoch"],
        "weights": args.weights, "read_zooms": args.read_zooms, "reread_below": args.reread_below, **scores,
    }
    if args.gtsdb_dir:
        report.update(evaluate_gtsdb(model, args.gtsdb_dir, device, args.limit))
    _write_plots(args, info, test, probs, report["test_accuracy"])
    report["per_class"] = per_class_accuracy(probs, test.labels)
    write_text_whole(args.output_dir / REPORT_NAME, json.dumps(report, indent=1))
    _print_report(report)
    print(f"wrote {args.output_dir / REPORT_NAME} and confusion.png, training-curves.png, worst-mistakes.png")
    return 0
