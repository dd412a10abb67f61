"""``signcam-train``: fit, evaluate and export the sign classifier; evaluate detection."""

from __future__ import annotations

import argparse
import sys

__all__ = ["get_args_parser", "main"]


def get_args_parser() -> argparse.ArgumentParser:
    from signcam.cli import HelpFormatter, add_commands
    from training import detector, eval_detect, evaluate, export, fit

    parser = argparse.ArgumentParser(prog="signcam-train", description=__doc__, formatter_class=HelpFormatter)
    add_commands(parser.add_subparsers(dest="command", required=True), [
        ("fit", fit, "train SignNet on GTSRB"),
        ("evaluate", evaluate, "test-set accuracy, per-class table and plots"),
        ("export", export, "write the ONNX model with its metadata"),
        ("fit-detector", detector, "train SignDet, the sign-finding network, on GTSDB scenes"),
        ("eval-detect", eval_detect, "detection precision/recall/F1 on GTSDB-format scenes"),
    ])
    return parser


def main(argv: list[str] | None = None) -> int:
    from signcam.cli import run_command
    from signcam.errors import SignCamError

    args = get_args_parser().parse_args(argv)
    # SignCamError: what the commands refuse (TrainingError, DataError, a --model that is not a
    # signcam model); OSError: a file missing, or one that cannot be made or written. Anything
    # else is a defect, and keeps its traceback.
    return run_command("signcam-train", args, (OSError, SignCamError))


if __name__ == "__main__":
    sys.exit(main())
