"""Fixtures for the app's tests: a synthetic clip, a fake recogniser, settings in a temporary folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from PyQt6.QtCore import QSettings
from qt_testing import FakeRecognizer, write_clip

from signcam._qt.qt_main_window import QtMainWindow
from signcam._qt.qt_settings import QtAppSettings
from signcam.pipeline import Engine


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("clips") / "clip.mp4")


@pytest.fixture(scope="session")
def other_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("clips") / "other.mp4", frames=40)


@pytest.fixture
def settings(tmp_path: Path) -> QtAppSettings:
    settings = QtAppSettings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    settings.output_dir = str(tmp_path / "out")
    return settings


@pytest.fixture
def make_window(qtbot, settings: QtAppSettings):
    """Build shown windows (a fake engine unless one is given); all are closed after the test."""

    def make(engine: Engine | None | str = "fake", model_error: str | None = None,
             window_settings: QtAppSettings | None = None) -> QtMainWindow:
        engine = Engine(FakeRecognizer()) if engine == "fake" else engine
        window = QtMainWindow(engine, window_settings or settings, model_error)
        qtbot.addWidget(window)
        window.show()
        qtbot.waitUntil(window.isActiveWindow)  # keys reach shortcuts only in the active window
        return window

    return make


@pytest.fixture
def window(make_window) -> QtMainWindow:
    return make_window()
