"""The desktop app (PyQt6). All Qt in signcam lives here; the engine never imports it.

Modules are ``qt_*.py`` holding ``Qt*`` classes: the window (:mod:`.qt_main_window`), the
playback and recognition threads (:mod:`.qt_player`, :mod:`.qt_recognition`), the video view,
side panel, controls, start screen and settings; :func:`.qt_app.run_app` starts it all.
"""

__all__: list[str] = []
