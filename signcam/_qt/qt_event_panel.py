"""The side panel: the speed limit in force and the list of signs recognised so far.

Example:
    >>> panel = QtEventPanel()
    >>> panel.add_events([event], epoch=1)
    >>> panel.eventActivated.connect(lambda event: player.seek(event.frame_index))
    >>> panel.export("signs.csv")
"""

from __future__ import annotations

import os
from pathlib import Path

from PyQt6.QtCore import QSize, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QFont, QIcon, QPainter, QPaintEvent, QPixmap
from PyQt6.QtWidgets import QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from signcam.pictograms import pictogram, speed_limit_sign
from signcam.road import SignEvent, SignLog
from signcam.sinks import write_events

from .qt_images import to_qimage

__all__ = ["QtEventPanel", "QtSpeedLimitSign", "format_time"]

ICON_SIZE = 40
#: Rows of the signs list that stay in view however small the window.
MIN_ROWS = 3


def format_time(time_ms: float) -> str:
    """``m:ss.s`` (``h:mm:ss.s`` past an hour)."""
    minutes, seconds = divmod(max(time_ms, 0.0) / 1000.0, 60.0)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{seconds:04.1f}" if hours else f"{minutes}:{seconds:04.1f}"


class QtSpeedLimitSign(QWidget):
    """The speed limit in force, drawn as the sign itself (like a car's sign assistant); grey when none."""

    def __init__(self, size: int = 96, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._size = size
        self._limit: int | None = None
        self._image = None
        self.setFixedSize(size, size)
        self.setToolTip("Speed limit in force")

    @property
    def limit(self) -> int | None:
        return self._limit

    def set_limit(self, limit: int | None) -> None:
        if limit != self._limit:
            self._limit = limit
            self._image = None if limit is None else to_qimage(*speed_limit_sign(limit, self._size))
            self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        if self._image is not None:
            painter.drawImage(0, 0, self._image)
        else:
            pen = painter.pen()
            pen.setColor(QColor(130, 130, 130))
            pen.setWidth(max(2, self._size // 16))
            painter.setPen(pen)
            inset = pen.width()
            painter.drawEllipse(inset, inset, self._size - 2 * inset, self._size - 2 * inset)
            font = QFont(self.font())
            font.setPixelSize(self._size // 3)
            painter.setFont(font)
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "–")
        painter.end()


class QtEventPanel(QWidget):
    """The speed limit and the signs recognised (pictogram, name, confidence, time), newest first.

    Clicking an entry sends ``eventActivated(SignEvent)``; the window seeks the video there.
    The list is a :class:`~signcam.road.SignLog`: a sign found again after a seek or loop is
    not listed twice.
    """

    eventActivated = pyqtSignal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._log = SignLog()
        self._limit_epoch = 0
        self._icons: dict[int, QIcon] = {}
        self.speed_limit = QtSpeedLimitSign(96)
        self._limit_label = QLabel("No speed limit")
        self._limit_label.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        self._count_label = QLabel()
        self.list = QListWidget()
        self.list.setIconSize(QSize(ICON_SIZE, ICON_SIZE))
        self.list.setUniformItemSizes(True)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # long names end in …
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.list.setMinimumHeight(MIN_ROWS * (ICON_SIZE + 8))  # a few signs even in the smallest window
        self.list.itemClicked.connect(self._on_clicked)
        self.list.itemActivated.connect(self._on_clicked)

        layout = QVBoxLayout(self)
        layout.addWidget(self.speed_limit, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self._limit_label)
        layout.addWidget(self._count_label)
        layout.addWidget(self.list, 1)
        self._update_count()

    @property
    def events(self) -> list[SignEvent]:
        """The listed events, oldest first (what :meth:`export` writes)."""
        return self._log.events

    def set_speed_limit(self, limit: int | None, epoch: int = 0) -> None:
        """Show ``limit``, unless one of a later ``epoch`` (recognition's, after a seek or a new source) came first."""
        if epoch < self._limit_epoch:
            return
        self._limit_epoch = epoch
        self.speed_limit.set_limit(limit)
        self._limit_label.setText("No speed limit" if limit is None else f"Limit {limit} km/h")

    def clear(self, epoch: int = 0) -> None:
        """Empty the list; events of epochs before ``epoch`` (an older source) are ignored from now on."""
        self._log.clear(epoch)
        self.list.clear()
        self._update_count()

    def add_events(self, events: list[SignEvent], epoch: int) -> None:
        """List new events (from :class:`~signcam._qt.qt_recognition.QtRecognition`), unless seen already."""
        for event in self._log.add(events, epoch):
            still = event.track_id is None  # a sign in a still image: named by its image, not a time
            where = Path(event.source).name if still and event.source else format_time(event.time_ms)
            item = QListWidgetItem(self._icon(event.class_id), f"{event.label}\n{event.score:.0%} · {where}")
            item.setData(Qt.ItemDataRole.UserRole, event)
            item.setToolTip(f"{event.label}, image {event.frame_index + 1}: {event.source}" if still else
                            f"{event.label}, frame {event.frame_index}, track {event.track_id}: click to go there")
            self.list.insertItem(0, item)
        self._update_count()

    def export(self, path: str | os.PathLike) -> Path:
        """Write the listed events to a ``.csv`` or ``.json`` file.

        Raises:
            SignCamError: another suffix, or the file cannot be written.
        """
        return write_events(self.events, path)

    def _icon(self, class_id: int) -> QIcon:
        if class_id not in self._icons:
            self._icons[class_id] = QIcon(QPixmap.fromImage(to_qimage(pictogram(class_id, ICON_SIZE))))
        return self._icons[class_id]

    def _update_count(self) -> None:
        count = len(self._log.events)
        self._count_label.setText(f"{count} sign{'s' if count != 1 else ''} recognised")

    def _on_clicked(self, item: QListWidgetItem) -> None:
        self.eventActivated.emit(item.data(Qt.ItemDataRole.UserRole))
