"""benchmarks/average_weights.py: the mean of several checkpoints' EMA weights, as a checkpoint evaluate reads."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import average_weights  # noqa: E402

from training.checkpoint import load_checkpoint  # noqa: E402
from training.model import SignNet  # noqa: E402

ARCH = {"widths": [4, 8], "depths": [1, 1], "contrast": "global"}


def _checkpoint(path: Path, seed: int, val_every: int = 6, widths: tuple[int, ...] = (4, 8)) -> Path:
    torch.manual_seed(seed)
    model = SignNet(widths=widths, depths=(1,) * len(widths))
    for module in model.modules():  # running statistics differ too, as after training
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
    ema = torch.optim.swa_utils.AveragedModel(model, use_buffers=True)
    torch.save({"ema": ema.state_dict(), "epoch": 7, "args": json.dumps({"val_every": val_every, "seed": seed}),
                "history": "[]", "arch": json.dumps(model.arch)}, path)
    return path


def test_the_average_is_the_mean_of_every_weight_and_running_statistic(tmp_path: Path) -> None:
    paths = [_checkpoint(tmp_path / f"{seed}.pt", seed) for seed in (0, 1, 2)]
    assert average_weights.main([str(tmp_path / "soup.pt"), *map(str, paths)]) == 0

    soup, info = load_checkpoint(tmp_path / "soup.pt")
    ingredients = [load_checkpoint(p)[0].state_dict() for p in paths]
    for name, value in soup.state_dict().items():
        if value.is_floating_point():
            torch.testing.assert_close(value, sum(i[name] for i in ingredients) / 3)
    assert soup.state_dict()["features.1.running_var"].ne(ingredients[0]["features.1.running_var"]).any()
    assert info["args"]["seed"] == 0 and info["epoch"] == 8  # the first checkpoint's record,
    # and what it was averaged from: each checkpoint, with where its recipe differs
    assert info["args"]["averaged_from"] == [{"checkpoint": str(paths[0])}, {"checkpoint": str(paths[1]), "seed": 1},
                                             {"checkpoint": str(paths[2]), "seed": 2}]


def test_unlike_checkpoints_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    first = _checkpoint(tmp_path / "a.pt", 0)
    wider = _checkpoint(tmp_path / "wider.pt", 1, widths=(4, 16))
    other_split = _checkpoint(tmp_path / "split.pt", 1, val_every=12)

    assert average_weights.main([str(tmp_path / "soup.pt"), str(first), str(wider)]) == 2
    assert "different shapes" in capsys.readouterr().err
    assert average_weights.main([str(tmp_path / "soup.pt"), str(first), str(other_split)]) == 2
    assert "different validation splits" in capsys.readouterr().err
    assert average_weights.main([str(tmp_path / "soup.pt"), str(first), str(tmp_path / "none.pt")]) == 2
    assert "no checkpoint at" in capsys.readouterr().err
    assert not (tmp_path / "soup.pt").exists()
