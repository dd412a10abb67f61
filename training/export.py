"""``signcam-train export``: write the trained SignNet as one self-describing ONNX file.

The file takes raw BGR crops (N x 3 x 32 x 32 float32, 0..255) as ``image`` and returns
``probs`` (softmax over 43 signs + "not a sign"). Its ``signcam`` metadata entry (JSON)
says what it is: class names, input framing, accuracy, size, training recipe and data,
like a torchvision weights entry. The ONNX Runtime output is checked against torch
before anything is written.

Example:
    $ signcam-train evaluate --data-dir DATA --gtsdb-dir GTSDB --output-dir reports
    $ signcam-train export --report reports/evaluate-report.json --output assets/signnet.onnx
"""

from __future__ import annotations

import argparse
import datetime
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn
from tqdm import tqdm

from signcam.classes import CLASSES, NOT_A_SIGN
from signcam.classifier import CROP_MARGIN, DEFAULT_MODEL, METADATA_KEY, READ_ZOOMS, REREAD_BELOW
from signcam.errors import TrainingError
from signcam.files import check_writable, output_folder, refuse_overwriting
from training.checkpoint import load_checkpoint
from training.data import load_gtsrb
from training.metrics import rejected_share, top1_accuracy
from training.model import INPUT_SIZE, count_macs
from training.onnx_io import export_onnx, session_beside_torch, write_onnx

__all__ = ["add_arguments", "main", "to_onnx", "max_prob_difference", "Probabilities", "TOLERANCE"]

#: Largest allowed difference between torch and ONNX Runtime probabilities.
TOLERANCE = 1e-4
NORMALISATION = "per-image standardisation inside the network; input raw 0..255"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", type=Path, default=Path("runs/signnet/checkpoint.pt"),
                        help="checkpoint written by `signcam-train fit`")
    parser.add_argument("--output", type=Path, default=DEFAULT_MODEL, help="ONNX file to write")
    parser.add_argument("--weights", choices=("ema", "model"), default="ema",
                        help="the checkpoint's weight average (ema) or its last raw weights")
    parser.add_argument("--data-dir", type=Path,
                        help="GTSRB root: check torch vs ONNX on the real test images and measure test accuracy")
    parser.add_argument("--report", type=Path, help="evaluate-report.json of this checkpoint, embedded in the file")


class Probabilities(nn.Module):
    """The network followed by a softmax: what the runtime wants to read."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(image), dim=1)


def to_onnx(model: nn.Module, metadata: dict[str, Any]) -> onnx.ModelProto:
    """SignNet with its softmax, a dynamic batch axis and the signcam metadata."""
    return export_onnx(Probabilities(model).eval(), torch.zeros(2, 3, INPUT_SIZE, INPUT_SIZE), "probs",
                       {"image": {0: "batch"}, "probs": {0: "batch"}}, METADATA_KEY, metadata,
                       "SignNet road-sign classifier: image N x 3 x 32 x 32 float32 BGR 0..255 -> probs N x 44 "
                       "(43 GTSRB signs, then 'not a sign'). Metadata key 'signcam' holds the details.")


@torch.no_grad()
def max_prob_difference(model: nn.Module, proto: onnx.ModelProto, images: torch.Tensor,
                        batch_size: int = 1024, desc: str = "torch vs ONNX") -> tuple[float, np.ndarray]:
    """Largest absolute difference of torch and ONNX Runtime probabilities, and the ONNX ones.

    Args:
        model: The torch network (logits).
        proto: Its export (probabilities).
        images: N x 3 x S x S images, uint8 or float in 0..255.
        batch_size: Images per run.
        desc: Progress-bar label.
    """
    session = session_beside_torch(proto, torch.get_num_threads())
    model.eval()
    worst, outputs = 0.0, []
    for start in tqdm(range(0, len(images), batch_size), desc=desc, unit="batch", leave=False):
        batch = images[start:start + batch_size].float()
        expected = torch.softmax(model(batch), dim=1).numpy()
        got = session.run(["probs"], {"image": batch.numpy()})[0]
        difference = float(np.abs(got - expected).max())
        worst = max(worst, difference if np.isfinite(difference) else np.inf)  # NaN is as far off as can be
        outputs.append(got)
    return worst, np.concatenate(outputs) if outputs else np.zeros((0, NOT_A_SIGN + 1), np.float32)


def _read_report(path: Path, checkpoint_sha256: str, weights: str) -> dict[str, Any]:
    """The report of ``evaluate`` on these very weights, whose figures the model file will carry."""
    if not path.is_file():
        raise TrainingError(f"no evaluate report at {path} (`signcam-train evaluate` writes one)")
    try:
        report = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TrainingError(f"{path} is not an evaluate report (not JSON: {exc})") from None
    if not isinstance(report, dict) or "checkpoint_sha256" not in report:
        raise TrainingError(f"{path} is not an evaluate report (no checkpoint_sha256)")
    if report["checkpoint_sha256"] != checkpoint_sha256:
        raise TrainingError(f"{path} was written for another checkpoint; run `signcam-train evaluate` on this one")
    if report.get("weights", "ema") != weights:
        raise TrainingError(f"{path} measured the {report.get('weights')} weights, not the {weights} weights being "
                            f"exported; run `signcam-train evaluate --weights {weights}`")
    return report


def main(args: argparse.Namespace) -> int:
    # The output is checked first: a model written over its own checkpoint, or nowhere, is found out now.
    refuse_overwriting("--output", args.output, [args.checkpoint, *([args.report] if args.report else [])])
    with output_folder(Path(args.output).parent):  # gone again if nothing is written into it
        check_writable(args.output)
        return _export(args)


def _export(args: argparse.Namespace) -> int:
    model, info = load_checkpoint(args.checkpoint, args.weights)
    report = _read_report(args.report, info["sha256"], args.weights) if args.report else {}

    checks = {"random": torch.rand(256, 3, INPUT_SIZE, INPUT_SIZE, generator=torch.Generator().manual_seed(0)) * 255}
    test = load_gtsrb(args.data_dir, "test") if args.data_dir else None
    if test is not None:
        checks["GTSRB test"] = test.images
    metadata: dict[str, Any] = {
        "name": "SignNet",
        "class_names": [c.name for c in CLASSES],
        "input": "image", "output": "probs",
        "input_size": INPUT_SIZE,
        "channel_order": "BGR",
        "crop_margin": CROP_MARGIN,
        # How the test accuracy below was measured, and how classify reads with this model:
        "read_zooms": report.get("read_zooms", list(READ_ZOOMS)),
        "reread_below": report.get("reread_below", REREAD_BELOW),
        "reject_index": NOT_A_SIGN,
        "normalisation": NORMALISATION,
        "test_accuracy": report.get("test_accuracy"),
        "test_rejected": report.get("test_rejected"),
        "false_accept_rate": report.get("false_accept_rate"),
        "evaluation": {k: v for k, v in report.items() if k != "per_class"} or None,
        "params": sum(p.numel() for p in model.parameters()),
        "macs": count_macs(model),
        "shape": model.arch,
        "epoch": info["epoch"],
        "weights": info["weights"],
        "validation": info["history"][-1] if info["history"] else None,
        # With the network's own shape: --init runs from before fit recorded it hold fit's default one.
        "recipe": info["args"] | model.arch,
        "data": info["data"],
        "checkpoint_sha256": info["sha256"],
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "torch_version": torch.__version__,
    }
    proto = to_onnx(model, metadata)
    onnx_probs = {}
    for name, images in checks.items():
        difference, onnx_probs[name] = max_prob_difference(model, proto, images, desc=f"check on {name}")
        print(f"max |torch - ONNX| probability on {len(images)} {name} images: {difference:.2e}")
        if difference > TOLERANCE:
            raise TrainingError(f"ONNX output differs from torch by {difference:.2e} (> {TOLERANCE:g}) "
                                f"on {name} images; not writing {args.output}")
    if test is not None and metadata["test_accuracy"] is None:
        # Measured on the ONNX output: the accuracy of the file that ships.
        probs = torch.from_numpy(onnx_probs["GTSRB test"])
        metadata["test_accuracy"] = top1_accuracy(probs, test.labels)
        metadata["test_rejected"] = rejected_share(probs)
        onnx.helper.set_model_props(proto, {METADATA_KEY: json.dumps(metadata)})

    write_onnx(proto, args.output)
    accuracy = metadata["test_accuracy"]
    print(f"wrote {args.output} ({args.output.stat().st_size / 1024:.0f} KiB, epoch {info['epoch']} {args.weights} "
          f"weights, {metadata['params']} params, {metadata['macs'] / 1e6:.1f} M MACs, test accuracy "
          f"{'unknown' if accuracy is None else f'{accuracy:.4f}'})")
    return 0
