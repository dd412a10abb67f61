"""A generated drive past road signs, so the app and CLI can be tried with no camera and no dataset.

A pinhole camera 1.3 m above a two-lane road moves forward at 45 km/h. Signs on grey poles
stand on the right verge; each grows from about 16 px to about 120 px wide (at 1280x720) as
the car approaches, moves outwards and leaves the frame. Trees, moving lane marks and sensor
noise keep the scene from being too clean, and the signs are drawn slightly blurred and unevenly
lit, as a camera sees them. Everything is seeded: a clip is the same on every machine.

Example:
    >>> clip = DemoClip(size=(640, 360))
    >>> frame = clip.render(100)
    >>> frame.shape, len(clip.ground_truth(100)) >= 1
    ((360, 640, 3), True)
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from signcam.errors import SignCamError, SourceError
from signcam.files import written_whole
from signcam.overlay import blend
from signcam.pictograms import sign_layers
from signcam.sinks import VideoSink

__all__ = ["DEMO_SIGNS", "DemoClip", "write_demo_video", "demo_video_path"]

#: The signs passed, in order: a short town drive touching every category.
DEMO_SIGNS: tuple[int, ...] = (2, 12, 1, 26, 25, 38, 13, 14, 17, 4, 18, 35, 32, 7)

_SPEED_MS = 12.5          # 45 km/h
_SPACING_M = 25.0         # two seconds between signs
_LEAD_M = 45.0            # distance to the first sign at the start
_CAMERA_HEIGHT_M = 1.3
_SIGN_WIDTH_M = 0.6
_SIGN_CENTRE_HEIGHT_M = 2.0
_SIGN_SIDE_M = 2.5        # from the camera's axis to the pole
_POLE_WIDTH_M = 0.06
_NEAR_M = 1.0
_SIGN_FAR_M = 60.0        # farther, a sign is under 7 px wide: not drawn
_SCENE_FAR_M = 150.0
_LANE_LINE_M = 0.12
_ROAD_EDGES_M = (-5.4, 2.0)
_CENTRE_LINE_M = -1.75
_DASH_M, _DASH_PERIOD_M = 3.0, 9.0
_MASTER = 256             # side of the pictograms every sign image is shrunk from
_NOISE_FRAMES = 5


@dataclass(frozen=True)
class _Sign:
    class_id: int
    z: float              # metres from the start position
    x: float              # metres right of the camera's axis
    light: float          # brightness the sign's face is lit with
    tint: tuple[float, float, float]


@dataclass(frozen=True)
class _Tree:
    z: float
    x: float
    height: float
    crown: float
    shade: int


class DemoClip:
    """The generated clip: frames on demand, and where each sign is in each frame.

    Args:
        size: ``(width, height)`` of the frames.
        fps: Frames per second; the car's speed is fixed, so this sets the frame count.
        seed: Seed for the trees, sign lighting and noise.
        signs: Class ids of the signs passed, in order, two seconds apart (none: just the road).

    Example:
        >>> clip = DemoClip(size=(960, 540), fps=25)
        >>> clip.frame_count, round(clip.duration_s)
        (742, 30)
    """

    def __init__(self, size: tuple[int, int] = (1280, 720), fps: float = 25.0, seed: int = 0,
                 signs: Sequence[int] = DEMO_SIGNS) -> None:
        self.width, self.height = size
        self.fps = float(fps)
        # Separate streams: the scene stays the same whatever signs stand in it.
        sign_rng, rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
        self.focal = 0.8 * self.width
        self.horizon = 0.45 * self.height
        last = _LEAD_M + _SPACING_M * max(len(signs) - 1, 0)
        self.frame_count = int(np.ceil((last + 1.0) / _SPEED_MS * self.fps))
        self._signs = [_Sign(c, _LEAD_M + k * _SPACING_M, _SIGN_SIDE_M + sign_rng.uniform(-0.2, 0.3),
                             sign_rng.uniform(0.7, 1.0), tuple(sign_rng.uniform(0.92, 1.05, 3)))
                       for k, c in enumerate(signs)]
        trees = []
        for side, (near, far) in ((1, (6.5, 13.0)), (-1, (8.5, 16.0))):
            z = rng.uniform(0, 8)
            while z < last + _SCENE_FAR_M:
                trees.append(_Tree(z, side * rng.uniform(near, far), rng.uniform(5, 9), rng.uniform(1.8, 3.2),
                                   int(rng.integers(0, 40))))
                z += rng.uniform(7, 16)
        self._trees = trees
        self._masters = {c: sign_layers(c, _MASTER) for c in set(signs)}
        self._extents = {c: _alpha_extent(alpha) for c, (_, alpha) in self._masters.items()}
        self._background = self._draw_background()
        noise = rng.normal(0.0, 4.0, (_NOISE_FRAMES, self.height, self.width, 3))
        self._noise_up = np.clip(noise, 0, 255).astype(np.uint8)
        self._noise_down = np.clip(-noise, 0, 255).astype(np.uint8)

    @property
    def duration_s(self) -> float:
        return self.frame_count / self.fps

    def _project(self, x: float, y: float, z: float) -> tuple[float, float]:
        """Pixel of a world point: x right of the camera, y above the ground, z ahead (metres)."""
        return (self.width / 2 + self.focal * x / z, self.horizon + self.focal * (_CAMERA_HEIGHT_M - y) / z)

    def _draw_background(self) -> np.ndarray:
        """Sky, grass and the road surface with its solid edge lines: what does not move."""
        h, w = self.height, self.width
        horizon = int(round(self.horizon))
        rows = np.linspace(0.0, 1.0, horizon)[:, None]
        sky = (1 - rows) * np.array([232, 205, 178]) + rows * np.array([240, 228, 214])
        grass_rows = np.linspace(0.0, 1.0, h - horizon)[:, None]
        grass = (1 - grass_rows) * np.array([70, 115, 95]) + grass_rows * np.array([45, 120, 60])
        image = np.concatenate([sky, grass])[:, None, :].repeat(w, axis=1).astype(np.uint8)
        self._ground_quad(image, *_ROAD_EDGES_M, (105, 105, 110))
        for edge in _ROAD_EDGES_M:
            self._ground_quad(image, edge - _LANE_LINE_M / 2, edge + _LANE_LINE_M / 2, (225, 225, 225))
        return image

    def _ground_quad(self, image: np.ndarray, x1: float, x2: float, color: tuple[int, int, int],
                     z1: float = _NEAR_M, z2: float = 400.0) -> None:
        corners = [self._project(x, 0.0, z) for x, z in ((x1, z1), (x2, z1), (x2, z2), (x1, z2))]
        cv2.fillPoly(image, [np.round(np.array(corners) * 4).astype(np.int32)], color, cv2.LINE_AA, shift=2)

    def _travelled(self, index: int) -> float:
        return index / self.fps * _SPEED_MS

    def _sign_square(self, sign: _Sign, travelled: float) -> tuple[int, int, int] | None:
        """Top-left corner and side of the square a sign's pictogram fills, or None when out of view."""
        z = sign.z - travelled
        if not _NEAR_M < z < _SIGN_FAR_M:
            return None
        cx, cy = self._project(sign.x, _SIGN_CENTRE_HEIGHT_M, z)
        side = max(2, int(round(self.focal * _SIGN_WIDTH_M / z)))
        return int(round(cx - side / 2)), int(round(cy - side / 2)), side

    def ground_truth(self, index: int) -> list[tuple[tuple[int, int, int, int], int]]:
        """Signs drawn entirely inside frame ``index``: ``[((x1, y1, x2, y2), class_id), ...]``.

        Boxes are inclusive and hug the sign's shape (a triangle is shorter than it is wide).
        """
        travelled = self._travelled(index)
        truth = []
        for sign in self._signs:
            square = self._sign_square(sign, travelled)
            if square is None:
                continue
            x, y, side = square
            u1, v1, u2, v2 = self._extents[sign.class_id]
            box = (x + int(u1 * side), y + int(v1 * side), x + int(np.ceil(u2 * side)) - 1,
                   y + int(np.ceil(v2 * side)) - 1)
            if box[0] >= 0 and box[1] >= 0 and box[2] < self.width and box[3] < self.height:
                truth.append((box, sign.class_id))
        return truth

    def render(self, index: int) -> np.ndarray:
        """Frame ``index`` (0-based) as an H x W x 3 uint8 BGR image."""
        travelled = self._travelled(index)
        image = self._background.copy()
        phase = travelled % _DASH_PERIOD_M
        for start in np.arange(-phase, _SCENE_FAR_M, _DASH_PERIOD_M):
            near = max(start, _NEAR_M)
            if start + _DASH_M > near:
                self._ground_quad(image, _CENTRE_LINE_M - _LANE_LINE_M / 2, _CENTRE_LINE_M + _LANE_LINE_M / 2,
                                  (225, 225, 225), near, start + _DASH_M)
        # Painter's order: far things first, so near ones cover them.
        things: list[tuple[float, _Sign | _Tree]] = [(t.z - travelled, t) for t in self._trees]
        things += [(s.z - travelled, s) for s in self._signs]
        for z, thing in sorted(things, key=lambda item: -item[0]):
            if not _NEAR_M < z < _SCENE_FAR_M:
                continue
            if isinstance(thing, _Tree):
                self._draw_tree(image, thing, z)
            elif z < _SIGN_FAR_M:
                self._draw_sign(image, thing, z, travelled)
        k = index % _NOISE_FRAMES
        cv2.add(image, self._noise_up[k], dst=image)
        cv2.subtract(image, self._noise_down[k], dst=image)
        return image

    def _draw_tree(self, image: np.ndarray, tree: _Tree, z: float) -> None:
        (bx, by), (tx, ty) = self._project(tree.x, 0.0, z), self._project(tree.x, tree.height, z)
        trunk = max(1, int(round(self.focal * 0.35 / z)))
        cv2.line(image, (int(bx), int(by)), (int(tx), int(ty)), (52, 60, 68), trunk)
        radius = max(1, int(round(self.focal * tree.crown / z)))
        green = (30 + tree.shade // 2, 85 + tree.shade, 40 + tree.shade // 2)
        cv2.circle(image, (int(tx), int(ty)), radius, green, -1, cv2.LINE_AA)
        dark = tuple(int(c * 0.75) for c in green)
        cv2.circle(image, (int(tx + radius * 0.3), int(ty + radius * 0.25)), int(radius * 0.6), dark, -1,
                   cv2.LINE_AA)

    def _draw_sign(self, image: np.ndarray, sign: _Sign, z: float, travelled: float) -> None:
        (px, py), (_, top) = self._project(sign.x, 0.0, z), self._project(sign.x, _SIGN_CENTRE_HEIGHT_M, z)
        pole = max(1, int(round(self.focal * _POLE_WIDTH_M / z)))
        cv2.line(image, (int(px), int(py)), (int(px), int(top)), (125, 128, 130), pole)
        x, y, side = self._sign_square(sign, travelled)
        bgr, alpha = self._masters[sign.class_id]
        face = cv2.resize(bgr, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32)
        cover = cv2.resize(alpha, (side, side), interpolation=cv2.INTER_AREA)
        # Daylight on a real sign: dimmer than paper white, a slight colour cast, a lens's softness.
        face = face * (np.asarray(sign.tint, np.float32) * sign.light) + 12.0
        sigma = 0.5 + side / 160
        face = cv2.GaussianBlur(face, (0, 0), sigma)
        cover = cv2.GaussianBlur(cover, (0, 0), sigma)[..., None]
        blend(image, (face * cover, 1 - cover), x, y)

    def frames(self) -> Iterator[np.ndarray]:
        """Every frame, in order."""
        for index in range(self.frame_count):
            yield self.render(index)


def _alpha_extent(alpha: np.ndarray) -> tuple[float, float, float, float]:
    """Where a pictogram's shape lies in its square, as fractions of the side (x1, y1, x2, y2)."""
    ys, xs = np.nonzero(alpha > 0.5)
    n = alpha.shape[0]
    return xs.min() / n, ys.min() / n, (xs.max() + 1) / n, (ys.max() + 1) / n


def write_demo_video(path: str | os.PathLike, clip: DemoClip | None = None,
                     stop: Callable[[], bool] | None = None) -> Path:
    """Write the demo clip as an MPEG-4 (mp4v) video.

    Args:
        path: Output file (``.mp4``).
        clip: The clip to write; default ``DemoClip()`` (1280x720, 25 fps).
        stop: Asked before each frame; ``True`` gives up (the app closing while it draws).

    Returns:
        The path written.

    Raises:
        SignCamError: OpenCV cannot write a video there, or ``path`` is not ``.mp4``, ``.avi``, ...
        SourceError: ``stop`` said to give up; what was written is incomplete.

    Example:
        >>> write_demo_video("/tmp/demo.mp4")
        PosixPath('/tmp/demo.mp4')
    """
    clip = clip or DemoClip()
    path = Path(path)
    with VideoSink(path, clip.fps, (clip.width, clip.height)) as video:
        for frame in clip.frames():
            if stop is not None and stop():
                raise SourceError("the demo clip was not finished: stopped while it was drawn")
            video.write(frame)
    return path


def demo_video_path(make: bool = True, stop: Callable[[], bool] | None = None) -> Path:
    """The generated demo clip in the user's cache folder, written on first use unless not ``make``.

    ``stop`` is passed on to :func:`write_demo_video`; a clip stopped half-way leaves no file.
    """
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "signcam"
    # Named after the code that draws it, so a changed demo is drawn again, not read stale.
    digest = hashlib.sha256()
    for module in ("demo.py", "pictograms.py", "overlay.py"):  # overlay.blend draws its signs in
        digest.update((Path(__file__).parent / module).read_bytes())
    path = cache / f"demo-{digest.hexdigest()[:12]}.mp4"
    if make and not path.is_file():
        try:
            cache.mkdir(parents=True, exist_ok=True)
            with written_whole(path) as partial:  # an interrupted first run leaves no half clip
                write_demo_video(partial, stop=stop)
        except SourceError:
            raise  # stopped while it was drawn
        except (OSError, SignCamError) as exc:  # SignCamError: the clip did not fit (see VideoSink.close)
            why = (exc.strerror or exc) if isinstance(exc, OSError) else "it did not fit (is the disk full?)"
            raise SourceError(f"cannot write the demo clip into {cache}: {why} "
                              "(set XDG_CACHE_HOME to a writable folder)") from None
    return path
