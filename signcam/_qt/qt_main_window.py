"""The main window: video view, playback bar, signs panel, menus, shortcuts and status bar.

It wires the player and recognition threads to the widgets and remembers settings; it
computes nothing itself.

Example:
    >>> window = QtMainWindow(Engine(), QtAppSettings())
    >>> window.show()
    >>> window.start("drive.mp4")       # else the last source, else the first camera
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from PyQt6.QtCore import QStandardPaths, Qt, QTimer, QUrl
from PyQt6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QIcon, QKeyEvent, QKeySequence
from PyQt6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QStackedWidget,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from signcam.demo import demo_video_path
from signcam.errors import SignCamError
from signcam.pipeline import Engine
from signcam.road import SignEvent
from signcam.sinks import EVENT_FORMATS
from signcam.sources import IMAGE_SUFFIXES, PROBED_CAMERAS, local_path

from .qt_controls import QtPlaybackBar, QtRecognitionControls
from .qt_event_panel import QtEventPanel
from .qt_frame_view import QtFrameView
from .qt_player import QtPlayer, SourceInfo
from .qt_recognition import QtRecognition
from .qt_settings import QtAppSettings
from .qt_start_screen import QtStartScreen, list_cameras

__all__ = ["QtMainWindow", "NO_CAMERA", "SEEK_SECONDS"]

log = logging.getLogger(__name__)

NO_CAMERA = "No camera was found. Open a video, a stream or an image folder, or watch the demo."
SEEK_SECONDS = 5.0
VIDEO_FILTER = "Videos (*.mp4 *.avi *.mkv *.mov *.m4v *.webm *.mpg *.mpeg);;Images ({});;All files (*)".format(
    " ".join(f"*{suffix}" for suffix in IMAGE_SUFFIXES))
#: What the overlay shows: (command, menu text, shortcut).
TOGGLES = (("show_boxes", "Show &Boxes", "B"), ("show_labels", "Show &Labels", "L"),
           ("show_rejected", "Show &Rejected Candidates", "D"))
#: On/off commands remembered between runs, with their defaults.
FLAG_DEFAULTS = {"show_boxes": True, "show_labels": True, "show_rejected": False, "loop": False, "every_frame": False}


class QtMainWindow(QMainWindow):
    """signcam's window.

    Args:
        engine: The recognition engine; ``None`` plays without recognition.
        settings: Where settings live (tests pass a temporary one).
        model_error: Why there is no engine, shown in the status bar.
    """

    def __init__(self, engine: Engine | None, settings: QtAppSettings | None = None,
                 model_error: str | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("signcam")
        self.setAcceptDrops(True)
        self.settings = settings if settings is not None else QtAppSettings()
        self.model_error = model_error
        self.recognition = QtRecognition(engine, self)
        self.player = QtPlayer(self.recognition, self)
        #: The last error reported to the user (tests read it).
        self.last_error: str | None = None
        self._shown_this_source = False
        #: The source opened last, and the same once it broke off after some of it was shown
        #: (Play then opens it again).
        self._opened_spec: str | None = None
        #: What the status bar says while a source opens, and what it keeps saying once it has.
        self._opening_note: tuple[str, str] = ("", "")
        self._broken_source: str | None = None
        self._shutting_down = False
        #: Set before the window is closed with no one at it (Ctrl-C or SIGTERM in its terminal),
        #: so that closing asks no questions.
        self.unattended = False
        self._stats = (time.monotonic(), 0, 0)
        #: The window's QActions by name (menus, toolbar, buttons and shortcuts share them).
        self.commands = self._make_actions()
        self._make_widgets()
        self._make_menus()
        self._restore_settings()
        self._connect()
        self.commands["play"].setEnabled(False)  # nothing to play yet
        self._stats_timer = QTimer(self, interval=500, timeout=self._update_stats)
        self._stats_timer.start()
        if model_error:
            self.show_error(f"recognition is off: {model_error}")

    # -- construction ---------------------------------------------------------------------

    def _icon(self, name: str) -> QIcon:
        return self.style().standardIcon(getattr(QStyle.StandardPixmap, name))

    def _make_actions(self) -> dict[str, QAction]:
        actions: dict[str, QAction] = {}

        def add(name: str, text: str, slot: Callable | None, shortcuts: tuple[str, ...] = (),
                icon: str | None = None, checkable: bool = False) -> None:
            action = QAction(text, self)
            action.setShortcuts([QKeySequence(s) for s in shortcuts])
            action.setCheckable(checkable)
            if icon:
                action.setIcon(self._icon(icon))
            if slot is not None:
                action.triggered.connect(slot)
            self.addAction(action)  # shortcuts work in fullscreen too, with the menus hidden
            actions[name] = action

        add("open_video", "Open &Video…", lambda: self.open_video_dialog(), ("O", "Ctrl+O"), "SP_DialogOpenButton")
        add("open_camera", "Open &Camera…", lambda: self.open_camera_dialog(), ("C",), "SP_ComputerIcon")
        add("open_stream", "Open &Stream URL…", lambda: self.open_stream_dialog(), ("U",), "SP_DriveNetIcon")
        add("open_folder", "Open &Image Folder…", lambda: self.open_folder_dialog(), (), "SP_DirIcon")
        add("demo", "Play the &Demo", lambda: self.open_source("demo"), (), "SP_FileDialogContentsView")
        add("export_csv", "Export Signs as &CSV…", lambda: self.export_events_dialog(".csv"))
        add("export_json", "Export Signs as &JSON…", lambda: self.export_events_dialog(".json"))
        add("clear_events", "C&lear Signs", lambda: self.panel.clear(self.recognition.epoch))
        add("record", "&Record", lambda: self.toggle_recording(), ("R",), "SP_DialogSaveButton", checkable=True)
        add("snapshot", "&Snapshot", lambda: self.save_snapshot(), ("S",), "SP_DesktopIcon")
        add("quit", "&Quit", self.close, ("Ctrl+Q",))
        add("play", "&Play", lambda: self.toggle_play(), ("Space",), "SP_MediaPlay")
        add("step", "Step &Forward", lambda: self.player.step(1), ("Right",), "SP_MediaSeekForward")
        add("step_back", "Step &Back", lambda: self.player.step(-1), ("Left",), "SP_MediaSeekBackward")
        add("forward", f"Forward {SEEK_SECONDS:g} s", lambda: self.seek_seconds(SEEK_SECONDS), ("Shift+Right",))
        add("back", f"Back {SEEK_SECONDS:g} s", lambda: self.seek_seconds(-SEEK_SECONDS), ("Shift+Left",))
        add("loop", "&Loop", None, (), checkable=True)
        add("every_frame", "Analyse &Every Frame", None, (), checkable=True)
        for name, text, shortcut in TOGGLES:
            add(name, text, None, (shortcut,), checkable=True)
        add("fullscreen", "&Fullscreen", lambda: self.toggle_fullscreen(), ("F",), "SP_TitleBarMaxButton",
            checkable=True)
        actions["every_frame"].setToolTip("Recognise every frame, slower than real time if need be; "
                                          "otherwise keep real time and skip frames")
        return actions

    def _make_widgets(self) -> None:
        a = self.commands
        self.view = QtFrameView()
        self.bar = QtPlaybackBar(a)
        video_page = QWidget()
        video_layout = QVBoxLayout(video_page)
        video_layout.setContentsMargins(0, 0, 0, 0)
        video_layout.setSpacing(0)
        video_layout.addWidget(self.view, 1)
        video_layout.addWidget(self.bar)
        self.start_screen = QtStartScreen([a["open_video"], a["open_camera"], a["open_stream"], a["open_folder"],
                                           a["demo"]])
        self.stack = QStackedWidget()
        self.stack.addWidget(self.start_screen)
        self.stack.addWidget(video_page)
        self.video_page = video_page
        self.setCentralWidget(self.stack)

        self.panel = QtEventPanel()
        self.controls = QtRecognitionControls(a, self.settings.conf)
        self.controls.setEnabled(self.recognition.engine is not None)
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.addWidget(self.panel, 1)
        side_layout.addWidget(self.controls)
        self.dock = QDockWidget("Signs", self)
        self.dock.setObjectName("signs")
        self.dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                              | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.dock.setWidget(side)
        self.dock.setMinimumWidth(240)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)

        self.toolbar = self.addToolBar("Main")
        self.toolbar.setObjectName("main")
        self.toolbar.setMovable(False)
        self.toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for name in ("open_video", "open_camera", "demo", None, "play", "record", "snapshot", None, "fullscreen"):
            self.toolbar.addSeparator() if name is None else self.toolbar.addAction(a[name])
        self.source_label = QLabel()
        self.stats_label = QLabel()
        self.statusBar().addPermanentWidget(self.source_label)
        self.statusBar().addPermanentWidget(self.stats_label)

    def _make_menus(self) -> None:
        a = self.commands
        menu = self.menuBar().addMenu("&File")
        for name in ("open_video", "open_camera", "open_stream", "open_folder"):
            menu.addAction(a[name])
        self.recent_menu = menu.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        menu.addAction(a["demo"])
        menu.addSeparator()
        for name in ("export_csv", "export_json", "clear_events", None, "record", "snapshot", None, "quit"):
            menu.addSeparator() if name is None else menu.addAction(a[name])
        menu = self.menuBar().addMenu("&Playback")
        for name in ("play", "step", "step_back", "forward", "back", None, "loop", "every_frame"):
            menu.addSeparator() if name is None else menu.addAction(a[name])
        menu = self.menuBar().addMenu("&View")
        for name, *_ in TOGGLES:
            menu.addAction(a[name])
        menu.addSeparator()
        menu.addAction(self.dock.toggleViewAction())
        menu.addAction(a["fullscreen"])

    def _restore_settings(self) -> None:
        for name, default in FLAG_DEFAULTS.items():
            self.commands[name].setChecked(self.settings.flag(name, default))
            self._apply_flag(name, self.commands[name].isChecked())
        self.recognition.set_conf(self.settings.conf)
        geometry = self.settings.geometry
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1280, 800)

    def _connect(self) -> None:
        a = self.commands
        self.player.opened.connect(self._on_opened)
        self.player.frameReady.connect(self._on_frame)
        self.player.failed.connect(self._on_failed)
        self.player.skipped.connect(self._on_skipped)
        self.player.playingChanged.connect(self._on_playing)
        self.player.recordingChanged.connect(lambda path: a["record"].setChecked(path is not None))
        self.recognition.eventsFound.connect(self.panel.add_events)
        self.recognition.speedLimitChanged.connect(self.panel.set_speed_limit)
        self.recognition.failed.connect(self.show_error)
        self.panel.eventActivated.connect(self.go_to_event)
        self.bar.seekRequested.connect(self.player.seek)
        self.bar.speedChanged.connect(self.player.set_speed)
        self.controls.confChanged.connect(self._on_conf)
        for name in FLAG_DEFAULTS:
            a[name].toggled.connect(lambda on, name=name: self._set_flag(name, on))

    # -- opening sources ------------------------------------------------------------------

    def start(self, source: str | None = None) -> None:
        """Open ``source``, else the last source used, else the first camera, else show the start screen."""
        spec = source or self.settings.last_source
        if spec:
            self.open_source(spec)
            return
        cameras = list_cameras()
        if cameras:
            self.open_source(str(cameras[0][0]))
        else:
            self.show_start(NO_CAMERA)

    def open_source(self, spec: str) -> None:
        """Open a camera index, stream URL, file, folder or ``demo``; failures show in the window."""
        try:
            saved = self.player.stop_recording()  # finished before the source it records goes
        except SignCamError as exc:
            saved = None
            self.show_error(str(exc), dialog=True)  # the status bar is about to say "Opening"
        self._shown_this_source = False
        self._broken_source = None
        self.view.set_image(None)
        self.bar.set_source(None)
        opening = f"Opening {spec}…"
        if spec == "demo" and not demo_video_path(make=False).is_file():
            opening = "Opening demo: drawing the clip, the first time only (about 10 s)…"
        kept = f"Saved the recording {saved}." if saved else ""
        self._opening_note = (f"{kept} {opening}".lstrip(), kept)
        self.statusBar().showMessage(self._opening_note[0], 15_000)
        self.commands["play"].setEnabled(False)  # until it opens: it plays as soon as it does
        self.player.open(str(spec))
        self._forget_source_shown()  # after open(), whose reset outdates what is in flight

    def show_start(self, message: str = "") -> None:
        self.start_screen.set_message(message)
        self.stack.setCurrentWidget(self.start_screen)

    def open_video_dialog(self) -> None:
        recent = self.settings.recent_files
        folder = str(Path(recent[0]).parent) if recent else ""
        path, _ = QFileDialog.getOpenFileName(self, "Open video", folder, VIDEO_FILTER)
        if path:
            self.open_source(path)

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open image folder")
        if folder:
            self.open_source(folder)

    def open_stream_dialog(self) -> None:
        url, ok = QInputDialog.getText(self, "Open stream", "Stream URL (rtsp://, http://, …):")
        if ok and url.strip():
            self.open_source(url.strip())

    def open_camera_dialog(self) -> None:
        cameras = list_cameras() or [(index, f"Camera {index} (not detected)") for index in PROBED_CAMERAS]
        items = [f"{index}: {name}" for index, name in cameras]
        choice, ok = QInputDialog.getItem(self, "Open camera", "Camera (or type its number):", items, 0, True)
        index = choice.split(":", 1)[0].strip()
        if ok and index:
            self.open_source(index) if index.isdigit() else self.show_error(f"not a camera number: {index}")

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        for path in self.settings.recent_files:
            self.recent_menu.addAction(path, lambda path=path: self.open_source(path))
        if self.recent_menu.isEmpty():
            self.recent_menu.addAction("No recent files").setEnabled(False)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        urls = event.mimeData().urls()
        if urls and urls[0].isLocalFile():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        # Read from the URL's escaped text: Qt decodes a name that is not UTF-8 into replacement marks.
        self.open_source(str(local_path(event.mimeData().urls()[0].toString(QUrl.ComponentFormattingOption.FullyEncoded))))
        event.acceptProposedAction()

    # -- player and recognition signals ---------------------------------------------------

    def _on_opened(self, info: SourceInfo) -> None:
        self._opened_spec = info.spec
        self.panel.clear(self.recognition.epoch)
        self.bar.set_source(info)
        self.source_label.setText(info.description)
        path = local_path(info.spec)  # None for a camera, a stream or the demo
        self.setWindowTitle(f"{path.name if path is not None and path.name else info.spec} – signcam")
        self.stack.setCurrentWidget(self.video_page)
        self.commands["play"].setEnabled(True)
        seekable = not info.is_live
        for name in ("step_back", "forward", "back"):
            self.commands[name].setEnabled(seekable)
        if path is not None and path.exists():  # by its full path: the next start may be from another folder
            self.settings.last_source = str(path.resolve())
            self.settings.add_recent(self.settings.last_source)
        else:  # a camera, a stream, the demo
            self.settings.last_source = info.spec
        if self.model_error:  # said (and logged) at start; opening replaced it in the status bar
            self.statusBar().showMessage(f"⚠ recognition is off: {self.model_error}")
        elif self.statusBar().currentMessage() == self._opening_note[0]:
            # "Opening …" is done; the source's description stays on the right.
            self.statusBar().showMessage(self._opening_note[1], 10_000)

    def _on_frame(self) -> None:
        shown = self.player.take_frame()
        if shown is not None:
            self._shown_this_source = True
            self.view.set_image(shown.image)
            self.bar.set_position(shown.index, shown.time_ms)

    def _on_failed(self, message: str) -> None:
        self.show_error(message)
        if self.player.info is not None:  # the recording failed; the source plays on
            return
        # The source is closed: its bar stops offering to seek, Play opens it again if some of it
        # was shown, and the start screen shows if none was (with no signs of a source now gone).
        self.bar.set_source(None)
        shown = self.player.on_screen
        if self._shown_this_source and shown is not None:
            self._broken_source = self._opened_spec
            self.bar.set_position(shown.index, shown.time_ms)  # the time of the frame left on screen
            self.commands["play"].setEnabled(True)
        else:
            self._forget_source_shown()
            self.show_start(message)

    def _forget_source_shown(self) -> None:
        """The last source's signs, name and title go with it."""
        self.panel.clear(self.recognition.epoch)
        self.source_label.clear()
        self.setWindowTitle("signcam")

    def _on_skipped(self, why: str) -> None:
        log.warning("skipped: %s", why)
        self.statusBar().showMessage(f"⚠ skipped: {why}", 10_000)

    def _on_playing(self, playing: bool) -> None:
        action = self.commands["play"]
        action.setText("&Pause" if playing else "&Play")
        action.setIcon(self._icon("SP_MediaPause" if playing else "SP_MediaPlay"))

    def _on_conf(self, conf: float) -> None:
        self.recognition.set_conf(conf)
        self.settings.conf = conf

    def _set_flag(self, name: str, on: bool) -> None:
        self.settings.set_flag(name, on)
        self._apply_flag(name, on)

    def _apply_flag(self, name: str, on: bool) -> None:
        if name in ("loop", "every_frame"):
            setattr(self.player, name, on)
        else:
            self.player.set_overlay(**{name: on})

    def _update_stats(self) -> None:
        now, shown, processed = time.monotonic(), self.view.frames_shown, self.recognition.processed
        then, shown_before, processed_before = self._stats
        self._stats = (now, shown, processed)
        if self.player.info is None:
            self.stats_label.clear()
            return
        seconds = max(now - then, 1e-6)
        text = f"{(shown - shown_before) / seconds:.1f} fps"
        if self.recognition.engine is not None:
            text += (f" · recognition {(processed - processed_before) / seconds:.1f} fps,"
                     f" {self.recognition.latency_ms:.0f} ms/frame")
        self.stats_label.setText(text)

    # -- user commands --------------------------------------------------------------------

    def toggle_play(self) -> None:
        """Play or pause; after a source broke off half-way, play what could be read of it again."""
        if self.player.info is None and self._broken_source is not None:
            self.open_source(self._broken_source)
        else:
            self.player.toggle_play()

    def seek_seconds(self, seconds: float) -> None:
        info = self.player.info
        if info is not None:
            self.player.seek(self.player.position + round(seconds * info.fps))

    def go_to_event(self, event: SignEvent) -> None:
        """Show the frame where ``event``'s sign was confirmed (files and image folders)."""
        info = self.player.info
        if info is not None and info.is_live:
            self.statusBar().showMessage("A live source cannot go back in time.", 4000)
        elif info is not None:
            self.player.seek(event.frame_index)

    def output_path(self, kind: QStandardPaths.StandardLocation, suffix: str) -> Path:
        """A new time-stamped file in the output folder (settings), else the user's Videos/Pictures."""
        folder = Path(self.settings.output_dir or QStandardPaths.writableLocation(kind) or Path.home())
        folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")[:-3]  # milliseconds: two snapshots in a second
        return folder / f"signcam-{stamp}{suffix}"

    def toggle_recording(self) -> None:
        """Start recording the annotated video to the output folder, or finish the recording."""
        if self.player.recording is not None:
            try:
                path = self.player.stop_recording()
            except SignCamError as exc:
                self.show_error(str(exc), dialog=True)
                return
            self.statusBar().showMessage(f"Saved the recording {path}" if path else
                                         "Nothing was recorded: no frame played while recording", 8000)
            return
        try:
            path = self.output_path(QStandardPaths.StandardLocation.MoviesLocation, ".mp4")
            self.player.start_recording(path)
        except (SignCamError, OSError) as exc:
            self.commands["record"].setChecked(False)
            self.show_error(f"cannot record: {exc}")
            return
        self.statusBar().showMessage(f"Recording to {path}" if self.player.playing else
                                     f"Recording to {path} once the video plays", 8000)

    def save_snapshot(self) -> None:
        try:
            path = self.player.snapshot(self.output_path(QStandardPaths.StandardLocation.PicturesLocation, ".png"))
        except (SignCamError, OSError) as exc:
            self.show_error(f"cannot save a snapshot: {exc}")
            return
        self.statusBar().showMessage(f"Saved {path}", 8000)

    def export_events_dialog(self, suffix: str) -> None:
        kind = "CSV files (*.csv)" if suffix == ".csv" else "JSON files (*.json)"
        path, _ = QFileDialog.getSaveFileName(self, "Export signs", f"signs{suffix}", kind)
        if path:  # the menu chose the format: a name typed without its suffix gets it
            self.export_events(path if Path(path).suffix.lower() in EVENT_FORMATS else path + suffix)

    def export_events(self, path: str | Path) -> None:
        try:
            written = self.panel.export(path)
        except SignCamError as exc:
            self.show_error(str(exc))
            return
        self.statusBar().showMessage(f"Exported {len(self.panel.events)} signs to {written}", 8000)

    def toggle_fullscreen(self) -> None:
        full = not self.isFullScreen()
        for widget in (self.menuBar(), self.statusBar(), self.toolbar, self.dock, self.bar):
            widget.setVisible(not full)
        self.showFullScreen() if full else self.showNormal()
        self.commands["fullscreen"].setChecked(full)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape and self.isFullScreen():
            self.toggle_fullscreen()
        else:
            super().keyPressEvent(event)

    def show_error(self, message: str, dialog: bool = False) -> None:
        """Tell the user what went wrong: in the status bar, and with ``dialog`` in a non-modal box."""
        log.warning("%s", message)
        self.last_error = message
        self.statusBar().showMessage(f"⚠ {message}")
        if dialog:
            box = QMessageBox(QMessageBox.Icon.Warning, "signcam", message, QMessageBox.StandardButton.Ok, self)
            box.setWindowModality(Qt.WindowModality.NonModal)
            box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            box.show()

    # -- quitting -------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:
        """Save settings, finish any recording and stop the threads before the window goes."""
        if not self._shutting_down:
            self._shutting_down = True
            self._stats_timer.stop()
            self.settings.geometry = self.saveGeometry()
            try:
                self.player.stop_recording()
            except SignCamError as exc:  # said where the app was started from, and to the user at the window
                log.error("error: %s", exc)
                if not self.unattended:
                    QMessageBox.warning(self, "signcam", str(exc))  # modal: the window waits for it
            self.player.shutdown()
            self.settings.sync()
        event.accept()
