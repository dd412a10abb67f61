"""What a classifier's probabilities score: sign accuracy, "not a sign" answers, log-loss.

Each takes N x 44 probabilities (43 signs, then "not a sign"), as the network and the shipped
ONNX file give them.

Example:
    >>> top1_accuracy(torch.tensor([[0.9] + [0.0] * 43]), torch.tensor([0]))
    1.0
"""

from __future__ import annotations

import torch

from signcam.classes import NOT_A_SIGN, NUM_SIGN_CLASSES

__all__ = ["top1_accuracy", "rejected_share", "accepted_share", "log_loss"]


def top1_accuracy(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of signs whose best of the 43 sign classes is right (the reject output ignored)."""
    return (probs[:, :NUM_SIGN_CLASSES].argmax(1) == labels).float().mean().item() if len(labels) else float("nan")


def rejected_share(probs: torch.Tensor) -> float:
    """Share of crops whose most likely output is "not a sign"."""
    return (probs.argmax(1) == NOT_A_SIGN).float().mean().item() if len(probs) else float("nan")


def accepted_share(probs: torch.Tensor) -> float:
    """Share of crops whose most likely output is a sign: for crops of no sign, the false accepts."""
    return 1.0 - rejected_share(probs)


def log_loss(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean negative log-probability of the right sign (over all outputs, "not a sign" included)."""
    picked = probs[torch.arange(len(labels)), labels].clamp_min(1e-7)
    return -picked.log().mean().item() if len(labels) else float("nan")
