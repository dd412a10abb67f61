"""The validation split of GTSRB: whole tracks, one in N, larger splits holding the default one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from training.data import VAL_EVERY, TensorSet, split_by_track


def _tracks(count: int, frames: int = 3) -> TensorSet:
    """``count`` tracks of ``frames`` images each, spread over two classes as GTSRB numbers them."""
    track_no = np.repeat(np.arange(count), frames)
    labels = track_no % 2
    return TensorSet(torch.zeros(len(track_no), 3, 2, 2, dtype=torch.uint8), torch.from_numpy(labels),
                     labels * 100_000 + track_no)


@pytest.mark.parametrize("every", [VAL_EVERY, 6, 4, 3, 2])
def test_validation_takes_whole_tracks_one_in_every(every: int) -> None:
    data = _tracks(240)
    train, val = split_by_track(data, every)
    assert not set(train.tracks) & set(val.tracks), "a track is either trained on or validated on"
    assert len(train) + len(val) == len(data)
    assert len(set(val.tracks)) == 240 // every


@pytest.mark.parametrize("every", [6, 4, 3, 2])
def test_a_larger_validation_split_holds_the_default_one(every: int) -> None:
    data = _tracks(240)
    _, default = split_by_track(data)
    _, larger = split_by_track(data, every)
    assert set(default.tracks) < set(larger.tracks)


def test_a_split_that_leaves_nothing_to_train_on_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        split_by_track(_tracks(12), 1)
