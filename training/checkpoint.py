"""The ``signcam-train fit`` checkpoint on disk: written whole, read back without unpickling any object.

fit writes one after every epoch (what it holds: :mod:`training.fit`); fit's ``--resume``,
``--init`` and ``--teacher``, evaluate and export read it back.

Example:
    >>> model, info = load_checkpoint("runs/signnet/checkpoint.pt")
    >>> info["epoch"], model.arch["widths"]
    (40, [16, 32, 64, 128])
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
from pathlib import Path
from typing import Any

import torch

from signcam.classes import NOT_A_SIGN
from signcam.errors import TrainingError, first_line, user_message
from signcam.files import written_whole
from training.model import SignNet

__all__ = ["save_checkpoint", "read_checkpoint", "load_checkpoint", "model_from_state", "FIRST_ARCH"]

#: The shape of the first networks, whose checkpoints predate ``arch`` and were all alike.
FIRST_ARCH = {"widths": [16, 32, 64, 128], "depths": [1, 2, 2, 1], "contrast": "global"}


def save_checkpoint(state: dict, path: Path) -> None:
    """Write ``state`` beside ``path`` and rename it there: a failed write (a full disk, Ctrl-C)
    leaves the last checkpoint whole, for ``--resume``."""
    try:
        with written_whole(path) as partial:
            torch.save(state, partial)
    except (OSError, RuntimeError) as exc:  # torch reports a failed write as a RuntimeError
        raise OSError(f"cannot write the checkpoint {path} (is the disk full?): {first_line(exc)}") from None


def read_checkpoint(path: Path, device: str | torch.device = "cpu") -> dict[str, Any]:
    """The dict a ``signcam-train fit`` checkpoint holds, read without unpickling any object.

    Raises:
        FileNotFoundError: no checkpoint at ``path``.
        TrainingError: the file is not a signcam checkpoint.
    """
    return _parse(path, _read_bytes(path), device)


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path} (train one with `signcam-train fit`)")
    data = path.read_bytes()
    if not data:
        raise TrainingError(f"{path} is not a signcam-train checkpoint (an empty file)")
    return data


def _parse(path: Path, data: bytes, device: str | torch.device) -> dict[str, Any]:
    """The checkpoint dict in ``data``, the bytes of ``path`` (named in errors)."""
    try:
        state = torch.load(io.BytesIO(data), map_location=device, weights_only=True)
    except pickle.UnpicklingError:
        # torch's own message suggests weights_only=False: never for a file that is not ours.
        raise TrainingError(f"{path} is not a signcam-train checkpoint (it holds objects other than "
                            "tensors and plain data, or is not a torch file)") from None
    except Exception as exc:  # a corrupt file fails in pickle, zipfile or torch
        raise TrainingError(f"{path} is not a signcam-train checkpoint (a damaged or cut-short file: "
                            f"{user_message(exc)})") from None
    if not isinstance(state, dict) or not {"epoch", "args", "history"} <= state.keys():
        raise TrainingError(f"{path} is not a signcam-train checkpoint (a torch file of something else)")
    return state


def load_checkpoint(path: str | Path, weights: str = "ema", device: str | torch.device = "cpu"
                    ) -> tuple[SignNet, dict[str, Any]]:
    """SignNet (in eval mode) from a ``signcam-train fit`` checkpoint, never unpickling objects.

    Args:
        path: ``checkpoint.pt`` written by fit.
        weights: ``"ema"`` (the averaged weights, what ships) or ``"model"`` (the raw ones).
        device: Where to put the model.

    Returns:
        The model and ``{"epoch", "args", "history", "data", "sha256", "weights"}`` of the checkpoint.

    Raises:
        FileNotFoundError: no checkpoint at ``path``.
        TrainingError: the file is not a signcam checkpoint, or its weights do not fit it.
    """
    path = Path(path)
    data = _read_bytes(path)  # read once: parsed, and hashed for the record
    state = _parse(path, data, device)
    model = model_from_state(state, path, weights)
    info = {"epoch": state["epoch"] + 1, "args": json.loads(state["args"]), "history": json.loads(state["history"]),
            "data": json.loads(state.get("data", "{}")), "weights": weights,
            "sha256": hashlib.sha256(data).hexdigest()}
    return model.to(device).eval(), info


def model_from_state(state: dict[str, Any], path: Path, weights: str = "ema") -> SignNet:
    """SignNet with the ``weights`` of a checkpoint :func:`read_checkpoint` read from ``path`` (named in errors).

    Raises:
        TrainingError: the checkpoint lacks those weights, they are not finite, or they do not fit
            the network it describes.
    """
    if weights not in state:
        raise TrainingError(f"{path} is not a signcam-train checkpoint (it has no {weights} weights)")
    weights_state = state[weights]
    if weights == "ema":
        # AveragedModel keeps the network under "module." and counts its updates in n_averaged.
        weights_state = {k.removeprefix("module."): v for k, v in weights_state.items() if k != "n_averaged"}
    if not all(torch.isfinite(v).all() for v in weights_state.values() if v.is_floating_point()):
        raise TrainingError(f"{path} holds {weights} weights that are not finite numbers: its training diverged "
                            "(try a lower --lr)")
    try:
        arch = {**FIRST_ARCH, **json.loads(state.get("arch", "{}"))}
        model = SignNet(num_classes=NOT_A_SIGN + 1, widths=tuple(arch["widths"]), depths=tuple(arch["depths"]),
                        contrast=arch["contrast"])
    except (ValueError, TypeError) as exc:  # not JSON, or not the shape of a SignNet
        raise TrainingError(f"{path}: the network it describes cannot be built ({first_line(exc)})") from None
    try:
        model.load_state_dict(weights_state)
    except RuntimeError as exc:  # torch lists every missing, unexpected or misshapen tensor
        raise TrainingError(f"{path}: its {weights} weights do not fit the network it describes "
                            f"({first_line(exc)})") from None
    return model
