"""Our networks as ONNX files: one traced, checked graph with its metadata, written in one step.

Both exports use it: ``signcam-train export`` (SignNet) and ``signcam-train fit-detector`` (SignDet).

Example:
    >>> proto = export_onnx(model, torch.zeros(1, 3, 32, 32), "probs", {}, "signcam", {"name": "SignNet"}, "doc")
    >>> write_onnx(proto, Path("assets/signnet.onnx"))
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
from typing import Any

import onnx
import torch
from torch import nn

import signcam
from signcam.files import written_whole

__all__ = ["export_onnx", "write_onnx", "OPSET"]

OPSET = 17


def export_onnx(module: nn.Module, dummy: torch.Tensor, output: str, dynamic_axes: dict[str, dict[int, str]],
                metadata_key: str, metadata: dict[str, Any], doc: str) -> onnx.ModelProto:
    """Any of our networks as a checked ONNX graph with input ``image``, its metadata attached.

    Args:
        module: The network, in eval mode.
        dummy: An input of the right shape, to trace.
        output: The output's name.
        dynamic_axes: Per input/output name, the axes that may change size.
        metadata_key: Where the runtime looks for ``metadata`` (a JSON string).
        metadata: What the file says about itself.
        doc: The graph's one-line description.
    """
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter is chosen on purpose: it gives a plain, stable opset-17 graph.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(module, (dummy,), buffer, dynamo=False, opset_version=OPSET, input_names=["image"],
                          output_names=[output], dynamic_axes=dynamic_axes)
    proto = onnx.load_from_string(buffer.getvalue())
    onnx.helper.set_model_props(proto, {metadata_key: json.dumps(metadata)})
    proto.producer_name = "signcam-train"
    proto.producer_version = signcam.__version__
    proto.doc_string = doc
    onnx.checker.check_model(proto)
    return proto


def write_onnx(proto: onnx.ModelProto, path: Path) -> None:
    """Save ``proto`` to ``path`` in one step: readers never see a half-written model."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with written_whole(path) as partial:
        onnx.save(proto, partial)
