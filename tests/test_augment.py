"""Batch augmentation: output format, reproducibility, and that it never mirrors a sign."""

from __future__ import annotations

import pytest
import torch

from training.augment import Augment


def _random_images(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("images", [
    torch.zeros(5, 3, 32, 32, dtype=torch.uint8),
    torch.full((3, 3, 32, 32), 255, dtype=torch.uint8),
    _random_images(64),
    _random_images(2)[:, :, :24, :24].contiguous(),
], ids=["black", "white", "random-64", "24px"])
def test_output_is_float_in_range_with_the_input_shape(images: torch.Tensor) -> None:
    before = images.clone()
    out = Augment(seed=0)(images)
    assert out.dtype == torch.float32
    assert out.shape == images.shape
    assert torch.isfinite(out).all()
    assert out.min() >= 0 and out.max() <= 255
    assert torch.equal(out, out.round()), "a camera gives whole levels; so must the augmented batch"
    assert torch.equal(images, before), "the input batch must not be modified"


def test_same_seed_same_output_other_seed_other_output() -> None:
    images = _random_images(16)
    first, second = Augment(seed=7)(images), Augment(seed=7)(images)
    assert torch.equal(first, second)
    assert not torch.allclose(first, Augment(seed=8)(images))


def test_successive_batches_differ() -> None:
    augment = Augment(seed=0)
    images = _random_images(8)
    assert not torch.allclose(augment(images), augment(images))


@pytest.mark.parametrize("axis", [3, 2], ids=["left-right", "top-bottom"])
def test_never_flips(axis: int) -> None:
    """A sign whose first half is bright keeps its brightness in the first half (no mirroring)."""
    images = torch.full((128, 3, 32, 32), 20, dtype=torch.uint8)
    images.narrow(axis, 0, 16).fill_(230)
    out = Augment(seed=0)(images)
    first = out.narrow(axis, 0, 16).mean(dim=(1, 2, 3))
    second = out.narrow(axis, 16, 16).mean(dim=(1, 2, 3))
    assert (first > second).all(), f"{int((first <= second).sum())} of 128 images had their halves swapped"
    assert (first - second).mean() > 50


def test_darkening_reaches_night_time_levels() -> None:
    """Some images come out much darker than the input: GTSRB's test set has signs at dusk."""
    out = Augment(seed=0)(torch.full((256, 3, 32, 32), 128, dtype=torch.uint8))
    means = out.mean(dim=(1, 2, 3))
    assert means.min() < 50 and means.max() > 160


def _centre_and_surround(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, 32), torch.linspace(-1, 1, 32), indexing="ij")
    radius = (xs ** 2 + ys ** 2).sqrt()
    level = images.mean(1)
    return level[:, radius < 0.4].mean(1), level[:, radius > 1.1].mean(1)


def test_backlight_makes_a_dark_sign_against_a_bright_surround() -> None:
    grey = torch.full((256, 3, 32, 32), 128, dtype=torch.uint8)
    centre, surround = _centre_and_surround(Augment(seed=0, backlight=1.0)(grey))
    assert (surround - centre > 60).float().mean() > 0.95
    assert centre.median() < 70, "the sign's face is dim, not black and not mid-grey"
    assert centre.min() > 5, "some detail must survive: a black disc teaches nothing"
    centre, surround = _centre_and_surround(Augment(seed=0)(grey))
    assert (surround - centre).abs().mean() < 15, "without backlight, centre and surround stay alike"


def test_backlight_keeps_the_detail_of_the_sign() -> None:
    """Darkening is a gain: a bright bar on the sign's face stays brighter than the face."""
    images = torch.full((64, 3, 32, 32), 100, dtype=torch.uint8)
    images[:, :, 14:18, 8:24] = 220
    out = Augment(seed=0, backlight=1.0, rotate=0, scale=0, shear=0, translate=0, perspective=0)(images)
    bar = out[:, :, 14:18, 10:22].mean(dim=(1, 2, 3))
    face = out[:, :, 8:12, 12:20].mean(dim=(1, 2, 3))
    assert (bar > face).float().mean() > 0.9


def _dark_to_bright(images: torch.Tensor) -> torch.Tensor:
    """Per image, the 10th over the 90th percentile of brightness."""
    level = images.mean(1).flatten(1)
    low, high = torch.quantile(level, torch.tensor([0.1, 0.9]), dim=1)
    return low / high.clamp_min(1)


@pytest.mark.parametrize(("shadow", "share"), [(1.0, (0.9, 1.0)), (0.0, (0.0, 0.4))])
def test_shadow_darkens_part_of_the_crop(shadow: float, share: tuple[float, float]) -> None:
    grey = torch.full((256, 3, 32, 32), 128, dtype=torch.uint8)
    out = Augment(seed=0, shadow=shadow, rotate=0, scale=0, shear=0, translate=0, perspective=0)(grey)
    shaded = (_dark_to_bright(out) < 0.7).float().mean().item()
    assert share[0] <= shaded <= share[1]



def _spread(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image, the lengths of the long and short axes of its brightness (4 standard deviations)."""
    weight = images.mean(1).flatten(1)
    weight = weight / weight.sum(1, keepdim=True)
    ys, xs = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    points = torch.stack([xs.flatten(), ys.flatten()], 1)
    centre = weight @ points
    offsets = points.unsqueeze(0) - centre.unsqueeze(1)
    cov = torch.einsum("np,npi,npj->nij", weight, offsets, offsets)
    variances = torch.linalg.eigvalsh(cov)
    return 4 * variances[:, 1].sqrt(), 4 * variances[:, 0].sqrt()


def test_motion_blur_smears_a_dot_into_a_line_of_the_chosen_lengths() -> None:
    dots = torch.zeros(256, 3, 32, 32)
    dots[:, :, 16, 16] = 255
    out = Augment(seed=0, motion_blur=1.0, motion_length=8).smear(dots)
    long, short = _spread(out)
    # A uniform line of length L spans 4 standard deviations of 2 L / sqrt(3); drawing it
    # bilinearly widens it by under a pixel, and a dot stays about a pixel wide across it.
    length = long * 3 ** 0.5 / 2
    assert length.min() > 1.5 and length.max() < 9
    assert (length > 5).float().mean() > 0.3, "lengths spread over the range, not all short"
    assert short.max() < 2.5, "a line, not a disc"
    assert torch.allclose(out.sum((1, 2, 3)), dots.sum((1, 2, 3)), rtol=0.02), "the light is moved, not lost"


def test_motion_blur_takes_its_share_of_the_crops() -> None:
    dots = torch.zeros(400, 3, 32, 32)
    dots[:, :, 16, 16] = 255
    smeared = (Augment(seed=0, motion_blur=0.25).smear(dots)[:, :, 16, 16] < 255).all(1).float().mean()
    assert 0.18 < smeared < 0.32
    assert torch.equal(Augment(seed=0).smear(dots), dots)


def _gradients(n: int) -> torch.Tensor:
    """Smooth crops: a linear ramp at a different angle in each, with a colour per channel."""
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, 32), torch.linspace(-1, 1, 32), indexing="ij")
    angle = torch.linspace(0, 3.1, n).view(n, 1, 1, 1)
    ramp = xs * torch.cos(angle) + ys * torch.sin(angle)
    return (128 + 60 * ramp * torch.tensor([1.0, 0.6, -0.8]).view(1, 3, 1, 1)).round()


def _jpeg(quality: float, scale: float, jpeg: float = 1.0) -> Augment:
    return Augment(seed=0, jpeg=jpeg, jpeg_quality=(quality, quality), jpeg_scale=(scale, scale))


def test_jpeg_takes_its_share_and_draws_nothing_when_off() -> None:
    images = _random_images(400).float()
    changed = (_jpeg(30, 1.0, jpeg=0.25).compress(images) != images).flatten(1).any(1).float().mean()
    assert 0.18 < changed < 0.32
    off = Augment(seed=0)
    state = off.gen.get_state()
    assert torch.equal(off.compress(images), images)
    assert torch.equal(off.gen.get_state(), state), "earlier recipes keep their random draws"


def test_jpeg_spares_smooth_crops_and_loses_fine_detail_as_quality_falls() -> None:
    smooth, detail = _gradients(32), _random_images(32).float()

    def error(augment: Augment, images: torch.Tensor) -> float:
        out = augment.compress(images)
        assert out.shape == images.shape and torch.equal(out, out.round()) and 0 <= out.min() and out.max() <= 255
        return (out - images).abs().mean().item()

    assert error(_jpeg(20, 1.0), smooth) < 5, "a ramp is what JPEG's low frequencies keep"
    assert error(_jpeg(60, 1.0), detail) > 10
    assert error(_jpeg(15, 1.0), detail) > error(_jpeg(60, 1.0), detail) + 5


def test_jpeg_costs_a_sign_small_in_the_frame_more() -> None:
    detail = _random_images(32).float()
    small, large = ((_jpeg(30, scale).compress(detail) - detail).abs().mean().item() for scale in (0.7, 2.0))
    assert small > large + 5, "its blocks cover more of the sign"


def test_neighbour_shows_the_edge_of_another_sign_in_the_margin_below_or_above() -> None:
    """Each pixel holds 100 x its crop's index + its row, so the rows moved in say where they came from."""
    n = 400
    rows = torch.arange(32.0).view(1, 1, 32, 1)
    images = (100 * torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1) + rows).expand(n, 3, 32, 32).contiguous()
    out = Augment(seed=0, neighbour=1.0).neighboured(images)
    assert torch.equal(out[:, :, 7:26], images[:, :, 7:26]), "the sign itself is left alone"
    source_row = out[:, 0, :, 0] % 100
    changed = below = 0
    for i in range(n):
        moved = torch.nonzero(out[i, 0, :, 0] != images[i, 0, :, 0]).flatten()
        if len(moved) == 0:  # it drew itself and a cut that moved nothing
            continue
        first, last = int(moved[0]), int(moved[-1])
        assert len(moved) == last - first + 1 and (first == 0) != (last == 31), "one band, at one edge"
        assert torch.equal(torch.diff(source_row[i, first:last + 1]), torch.ones(last - first)), "rows in order"
        if last == 31:   # the top of a sign below, past its own margin
            below += 1
            assert 26 <= first and 1 <= source_row[i, first] <= 6
        else:            # the bottom of a sign above
            assert last <= 6 and 25 <= source_row[i, last] <= 31
        changed += 1
    assert changed > 0.95 * n and 0.65 < below / changed < 0.85


def test_neighbour_off_draws_nothing() -> None:
    """Recipes from before the option keep their random draws."""
    images = _random_images(64)
    steps = Augment(seed=0)
    expected = steps.degrade(steps.photometric(steps.geometric(images.float())))
    assert torch.equal(Augment(seed=0)(images), expected)


def _coded_batch(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images of one flat level each, 20 per class, so a blend's level tells its blend of labels."""
    labels = torch.arange(n) % 12
    return (20.0 * labels).view(-1, 1, 1, 1).expand(n, 3, 8, 8).clone(), labels


def test_mixup_blends_each_chosen_image_and_its_label_alike() -> None:
    images, labels = _coded_batch(400)
    mixed, targets = Augment(seed=0, mixup=0.5).mix(images, labels, num_classes=44)
    assert targets.shape == (400, 44) and torch.allclose(targets.sum(1), torch.ones(400))
    levels = targets @ (20.0 * torch.arange(44).float())
    assert torch.allclose(mixed[:, 0, 0, 0], levels, atol=1e-3), "an image is the blend its target says"
    assert (targets[torch.arange(400), labels] >= 0.5 - 1e-6).all(), "each image keeps at least half of itself"
    blended = (targets.max(1).values < 1).float().mean().item()
    assert 0.4 < blended < 0.6, "about the share asked for is blended"
    assert torch.equal(images, _coded_batch(400)[0]), "the input batch must not be modified"


def test_mixup_is_reproducible() -> None:
    images, labels = _coded_batch(64)
    first = Augment(seed=3, mixup=0.5).mix(images, labels, 44)
    second = Augment(seed=3, mixup=0.5).mix(images, labels, 44)
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
