"""Controls under the video and in the side panel: playback bar and recognition settings.

Buttons are bound to the window's QActions, so menus, shortcuts and buttons share one state.

Example:
    >>> bar = QtPlaybackBar(actions)
    >>> bar.seekRequested.connect(player.seek)
    >>> bar.set_source(info); bar.set_position(frame.index, frame.time_ms)
"""

from __future__ import annotations

from collections.abc import Mapping

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QAction
from PyQt6.QtWidgets import (
    QAbstractSlider,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProxyStyle,
    QSlider,
    QStyle,
    QStyleOption,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from signcam.recognizer import DEFAULT_CONF

from .qt_event_panel import format_time
from .qt_player import SourceInfo

__all__ = ["QtPlaybackBar", "QtRecognitionControls", "SPEEDS", "action_checkbox", "action_button"]

SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0)


def action_button(action: QAction) -> QToolButton:
    """A tool button that triggers (and mirrors) ``action``; it takes no focus, so keys stay shortcuts."""
    button = QToolButton()
    button.setDefaultAction(action)
    button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    button.setAutoRaise(True)
    return button


def action_checkbox(action: QAction) -> QCheckBox:
    """A check box kept in step with a checkable ``action`` both ways."""
    box = QCheckBox(action.text().replace("&", ""))
    box.setChecked(action.isChecked())
    box.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    box.toggled.connect(action.setChecked)
    action.toggled.connect(box.setChecked)
    return box


class _JumpToClick(QProxyStyle):
    """A seek bar that goes where it is clicked, as in video players (Qt's own steps a page towards it)."""

    def styleHint(self, hint: QStyle.StyleHint, option: QStyleOption | None = None, widget: QWidget | None = None,
                  returnData: object = None) -> int:
        if hint == QStyle.StyleHint.SH_Slider_AbsoluteSetButtons:
            return Qt.MouseButton.LeftButton.value
        return super().styleHint(hint, option, widget, returnData)


class QtPlaybackBar(QWidget):
    """Play/pause, step, seek bar with time, playback speed and loop.

    Args:
        actions: The window's actions by name: ``play``, ``step_back``, ``step``, ``loop``.

    Signals:
        seekRequested(int): The user moved the seek bar to a frame.
        speedChanged(float): A playback speed was picked.
    """

    seekRequested = pyqtSignal(int)
    speedChanged = pyqtSignal(float)

    def __init__(self, actions: Mapping[str, QAction], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._fps = 25.0
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self._style = _JumpToClick()
        self._style.setParent(self.slider)
        self.slider.setStyle(self._style)
        self.slider.setMinimumWidth(160)  # still a seek bar in the narrowest window
        self.slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.slider.setTracking(False)
        self.slider.sliderMoved.connect(self.seekRequested)
        self.slider.actionTriggered.connect(self._on_slider_action)
        self.time_label = QLabel()
        self.time_label.setMinimumWidth(120)
        self.time_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.speed = QComboBox()
        self.speed.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.speed.setToolTip("Playback speed")
        for speed in SPEEDS:
            self.speed.addItem(f"{speed:g}x", speed)
        self.speed.setCurrentIndex(SPEEDS.index(1.0))
        self.speed.currentIndexChanged.connect(lambda i: self.speedChanged.emit(self.speed.itemData(i)))

        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        for name in ("step_back", "play", "step"):
            layout.addWidget(action_button(actions[name]))
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.time_label)
        layout.addWidget(self.speed)
        layout.addWidget(action_checkbox(actions["loop"]))
        self.set_source(None)

    def set_source(self, info: SourceInfo | None) -> None:
        """Adapt to a source: seeking only in files and image folders."""
        seekable = info is not None and not info.is_live and bool(info.frame_count)
        self._fps = info.fps if info is not None else 25.0
        self._images = info.frame_count if info is not None and info.is_stills else None
        self.slider.setEnabled(seekable)
        self.slider.setRange(0, (info.frame_count or 1) - 1 if seekable else 0)
        self._total = format_time((info.frame_count or 0) * 1000.0 / self._fps) if seekable else ""
        self.set_position(0, 0.0)

    def set_position(self, index: int, time_ms: float) -> None:
        """Show the current frame's position (the bar does not move while the user drags it)."""
        if not self.slider.isSliderDown():
            self.slider.blockSignals(True)
            self.slider.setValue(index)
            self.slider.blockSignals(False)
        if self._images is not None:
            self.time_label.setText(f"image {index + 1} / {self._images}")
        else:
            self.time_label.setText(f"{format_time(time_ms)} / {self._total}" if self._total else format_time(time_ms))

    def _on_slider_action(self, action: int) -> None:
        # A click on the groove (a SliderMove before the handle is down) and keys move the bar
        # without sliderMoved; dragging the handle is handled there.
        if action != QAbstractSlider.SliderAction.SliderMove.value or not self.slider.isSliderDown():
            self.seekRequested.emit(self.slider.sliderPosition())


class QtRecognitionControls(QWidget):
    """Confidence threshold slider, analysis mode and what the overlay shows.

    Args:
        actions: ``every_frame``, ``show_boxes``, ``show_labels``, ``show_rejected``, ``record``, ``snapshot``.
        conf: Initial threshold, 0..1.

    Signals:
        confChanged(float): The threshold moved.
    """

    confChanged = pyqtSignal(float)

    def __init__(self, actions: Mapping[str, QAction], conf: float = DEFAULT_CONF,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 100)
        self.slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.slider.setToolTip("Signs less likely than this are not shown")
        self.value_label = QLabel()
        self.slider.valueChanged.connect(self._on_value)
        self.set_conf(conf)

        threshold = QHBoxLayout()
        threshold.addWidget(self.slider, 1)
        threshold.addWidget(self.value_label)
        form = QFormLayout()
        form.addRow("Confidence", threshold)
        buttons = QHBoxLayout()
        for name in ("record", "snapshot"):
            button = action_button(actions[name])
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(form)
        for name in ("every_frame", "show_boxes", "show_labels", "show_rejected"):
            layout.addWidget(action_checkbox(actions[name]))
        layout.addLayout(buttons)

    @property
    def conf(self) -> float:
        return self.slider.value() / 100.0

    def set_conf(self, conf: float) -> None:
        self.slider.setValue(round(conf * 100))
        self._show_value()

    def _show_value(self) -> None:
        self.value_label.setText(f"{self.conf:.2f}")

    def _on_value(self, _: int) -> None:
        self._show_value()
        self.confChanged.emit(self.conf)
