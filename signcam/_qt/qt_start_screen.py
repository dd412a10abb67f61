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
from pathlib import Path

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QAction, QFont
from PyQt6.QtWidgets import QLabel, QPushButton, QVBoxLayout, QWidget

__all__ = ["QtStartScreen", "list_cameras", "PROBED_CAMERAS"]

#: Camera indices tried when the system cannot list its cameras.
PROBED_CAMERAS = range(4)
_V4L = Path("/sys/class/video4linux")


def _qt_cameras() -> list[str]:
    try:
        from PyQt6.QtMultimedia import QMediaDevices
    except ImportError:  # QtMultimedia is optional and needs system libraries (PulseAudio, GStreamer)
        return []
    return [device.description() for device in QMediaDevices.videoInputs()]


def _v4l_cameras() -> list[tuple[int, str]]:
    cameras = []
    for node in sorted(_V4L.glob("video*"), key=lambda p: int(p.name[5:]) if p.name[5:].isdigit() else -1):
        # Each UVC camera also has metadata nodes; the capture node is the one with index 0.
        index_file = node / "index"
        if index_file.is_file() and index_file.read_text().strip() != "0":
            continue
        name = (node / "name").read_text().strip() if (node / "name").is_file() else node.name
        if node.name[5:].isdigit():
            cameras.append((int(node.name[5:]), name))
    return cameras


def _probe_cameras() -> list[tuple[int, str]]:
    import cv2

    found = []
    for index in PROBED_CAMERAS:
        capture = cv2.VideoCapture(index)
        if capture.isOpened():
            found.append((index, f"Camera {index}"))
        capture.release()
    return found


def list_cameras() -> list[tuple[int, str]]:
    """``(OpenCV index, name)`` of the cameras present, by name where the system can tell.

    Names come from QtMultimedia, else (Linux) from video4linux; without either, indices
    0..3 are probed with OpenCV and named "Camera N".
    """
    names = _qt_cameras()
    if names:
        return list(enumerate(names))
    if sys.platform.startswith("linux"):
        return _v4l_cameras()
    return _probe_cameras()


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
