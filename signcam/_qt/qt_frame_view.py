"""The video view: shows annotated frames scaled to fit, keeping their aspect ratio.

Example:
    >>> view = QtFrameView()
    >>> view.set_image(qimage)          # a QImage the player handed out
    >>> view.frames_shown
    1
"""

from __future__ import annotations

from PyQt6.QtCore import QRect, QSize, Qt
from PyQt6.QtGui import QColor, QImage, QPainter, QPaintEvent
from PyQt6.QtWidgets import QSizePolicy, QWidget

__all__ = ["QtFrameView", "fit_rect"]


def fit_rect(image_size: QSize, area: QRect) -> QRect:
    """The largest rectangle of ``image_size``'s aspect ratio centred in ``area``."""
    scaled = image_size.scaled(area.size(), Qt.AspectRatioMode.KeepAspectRatio)
    return QRect(area.x() + (area.width() - scaled.width()) // 2,
                 area.y() + (area.height() - scaled.height()) // 2, scaled.width(), scaled.height())


class QtFrameView(QWidget):
    """Paints the newest frame, letterboxed, scaled in ``paintEvent`` (no per-frame pixmap copies).

    The image is an RGB32 QImage over the player's buffer, which Qt's raster engine scales
    fastest; the view only keeps the newest one, so frames arriving faster than the screen
    refreshes replace each other instead of queueing.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._image: QImage | None = None
        self._painted_image: QImage | None = None
        #: Frames actually painted (a frame replaced before it was painted does not count).
        self.frames_shown = 0
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(320, 180)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

    def set_image(self, image: QImage | None) -> None:
        """Show ``image`` from the next paint on (``None`` clears the view)."""
        self._image = image
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(960, 565)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(18, 18, 18))
        if self._image is not None and not self._image.isNull():
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawImage(fit_rect(self._image.size(), self.rect()), self._image)
            if self._image is not self._painted_image:
                self._painted_image = self._image
                self.frames_shown += 1
        painter.end()
