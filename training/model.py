"""SignNet: the small CNN that classifies 32x32 sign crops into 43 signs + "not a sign".

It takes raw BGR pixels (0..255, as OpenCV reads them) and standardises each image
itself, so the runtime only resizes crops and never has to agree on normalisation.
:func:`predict` reads a set of crops through it in batches.

Example:
    >>> model = SignNet()
    >>> model(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 44])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from signcam.classes import NOT_A_SIGN

__all__ = ["SignNet", "count_macs", "predict", "INPUT_SIZE", "MAX_STAGES", "CONTRAST_MODES"]

INPUT_SIZE = 32
#: Stages of SignNet: each after the first halves the maps, and 32 px halved five times is 1 px.
MAX_STAGES = 6
CONTRAST_MODES = ("global", "local")
#: The shape of ``SignNet()`` and of ``fit`` without ``--widths``, ``--depths`` or ``--contrast``.
DEFAULT_WIDTHS = (16, 32, 64, 128)
DEFAULT_DEPTHS = (1, 1, 2, 2)
DEFAULT_CONTRAST = "global"


def _conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class SignNet(nn.Module):
    """A VGG-style network sized for a laptop CPU: about 0.29 M parameters, 8.7 M MACs.

    Most of its convolutions work on the small 8x8 and 4x4 maps, where ONNX Runtime runs
    them fastest per multiply-add; only one layer each sees the 32x32 and 16x16 maps.

    Args:
        widths: Channels of the four stages (32, 16, 8 and 4 px feature maps).
        depths: 3x3 convolutions in each stage.
        num_classes: Outputs: 43 GTSRB signs plus one "not a sign".
        dropout: Dropout before the classifier.
        contrast: "global" standardises each image as a whole; "local" also feeds the
            first layer each pixel relative to its 9x9 neighbourhood, meant for dark signs
            against a bright sky (it scored lower on validation than "global" so far).
    """

    def __init__(self, widths: tuple[int, ...] = DEFAULT_WIDTHS, num_classes: int = 44,
                 dropout: float = 0.2, contrast: str = DEFAULT_CONTRAST,
                 depths: tuple[int, ...] = DEFAULT_DEPTHS) -> None:
        super().__init__()
        if contrast not in CONTRAST_MODES:
            raise ValueError(f"contrast must be one of {CONTRAST_MODES}, not {contrast!r}")
        self.contrast = contrast
        self.arch = {"widths": list(widths), "depths": list(depths), "contrast": contrast}
        if len(widths) > MAX_STAGES:
            raise ValueError(f"at most {MAX_STAGES} stages: a {INPUT_SIZE} px input halved {MAX_STAGES - 1} times "
                             "is 1 px")
        if len(widths) != len(depths) or min(depths) < 1:
            raise ValueError(f"one depth (>= 1) per stage: widths {widths}, depths {depths}")
        layers: list[nn.Module] = []
        c_in = 6 if contrast == "local" else 3
        for stage, (width, depth) in enumerate(zip(widths, depths, strict=True)):
            if stage:
                layers.append(nn.MaxPool2d(2))
            for _ in range(depth):
                layers += _conv_bn_relu(c_in, width)
                c_in = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout),
                                  nn.Linear(c_in, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Per-image standardisation: GTSRB spans night to glare, and doing it here keeps
        # the exported model self-contained.
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        std = x.std(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) / (std + 4.0)
        if self.contrast == "local":
            centred = x - F.avg_pool2d(x, 9, stride=1, padding=4, count_include_pad=False)
            energy = F.avg_pool2d(centred.pow(2).mean(1, keepdim=True), 9, stride=1, padding=4,
                                  count_include_pad=False)
            x = torch.cat([x, centred / (energy + 0.05).sqrt()], 1)
        return self.head(self.features(x))


def count_macs(model: nn.Module, input_size: int = INPUT_SIZE) -> int:
    """Multiply-adds of one forward pass on a single crop (convolutions and linear layers)."""
    total = 0

    def hook(module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            total += output.numel() * module.in_channels // module.groups * k
        elif isinstance(module, nn.Linear):
            total += module.in_features * module.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, input_size, input_size))
    model.train(was_training)
    for handle in handles:
        handle.remove()
    return total


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, device: torch.device | str, batch_size: int = 1024,
            desc: str | None = None) -> torch.Tensor:
    """Softmax probabilities (N x 44) for uint8 images, in batches; with ``desc``, under a progress bar."""
    model.eval()
    starts = range(0, len(images), batch_size)
    if desc is not None:
        starts = tqdm(starts, desc=desc, unit="batch", leave=False)
    out = [torch.softmax(model(images[i:i + batch_size].float().to(device)), 1).cpu() for i in starts]
    return torch.cat(out) if out else torch.zeros(0, NOT_A_SIGN + 1)
