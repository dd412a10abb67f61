"""Numpy images as Qt images (copies Qt owns, for icons and small drawings, not for video frames).

Example:
    >>> pixmap = QPixmap.fromImage(to_qimage(pictogram(14, 40)))
"""

from __future__ import annotations

import numpy as np
from PyQt6.QtGui import QImage

__all__ = ["to_qimage"]


def to_qimage(bgr: np.ndarray, alpha: np.ndarray | None = None) -> QImage:
    """A QImage owning a copy of ``bgr`` (H x W x 3 uint8), with ``alpha`` (H x W, 0..1) as transparency."""
    height, width = bgr.shape[:2]
    if alpha is None:
        data = np.ascontiguousarray(bgr)
        image = QImage(data.data, width, height, width * 3, QImage.Format.Format_BGR888)
    else:
        data = np.dstack([bgr, np.round(np.asarray(alpha) * 255).astype(np.uint8)])
        # BGRA bytes are ARGB32 on little-endian machines, the only ones PyQt6 wheels exist for.
        image = QImage(data.data, width, height, width * 4, QImage.Format.Format_ARGB32)
    return image.copy()  # detach from ``data``, which Python frees on return
