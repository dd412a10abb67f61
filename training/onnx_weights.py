"""Networks rebuilt from the model files training wrote, to fine-tune them: a SignNet that
``signcam-train export`` wrote (``fit --init``) and a SignDet that ``fit-detector`` wrote
(``fit-detector --init``).

The export folds each batch norm into the convolution before it, and the checkpoint it came
from need not be at hand (``runs/`` is not shipped). :func:`signnet_from_onnx` and
:func:`signdet_from_onnx` read the graph's convolutions back into a network whose batch norms
pass the folded bias through unchanged, so it computes what the file computes. Training,
though, normalises by each batch's statistics: :func:`calibrate_batchnorm` measures them on
training images and sets each batch norm so that it still computes the same function in eval
mode, and about the same in training.

Example:
    >>> model, recipe = signnet_from_onnx(Path("assets/signnet.onnx"))
    >>> calibrate_batchnorm(model, train_images[:4096])
"""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

from signcam.classes import NOT_A_SIGN
from signcam.classifier import METADATA_KEY
from signcam.errors import TrainingError, first_line
from signcam.proposals import DETECTOR_METADATA_KEY
from training.model import SignNet
from training.signdet import SignDet

__all__ = ["signnet_from_onnx", "signdet_from_onnx", "calibrate_batchnorm"]


def _read(path: Path) -> onnx.ModelProto:
    if not path.is_file():
        raise FileNotFoundError(f"no model at {path}")
    try:
        return onnx.load(str(path))
    except Exception as exc:  # protobuf's DecodeError, or an OSError
        raise TrainingError(f"{path} is not an ONNX model ({first_line(exc)})") from None


def _metadata(proto: onnx.ModelProto, key: str) -> dict:
    """The JSON a model file's metadata holds under ``key`` (empty when it has none)."""
    props = {prop.key: prop.value for prop in proto.metadata_props}
    try:
        meta = json.loads(props.get(key, "{}"))
    except json.JSONDecodeError:
        return {}
    return meta if isinstance(meta, dict) else {}


def _weights(proto: onnx.ModelProto) -> dict[str, np.ndarray]:
    """The graph's initialisers by name, with the names that alias them."""
    weights = {init.name: numpy_helper.to_array(init) for init in proto.graph.initializer}
    for node in proto.graph.node:
        if node.op_type == "Identity" and node.input[0] in weights:
            # The exporter keeps one copy of equal tensors (biases still all zero) and aliases the rest.
            weights[node.output[0]] = weights[node.input[0]]
    return weights


def _shape(proto: onnx.ModelProto, weights: dict[str, np.ndarray], path: Path
           ) -> tuple[list[tuple[np.ndarray, np.ndarray]], tuple[np.ndarray, np.ndarray], dict]:
    """The folded convolutions in order, the classifier layer and the SignNet shape the graph spells."""
    convs, stages, head = [], [0], None
    for node in proto.graph.node:
        if node.op_type == "Conv":
            if len(node.input) < 3 or node.input[1] not in weights or node.input[2] not in weights:
                raise TrainingError(f"{path}: a convolution without its weights and bias is not a SignNet export")
            convs.append((weights[node.input[1]], weights[node.input[2]]))
            stages[-1] += 1
        elif node.op_type == "MaxPool":
            stages.append(0)
        elif node.op_type == "Gemm":
            transposed = any(a.name == "transB" and a.i == 1 for a in node.attribute)
            weight = weights[node.input[1]]
            head = (weight if transposed else weight.T, weights[node.input[2]])
    if not convs or head is None or 0 in stages:
        raise TrainingError(f"{path} is not a SignNet export (no convolution stages and classifier found)")
    arch = {"widths": [], "depths": stages,
            "contrast": "local" if convs[0][0].shape[1] == 6 else "global"}
    first = 0
    for depth in stages:
        arch["widths"].append(int(convs[first][0].shape[0]))
        first += depth
    return convs, head, arch


def _conv_norm_pairs(model: nn.Module) -> list[tuple[nn.Conv2d, nn.BatchNorm2d]]:
    """Each convolution of ``model`` with the batch norm that follows it, in the order they run."""
    return [(m, n) for block in model.modules() if isinstance(block, nn.Sequential)
            for m, n in pairwise(block) if isinstance(m, nn.Conv2d) and isinstance(n, nn.BatchNorm2d)]


@torch.no_grad()
def _load_folded(conv: nn.Conv2d, norm: nn.BatchNorm2d | None, weight: np.ndarray, bias: np.ndarray) -> None:
    """A folded convolution into ``conv``; its bias goes to the batch norm after it, which then
    passes it through unchanged, or to ``conv`` where none follows."""
    conv.weight.copy_(torch.tensor(weight))
    if norm is None:
        conv.bias.copy_(torch.tensor(bias))
        return
    norm.running_mean.zero_()
    norm.running_var.fill_(1 - norm.eps)  # divides by exactly 1
    norm.weight.fill_(1)
    norm.bias.copy_(torch.tensor(bias))


def signnet_from_onnx(path: Path) -> tuple[SignNet, dict]:
    """The SignNet in ``path`` with its weights, in eval mode, and the training recipe its metadata
    records (empty when none); its batch norms are still to :func:`calibrate_batchnorm`.

    Raises:
        FileNotFoundError: no file at ``path``.
        TrainingError: it is not a SignNet that ``signcam-train export`` wrote.
    """
    path = Path(path)
    proto = _read(path)
    convs, (head_weight, head_bias), arch = _shape(proto, _weights(proto), path)
    try:
        model = SignNet(num_classes=NOT_A_SIGN + 1, widths=tuple(arch["widths"]), depths=tuple(arch["depths"]),
                        contrast=arch["contrast"])
        for (conv, norm), (weight, bias) in zip(_conv_norm_pairs(model), convs, strict=True):
            _load_folded(conv, norm, weight, bias)
        with torch.no_grad():
            linear = model.head[-1]
            linear.weight.copy_(torch.tensor(head_weight))
            linear.bias.copy_(torch.tensor(head_bias))
    except (ValueError, RuntimeError) as exc:  # shapes that no SignNet has
        raise TrainingError(f"{path}: its weights do not fit a SignNet ({first_line(exc)})") from None
    return model.eval(), _metadata(proto, METADATA_KEY).get("recipe") or {}


def signdet_from_onnx(path: Path) -> tuple[SignDet, dict]:
    """The SignDet in ``path`` with its weights, in eval mode, and the metadata its file records
    (``scale`` among it); its batch norms are still to :func:`calibrate_batchnorm`.

    Raises:
        FileNotFoundError: no file at ``path``.
        TrainingError: it is not a SignDet that ``signcam-train fit-detector`` wrote.
    """
    path = Path(path)
    proto = _read(path)
    meta = _metadata(proto, DETECTOR_METADATA_KEY)
    weights = _weights(proto)
    convs = [(weights.get(node.input[1]), weights.get(node.input[2]) if len(node.input) > 2 else None)
             for node in proto.graph.node if node.op_type == "Conv"]
    if "scale" not in meta or len(convs) < 6 or any(w is None or b is None for w, b in convs):
        raise TrainingError(f"{path} is not a finder that fit-detector wrote")
    # Each stage's width is the output of the convolution that opens it (SignDet.c2, c2's second, c3, c4).
    widths = tuple(int(convs[i][0].shape[0]) for i in (0, 1, 3, 5))
    try:
        model = SignDet(widths)
        norms = dict(_conv_norm_pairs(model))
        modules = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
        for conv, (weight, bias) in zip(modules, convs, strict=True):
            _load_folded(conv, norms.get(conv), weight, bias)
    except (ValueError, RuntimeError) as exc:  # shapes that no SignDet has
        raise TrainingError(f"{path}: its weights do not fit a SignDet ({first_line(exc)})") from None
    return model.eval(), meta


@torch.no_grad()
def calibrate_batchnorm(model: nn.Module, images: torch.Tensor, batch_size: int = 512) -> None:
    """Give each batch norm the mean and variance its convolution yields on ``images``, keeping the function.

    Each norm's statistics become the measured mean and variance, and its gain and bias change so
    that in eval mode the network computes exactly what it did; in training, where each batch
    brings statistics near the measured ones, it computes about the same.
    """
    pairs = _conv_norm_pairs(model)
    sums = {conv: [0.0, 0.0, 0] for conv, _ in pairs}

    def measure(conv: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        values = output.double()
        sums[conv][0] = sums[conv][0] + values.sum((0, 2, 3))
        sums[conv][1] = sums[conv][1] + (values ** 2).sum((0, 2, 3))
        sums[conv][2] += values.numel() // values.shape[1]

    was_training = model.training
    model.eval()
    handles = [conv.register_forward_hook(measure) for conv, _ in pairs]
    try:
        device = next(model.parameters()).device
        for start in range(0, len(images), batch_size):
            model(images[start:start + batch_size].to(device).float())
    finally:
        for handle in handles:
            handle.remove()
    for conv, norm in pairs:
        total, squares, count = sums[conv]
        mean = total / count
        var = (squares / count - mean ** 2).clamp_min(0)
        # The norm computes (x - running_mean) * gain + bias; the new statistics keep that line.
        gain = norm.weight / (norm.running_var + norm.eps).sqrt()
        norm.bias.add_((mean - norm.running_mean) * gain)
        norm.weight.copy_(gain * (var + norm.eps).sqrt())
        norm.running_mean.copy_(mean)
        norm.running_var.copy_(var)
    model.train(was_training)
