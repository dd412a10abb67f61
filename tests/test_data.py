"""GTSRB in memory: crops read as the runtime reads them; the validation split, whole tracks, one in N."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from signcam.classifier import Classifier
from signcam.errors import DataError
from signcam.gtsdb import Scene
from training.data import VAL_EVERY, TensorSet, cut_scene_crops, load_gtsrb, split_by_track


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


@pytest.mark.parametrize("shape", [(15, 20), (20, 15), (60, 50), (32, 32)])
def test_crops_of_any_size_are_resized_as_classify_reads_them(tmp_path: Path, shape: tuple[int, int]) -> None:
    """GTSRB as downloaded has crops of 15 to 250 px: training must see them as the app's classifier will."""
    crop = np.random.default_rng(0).integers(0, 256, (*shape, 3), dtype=np.uint8)
    folder = tmp_path / "gtsrb" / "GTSRB" / "Training" / "00000"
    folder.mkdir(parents=True)
    cv2.imwrite(str(folder / "00007_00001.ppm"), crop)
    data = load_gtsrb(tmp_path, "train")
    assert data.labels.tolist() == [0] and data.tracks.tolist() == [7]
    read = Classifier().prepare(crop)[0]
    assert np.array_equal(data.images[0].numpy().transpose(1, 2, 0), read)


def test_a_damaged_gtsrb_annotation_file_is_a_data_error(tmp_path: Path) -> None:
    images = tmp_path / "gtsrb" / "GTSRB" / "Final_Test" / "Images"
    images.mkdir(parents=True)
    cv2.imwrite(str(images / "00000.ppm"), np.zeros((32, 32, 3), np.uint8))
    (tmp_path / "gtsrb" / "GT-final_test.csv").write_text("Filename;ClassId\n00000.ppm;x\n")
    with pytest.raises(DataError, match="GTSRB test split in .* cannot be read .*ValueError"):
        load_gtsrb(tmp_path, "test")


def test_scene_crops_mine_the_proposers_boxes_on_a_compressed_copy_too(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(60, 200, (300, 400, 3), dtype=np.uint8)
    cv2.circle(image, (120, 120), 20, (40, 40, 220), -1)
    cv2.imwrite(str(tmp_path / "00000.png"), image)
    scene = Scene(0, tmp_path / "00000.png", [(100, 100, 140, 140, 2)])
    seen = []

    def proposer(frame: np.ndarray) -> np.ndarray:
        seen.append(frame)
        return np.array([[101, 99, 141, 139], [300, 200, 330, 230], [112, 100, 152, 140]], float)  # on, off, between

    positives, negatives = cut_scene_crops([scene], seed=0, proposer=proposer)
    more_positives, more_negatives = cut_scene_crops([scene], seed=0, proposer=proposer, compressed=(20, 20))
    assert len(seen) == 3 and np.array_equal(seen[0], seen[1])
    loss = np.abs(seen[2].astype(int) - image).mean()
    assert 2 < loss < 40, "the second look is at a JPEG of the scene"
    # One more sign crop and one more negative, cut from the compressed copy; the box that half
    # covers the sign is neither, and what was cut from the scene itself is unchanged.
    assert len(more_positives) == len(positives) + 1 and more_positives.labels[-1] == 2
    assert len(more_negatives) == len(negatives) + 1
    assert torch.equal(more_positives.images[:-1], positives.images)
    assert torch.equal(more_negatives.images[:-1], negatives.images)
    assert not torch.equal(more_negatives.images[-1], negatives.images[-1])
