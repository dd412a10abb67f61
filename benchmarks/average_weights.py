"""Average the EMA weights of several ``signcam-train fit`` checkpoints into one ("model soup").

Fine-tunes that start from one network tend to stay in one basin of the loss, where the
average of their weights can be as good as the best of them, or better (Wortsman et al.,
"Model soups", 2022). Every floating-point tensor of the EMA weights is averaged uniformly,
the batch norms' running statistics included; everything else (recipe, history, data
summary) is the first checkpoint's, the recipe with a list of what was averaged added, so
``signcam-train evaluate`` and ``export`` read the result as they read any checkpoint. Used
for the trial in docs/experiments.md (*Averaging fine-tunes*).

Needs the train extra (torch).

Example:
    python benchmarks/average_weights.py runs/soup/checkpoint.pt runs/a/checkpoint.pt runs/b/checkpoint.pt
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from signcam.cli import DocstringHelpFormatter
from signcam.errors import TrainingError
from training.checkpoint import model_from_state, read_checkpoint, save_checkpoint


def average_states(states: list[dict], names: list[str] | None = None) -> dict:
    """The checkpoint ``states[0]`` with its EMA weights replaced by the mean over all ``states``.

    Its recipe (``args``) gains ``averaged_from``: each checkpoint's name (``names``) and
    where its recipe differs from the first's, so the model file ``export`` writes says what
    it was averaged from.

    Raises:
        TrainingError: the checkpoints describe different networks or validation splits.
    """
    first = states[0]
    for state in states[1:]:
        if state.get("arch") != first.get("arch"):
            raise TrainingError("the checkpoints describe networks of different shapes; only like ones average")
        if json.loads(state["args"]).get("val_every") != json.loads(first["args"]).get("val_every"):
            raise TrainingError("the checkpoints kept different validation splits out; their average would be "
                                "validated on tracks some of them trained on")
    averaged = {name: torch.stack([s["ema"][name] for s in states]).mean(0) if value.is_floating_point() else value
                for name, value in first["ema"].items()}
    recipe = json.loads(first["args"])
    recipes = [json.loads(s["args"]) for s in states]
    recipe["averaged_from"] = [{"checkpoint": name, **{k: v for k, v in r.items() if recipe.get(k) != v}}
                               for name, r in zip(names or [f"#{i}" for i in range(len(states))], recipes, strict=True)]
    return {**first, "ema": averaged, "args": json.dumps(recipe)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=DocstringHelpFormatter)
    parser.add_argument("output", type=Path, help="where to write the averaged checkpoint")
    parser.add_argument("checkpoints", type=Path, nargs="+", help="fit checkpoints of one network shape")
    args = parser.parse_args(argv)
    if len(args.checkpoints) < 2:
        parser.error("give at least two checkpoints to average")
    try:
        states = [read_checkpoint(p) for p in args.checkpoints]
        for state, path in zip(states, args.checkpoints, strict=True):
            model_from_state(state, path)  # refuses anything that is not a whole, finite fit checkpoint
        save_checkpoint(average_states(states, [str(p) for p in args.checkpoints]), args.output)
    except (OSError, TrainingError) as exc:
        print(f"average_weights: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}: the EMA weights of {len(args.checkpoints)} checkpoints, averaged")
    return 0


if __name__ == "__main__":
    sys.exit(main())
