"""Errors signcam reports to users as one clear line instead of a traceback."""

from __future__ import annotations

__all__ = ["SignCamError", "ModelError", "SourceError", "DataError", "TrainingError", "Terminated", "first_line",
           "user_message"]


class SignCamError(Exception):
    """Base class: the message is meant for the user as it stands."""


class ModelError(SignCamError):
    """The model file is missing, corrupt or not a signcam model."""


class SourceError(SignCamError):
    """A camera, video, stream or image could not be opened or read."""


class DataError(SignCamError):
    """A data set (GTSRB, GTSDB scenes) is malformed or holds nothing of what a command needs."""


class TrainingError(SignCamError):
    """``signcam-train`` cannot start or go on: options that contradict each other, a diverged
    loss, a checkpoint or report that does not fit."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (``timeout``, ``kill``, systemd, docker): a run stops as on Ctrl-C, and exits 128 + 15."""


def first_line(exc: BaseException) -> str:
    """What a library's exception says, in one line (its type's name when it says nothing)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def user_message(exc: BaseException) -> str:
    """One line for the user: signcam's own errors as they are, anything else (unexpected) with its type."""
    if isinstance(exc, SignCamError) or not str(exc).strip():
        return first_line(exc)  # (which is the type's name when the exception says nothing)
    return f"{type(exc).__name__}: {first_line(exc)}"
