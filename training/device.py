"""Where training and evaluation run: the GPU torch sees, or the device asked for.

Example:
    >>> pick_device("cpu")
    device(type='cpu')
"""

from __future__ import annotations

import torch

from signcam.errors import TrainingError, first_line

__all__ = ["pick_device"]


def pick_device(name: str) -> torch.device:
    """Where to train or evaluate: ``"auto"`` takes the GPU when torch sees one.

    Raises:
        TrainingError: a device torch does not know, or a GPU that is not there.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise TrainingError(f"--device {name}: {first_line(exc)}") from None
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise TrainingError(f"--device {name}: torch sees {torch.cuda.device_count()} CUDA GPU(s) here "
                            "(--device cpu or auto trains on the CPU)")
    try:  # a device type torch knows but this build cannot use (mps, xla), or one that holds no data (meta)
        torch.zeros(1, device=device).cpu()
    except Exception as exc:  # noqa: BLE001 - each backend fails in its own way
        raise TrainingError(f"--device {name}: torch cannot compute there ({first_line(exc)})") from None
    return device
