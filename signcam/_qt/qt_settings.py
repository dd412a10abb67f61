"""What the app remembers between runs, stored with QSettings.

Example:
    >>> settings = QtAppSettings(QSettings("/tmp/signcam.ini", QSettings.Format.IniFormat))
    >>> settings.add_recent("/videos/drive.mp4")
    >>> settings.recent_files[0]
    '/videos/drive.mp4'
"""

from __future__ import annotations

import os

from PyQt6.QtCore import QByteArray, QSettings

from signcam.recognizer import DEFAULT_CONF
from signcam.sources import text_or_bytes

__all__ = ["QtAppSettings", "MAX_RECENT"]

MAX_RECENT = 10


def _storable(path: str) -> str | QByteArray:
    """``path`` as QSettings keeps it (see :func:`~signcam.sources.text_or_bytes`)."""
    stored = text_or_bytes(path)
    return QByteArray(stored) if isinstance(stored, bytes) else stored


def _path(stored: object) -> str:
    return os.fsdecode(bytes(stored)) if isinstance(stored, QByteArray) else str(stored or "")


class QtAppSettings:
    """Typed access to the app's QSettings (last source, recent files, threshold, toggles, geometry).

    Args:
        settings: Where to store them; default: the user's ``signcam`` settings.
            Tests pass an ini file in a temporary folder.
    """

    def __init__(self, settings: QSettings | None = None) -> None:
        self.qsettings = settings if settings is not None else QSettings("signcam", "signcam")

    def _get(self, key: str, default, kind: type):
        # INI files store everything as text; ``type=`` converts it back.
        return self.qsettings.value(key, default, type=kind)

    def _get_path(self, key: str) -> str:
        return _path(self.qsettings.value(key, ""))

    def _set_path(self, key: str, path: str) -> None:
        self.qsettings.setValue(key, _storable(path))

    @property
    def last_source(self) -> str | None:
        return self._get_path("source/last") or None

    @last_source.setter
    def last_source(self, spec: str | None) -> None:
        self._set_path("source/last", spec or "")

    @property
    def recent_files(self) -> list[str]:
        return [_path(p) for p in self._get("source/recent", [], list) if p]

    def add_recent(self, path: str) -> None:
        """Put a file first in the recent list (without duplicates, at most MAX_RECENT)."""
        recent = [path, *[p for p in self.recent_files if p != path]][:MAX_RECENT]
        self.qsettings.setValue("source/recent", [_storable(p) for p in recent])

    @property
    def conf(self) -> float:
        return self._get("recognition/conf", DEFAULT_CONF, float)

    @conf.setter
    def conf(self, value: float) -> None:
        self.qsettings.setValue("recognition/conf", float(value))

    def flag(self, name: str, default: bool) -> bool:
        """A remembered on/off toggle, e.g. ``flag("show_boxes", True)``."""
        return self._get(f"toggles/{name}", default, bool)

    def set_flag(self, name: str, value: bool) -> None:
        self.qsettings.setValue(f"toggles/{name}", bool(value))

    @property
    def geometry(self) -> QByteArray | None:
        value = self._get("window/geometry", QByteArray(), QByteArray)
        return value if not value.isEmpty() else None

    @geometry.setter
    def geometry(self, value: QByteArray) -> None:
        self.qsettings.setValue("window/geometry", value)

    @property
    def output_dir(self) -> str:
        """Folder for recordings and snapshots ("" means the user's Videos/Pictures folders)."""
        return self._get_path("output/dir")

    @output_dir.setter
    def output_dir(self, path: str) -> None:
        self._set_path("output/dir", path)

    def sync(self) -> None:
        self.qsettings.sync()
