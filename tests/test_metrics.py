"""What the training reports score: sign accuracy ignores the reject output; accepts and rejects add up."""

from __future__ import annotations

import pytest
import torch

from signcam.classes import NOT_A_SIGN
from training.metrics import accepted_share, log_loss, rejected_share, top1_accuracy


def _probs(*rows: dict[int, float]) -> torch.Tensor:
    probs = torch.zeros(len(rows), NOT_A_SIGN + 1)
    for i, row in enumerate(rows):
        for column, value in row.items():
            probs[i, column] = value
    return probs


def test_sign_accuracy_reads_the_best_sign_even_where_not_a_sign_leads() -> None:
    probs = _probs({14: 0.3, NOT_A_SIGN: 0.7}, {1: 0.6, 2: 0.4}, {3: 0.9})
    assert top1_accuracy(probs, torch.tensor([14, 2, 3])) == pytest.approx(2 / 3)


def test_accepted_and_rejected_shares_add_up() -> None:
    probs = _probs({NOT_A_SIGN: 0.6, 5: 0.4}, {5: 0.9}, {NOT_A_SIGN: 0.51, 7: 0.49}, {9: 1.0})
    assert rejected_share(probs) == pytest.approx(0.5) and accepted_share(probs) == pytest.approx(0.5)
    assert accepted_share(_probs({5: 1.0}, {6: 1.0}, {NOT_A_SIGN: 1.0})) == pytest.approx(2 / 3)


def test_log_loss_of_the_right_sign() -> None:
    probs = _probs({1: 0.5, NOT_A_SIGN: 0.5}, {2: 1.0})
    assert log_loss(probs, torch.tensor([1, 2])) == pytest.approx(-torch.tensor(0.5).log().item() / 2)
