"""Errors signcam reports to users as one clear line instead of a traceback."""

from __future__ import annotations

__all__ = ["SignCamError", "ModelError", "SourceError"]


class SignCamError(Exception):
    """Base class: the message is meant for the user as it stands."""


class ModelError(SignCamError):
    """The model file is missing, corrupt or not a signcam model."""


class SourceError(SignCamError):
    """A camera, video, stream or image could not be opened or read."""
