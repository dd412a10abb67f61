"""What the window shows with nothing open: why, and buttons to open something; plus camera discovery.

Example:
    >>> screen = QtStartScreen([actions["open_video"], actions["open_camera"], actions["demo"]])
    >>> screen.set_message("No camera was found.")
    >>> list_cameras()
    [(0, 'Integrated Camera')]
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QAction, QFont
from PyQt6.QtWidgets import QLabel, QPushButton, QVBoxLayout, QWidget

from signcam.sources import find_cameras

__all__ = ["QtStartScreen", "list_cameras"]

def _qt_cameras() -> list[str]:
    try:
        from PyQt6.QtMultimedia import QMediaDevices
    except ImportError:  # QtMultimedia is optional and needs system libraries (PulseAudio, GStreamer)
        return []
    return [device.description() for device in QMediaDevices.videoInputs()]


def list_cameras() -> list[tuple[int, str]]:
    """``(OpenCV index, name)`` of the cameras present, by name where the system can tell.

    On Linux, video4linux gives both (see :func:`signcam.sources.find_cameras`). Elsewhere
    QtMultimedia's names are taken in OpenCV's order; without them, indices are probed.
    """
    if not sys.platform.startswith("linux"):
        names = _qt_cameras()
        if names:
            return list(enumerate(names))
    return find_cameras()


class QtStartScreen(QWidget):
    """A message (e.g. "No camera was found") and one big button per way to open something.

    Args:
        actions: The window's open actions, shown in this order.
    """

    def __init__(self, actions: Sequence[QAction], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        title = QLabel("signcam")
        font = QFont(self.font())
        font.setPixelSize(40)
        font.setBold(True)
        title.setFont(font)
        subtitle = QLabel("Road-sign recognition from a camera, a video or a stream")
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #c0392b; font-size: 15px;")
        self.buttons: list[QPushButton] = []
        layout = QVBoxLayout(self)
        layout.addStretch(2)
        for label in (title, subtitle, self.message):
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            layout.addWidget(label)
        layout.addSpacing(16)
        for action in actions:
            button = QPushButton(action.icon(), action.text().replace("&", "").rstrip(".…"))
            button.setMinimumSize(260, 40)
            button.clicked.connect(action.trigger)
            self.buttons.append(button)
            layout.addWidget(button, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addStretch(3)

    def set_message(self, text: str) -> None:
        self.message.setText(text)
        self.message.setVisible(bool(text))
