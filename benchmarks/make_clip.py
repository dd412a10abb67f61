"""Turn still road scenes into a video clip for benchmarks and for trying the app.

Each image is held for ``--hold`` frames with a slow zoom towards its centre, so the
tracker sees signs that grow as if the car were driving. Images are never copied into
the repository: write the clip somewhere outside it.

Example:
    python benchmarks/make_clip.py ../shared/data/gtsdb-train /tmp/gtsdb-1360x800.mp4 --first 450 --count 40
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from signcam.sinks import VideoSink


def zoom_frames(image: np.ndarray, hold: int, zoom: float):
    """``hold`` frames of ``image`` zooming from 1 to ``zoom`` about its centre: (frame, 2x3 matrix)."""
    h, w = image.shape[:2]
    for factor in np.linspace(1.0, zoom, hold):
        matrix = cv2.getRotationMatrix2D((w / 2, h / 2), 0.0, factor)
        yield cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR), matrix


def frame_size(text: str) -> tuple[int, int]:
    """``WIDTHxHEIGHT`` as an argparse type, e.g. ``1920x1080`` -> (1920, 1080)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError("expected WIDTHxHEIGHT, e.g. 1920x1080") from None
    if width < 16 or height < 16:
        raise argparse.ArgumentTypeError("at least 16x16")
    return width, height


def fit(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` cut about its centre to the aspect ratio of ``size`` (width, height), then resized to it."""
    h, w = image.shape[:2]
    keep_w, keep_h = min(w, round(h * size[0] / size[1])), min(h, round(w * size[1] / size[0]))
    x0, y0 = (w - keep_w) // 2, (h - keep_h) // 2
    shrinking = keep_w > size[0]
    return cv2.resize(image[y0:y0 + keep_h, x0:x0 + keep_w], size,
                      interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="folder of images (e.g. a GTSDB folder)")
    parser.add_argument("output", type=Path, help="video to write (.mp4 or .avi)")
    parser.add_argument("--first", type=int, default=0, help="index of the first image, in name order")
    parser.add_argument("--count", type=int, default=40, help="how many images")
    parser.add_argument("--hold", type=int, default=25, help="frames per image")
    parser.add_argument("--zoom", type=float, default=1.15, help="zoom reached at the end of each image")
    parser.add_argument("--fps", type=float, default=25.0)
    parser.add_argument("--size", type=frame_size, metavar="WxH",
                        help="frame size, e.g. 1920x1080 (default: the images' own); each image is cut to "
                             "this aspect ratio about its centre, then resized")
    args = parser.parse_args(argv)

    images = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in (".jpg", ".png", ".ppm"))
    images = images[args.first:args.first + args.count]
    if not images:
        print(f"no images in {args.folder} from index {args.first}", file=sys.stderr)
        return 2
    with VideoSink(args.output, args.fps) as sink:
        for path in images:
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                print(f"skipping unreadable {path}", file=sys.stderr)
                continue
            if args.size:
                image = fit(image, args.size)
            h, w = image.shape[:2]
            for frame, _matrix in zoom_frames(image, args.hold, args.zoom):
                sink.write(frame)
    print(f"wrote {args.output}: {len(images)} images x {args.hold} frames, {w}x{h}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
