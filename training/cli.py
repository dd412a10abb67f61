"""``signcam-train``: fit, evaluate and export the sign classifier; evaluate detection."""

from __future__ import annotations

import argparse
import sys

__all__ = ["get_args_parser", "main"]


def get_args_parser() -> argparse.ArgumentParser:
    from signcam.cli import HelpFormatter
    from training import detector, eval_detect, evaluate, export, fit

    parser = argparse.ArgumentParser(prog="signcam-train", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, module, help_text in (
        ("fit", fit, "train SignNet on GTSRB"),
        ("evaluate", evaluate, "test-set accuracy, per-class table and plots"),
        ("export", export, "write the ONNX model with its metadata"),
        ("fit-detector", detector, "train SignDet, the sign-finding network, on GTSDB scenes"),
        ("eval-detect", eval_detect, "detection precision/recall/F1 on GTSDB-format scenes"),
    ):
        command = sub.add_parser(name, help=help_text, description=module.__doc__,
                                 formatter_class=HelpFormatter)
        module.add_arguments(command)
        command.set_defaults(func=module.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, RuntimeError, ValueError) as exc:
        print(f"signcam-train: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("signcam-train: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
