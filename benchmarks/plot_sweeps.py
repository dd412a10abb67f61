"""Plot classifier training sweeps: validation errors against GTSRB test accuracy, one panel per sweep.

Each sweep is a JSON report such as ``reports/gpu-sweep.json``: a ``runs`` mapping whose
entries carry ``validation_errors``, ``test`` and the recipe (``backlight``, ``shadow``,
``motion_blur``, ``teachers``, and ``widths``/``depths`` where a run's shape is not the shipped
one). Runs are coloured by recipe, and the run the ship rule picks (fewest validation errors,
ties broken by ``validation_log_loss`` where recorded) is ringed; where a report lists
``candidates``, the rule picks among those alone, the others being probes outside the size
bars. A flat or scattered cloud says the validation split cannot tell these runs apart.

Example:
    python benchmarks/plot_sweeps.py reports/gpu-sweep.json reports/gpu-sweep-val6.json \\
        reports/gpu-sweep-depth.json --output reports/gpu-sweeps.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from signcam.cli import DocstringHelpFormatter

#: The shape of a report's run that names none: fit's default when the sweeps ran. It describes the
#: reports, so it is kept here rather than read from training.model, whose defaults may move on.
DEFAULT_SHAPE = {"widths": [16, 32, 64, 128], "depths": [1, 1, 2, 2]}


def recipe(run: dict[str, Any]) -> str:
    """A short name for a run's recipe."""
    parts = [f"{key} {' '.join(map(str, run[key]))}" for key, default in DEFAULT_SHAPE.items()
             if run.get(key, default) != default]
    parts.append(f"backlight {run.get('backlight', 0):g}")
    if run.get("shadow"):
        parts.append(f"shadow {run['shadow']:g}")
    if run.get("motion_blur"):
        parts.append(f"motion blur {run['motion_blur']:g}")
    if run.get("teachers"):
        parts.append("teachers")
    return ", ".join(parts)


def chosen(runs: dict[str, dict[str, Any]]) -> str:
    """The run the ship rule picks: fewest validation errors, then lowest validation log-loss."""
    return min(runs, key=lambda name: (runs[name]["validation_errors"],
                                       runs[name].get("validation_log_loss", 0.0)))


def complete_runs(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The runs that finished their schedule (those listed under ``not_complete`` are left out)."""
    left_out = report.get("not_complete", {})
    return {name: run for name, run in report["runs"].items() if name not in left_out}


def candidate_runs(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The complete runs the ship rule chooses among: those under ``candidates``, where listed."""
    runs = complete_runs(report)
    if "candidates" not in report:
        return runs
    return {name: run for name, run in runs.items() if name in report["candidates"]}


def plot(reports: list[tuple[str, dict[str, Any]]], output: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recipes = sorted({recipe(run) for _, report in reports for run in complete_runs(report).values()})
    colours = {name: plt.get_cmap("tab10")(i % 10) for i, name in enumerate(recipes)}
    fig, axes = plt.subplots(1, len(reports), figsize=(6.5 * len(reports), 5), squeeze=False)
    for ax, (title, report) in zip(axes[0], reports, strict=True):
        runs = complete_runs(report)
        pick = chosen(candidate_runs(report))
        images = next((run["validation_images"] for run in runs.values() if "validation_images" in run), None)
        for name, run in runs.items():
            ax.scatter(run["validation_errors"], 100 * run["test"], s=60, color=colours[recipe(run)],
                       label=recipe(run), zorder=3)
            ax.annotate(name, (run["validation_errors"], 100 * run["test"]), fontsize=7,
                        xytext=(4, 3), textcoords="offset points")
        ax.scatter(runs[pick]["validation_errors"], 100 * runs[pick]["test"], s=260, facecolors="none",
                   edgecolors="black", linewidths=1.5, label="picked by the rule", zorder=4)
        ax.set_xlabel("validation errors" + (f" (of {images:,})" if images else ""))
        ax.set_ylabel("GTSRB test top-1 (%)")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    legend: dict[str, Any] = {}
    for ax in axes[0]:
        handles, labels = ax.get_legend_handles_labels()
        legend.update(zip(labels, handles, strict=True))
    fig.legend(legend.values(), legend.keys(), loc="lower center", ncol=min(len(legend), 4), fontsize=8)
    fig.suptitle("Classifier sweeps: what validation picked, and what the test set said afterwards")
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=DocstringHelpFormatter)
    parser.add_argument("reports", type=Path, nargs="+", help="sweep JSON reports (one panel each)")
    parser.add_argument("--output", type=Path, default=Path("reports/gpu-sweeps.png"))
    args = parser.parse_args(argv)
    reports = []
    for path in args.reports:
        try:
            reports.append((path.name, json.loads(path.read_text())))
        except (OSError, json.JSONDecodeError) as exc:
            print(f"plot_sweeps: cannot read {path}: {exc}", file=sys.stderr)
            return 2
    plot(reports, args.output)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
