"""Test doubles for the app's tests: a synthetic clip and a recogniser that finds its one sign."""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np

from signcam.detection import Detection

#: The synthetic clip: CLIP_FRAMES frames at CLIP_FPS, a white "sign" in SIGN_BOX from SIGN_FROM on.
CLIP_FRAMES, CLIP_FPS, CLIP_SIZE = 80, 25.0, (320, 240)
SIGN_BOX, SIGN_FROM, SIGN_CLASS = (200, 60, 239, 99), 30, 2


class FakeRecognizer:
    """Finds the clip's white square (class ``SIGN_CLASS``) by its brightness: instant and predictable."""

    def __init__(self) -> None:
        self.conf = 0.5
        self.timings_ms: dict[str, float] = {}

    def __call__(self, image: np.ndarray, keep_rejected: bool = False,
                 windows: np.ndarray | None = None) -> list[Detection]:
        x1, y1, x2, y2 = SIGN_BOX
        if image[y1:y2 + 1, x1:x2 + 1].mean() > 128:
            return [Detection(SIGN_BOX, SIGN_CLASS, 0.9)]
        return [Detection((20, 20, 50, 50), SIGN_CLASS, 0.1, accepted=False)] if keep_rejected else []


def write_clip(path: Path, frames: int = CLIP_FRAMES, fps: float = CLIP_FPS) -> Path:
    """A grey clip with a moving bar (so frames differ) and the white square from SIGN_FROM on."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, CLIP_SIZE)
    for index in range(frames):
        image = np.full((CLIP_SIZE[1], CLIP_SIZE[0], 3), 60, np.uint8)
        image[180:200, (index * 3) % 300:(index * 3) % 300 + 20] = (0, 160, 255)
        if index >= SIGN_FROM:
            x1, y1, x2, y2 = SIGN_BOX
            image[y1:y2 + 1, x1:x2 + 1] = 255
        writer.write(image)
    writer.release()
    return path


class FakeCapture:
    """A camera or stream (what ``LiveSource`` reads) at CLIP_FPS that delivers frames until :meth:`stop`."""

    def __init__(self) -> None:
        self.stopped = threading.Event()

    def stop(self) -> None:
        """Unplug the camera / end the stream."""
        self.stopped.set()

    def read(self) -> tuple[bool, np.ndarray | None]:
        # Waiting for the next frame like a device does; stop() ends the wait at once.
        if self.stopped.wait(1.0 / CLIP_FPS):
            return False, None
        return True, np.full((CLIP_SIZE[1], CLIP_SIZE[0], 3), 90, np.uint8)

    def get(self, prop_id: int) -> float:
        return CLIP_FPS

    def release(self) -> None:
        """Nothing to release."""
