"""Our networks as ONNX files: one traced, checked graph with its metadata, written in one step.

Both exports use it: ``signcam-train export`` (SignNet) and ``signcam-train fit-detector`` (SignDet).
``fit`` runs its teachers through it too (:class:`OnnxRunner`), which on a CPU is the faster reader.

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
from signcam.onnx_session import session_options

__all__ = ["export_onnx", "write_onnx", "session_beside_torch", "OnnxRunner", "OPSET"]

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


def session_beside_torch(proto: onnx.ModelProto, threads: int) -> Any:
    """An ONNX Runtime session on the CPU for ``proto``, read in turn with torch's own work.

    Its threads do not spin: torch computes between two reads, and spinning threads would take its cores.
    """
    import onnxruntime as ort

    return ort.InferenceSession(proto.SerializeToString(), session_options(threads, spin=False),
                                providers=["CPUExecutionProvider"])


class OnnxRunner:
    """A fixed network run by ONNX Runtime on the CPU, called as the torch module it came from.

    fit's teachers read every training batch and learn nothing, so on a CPU they are best read
    by ONNX Runtime: with the 4.7 M probe as teacher, fit's epochs on 2 cores took 141-178 s
    so, against 220-295 s with torch reading it (the ``seconds`` of each run's history).

    Args:
        module: The network (logits out), in eval mode; it is traced once, here.
        input_size: Side of the square crops it reads.
        threads: ONNX Runtime's threads (torch's own count is the natural choice).
    """

    def __init__(self, module: nn.Module, input_size: int, threads: int) -> None:
        proto = export_onnx(module.eval(), torch.zeros(2, 3, input_size, input_size), "logits",
                            {"image": {0: "batch"}, "logits": {0: "batch"}}, "signcam", {}, "a fit teacher")
        self.session = session_beside_torch(proto, threads)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.session.run(["logits"], {"image": images.detach().float().numpy()})[0])
