"""Open a signcam ONNX file on the CPU and read the metadata it carries about itself.

Example:
    >>> session, meta = open_onnx(Path("assets/signnet.onnx"), "model", "signcam")
    >>> meta["input_size"]
    32
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from signcam.errors import ModelError, first_line

__all__ = ["open_onnx", "session_options", "default_threads"]


def open_onnx(path: Path, kind: str, metadata_key: str, threads: int | None = None,
              spin: bool = True, required: tuple[str, ...] = ()) -> tuple[Any, dict[str, Any]]:
    """An ONNX Runtime session and the JSON stored under ``metadata_key`` in the file.

    Args:
        path: The ONNX file.
        kind: What it should be ("model", "detector"), for the error messages.
        metadata_key: Metadata entry a signcam file of this kind carries.
        threads: Intra-op threads; default: all cores, at most 4.
        spin: Let idle threads spin for the next run: fastest for back-to-back runs, but in
            a pipeline where another model runs in between they would steal its cores.
        required: Entries the metadata must have.

    Raises:
        ModelError: the file is missing, not ONNX, or not a signcam file of this kind.
    """
    import onnxruntime as ort  # loaded only when a model is

    if path.is_dir():
        raise ModelError(f"{kind} {path} is a folder: name the .onnx file in it")
    if not path.is_file():
        raise ModelError(f"{kind} file not found: {path}")
    try:
        session = ort.InferenceSession(str(path), session_options(threads, spin), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own types for bad files
        raise ModelError(f"cannot load {kind} {path}: {first_line(exc)}") from None
    meta = session.get_modelmeta().custom_metadata_map
    if metadata_key not in meta:
        raise ModelError(f"{path} is an ONNX file but not a signcam {kind} (no '{metadata_key}' metadata)")
    try:
        info = json.loads(meta[metadata_key])
    except json.JSONDecodeError as exc:
        raise ModelError(f"{path}: its '{metadata_key}' metadata is not JSON ({exc})") from None
    missing = [key for key in required if not isinstance(info, dict) or key not in info]
    if missing:
        raise ModelError(f"{path}: its '{metadata_key}' metadata lacks {', '.join(missing)}")
    return session, info


def default_threads() -> int:
    """Threads our networks use unless told otherwise: all cores, at most 4."""
    return min(os.cpu_count() or 1, 4)


def session_options(threads: int | None = None, spin: bool = True) -> Any:
    """ONNX Runtime options for one of our networks on the CPU (arguments as :func:`open_onnx`'s)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or default_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    return options
