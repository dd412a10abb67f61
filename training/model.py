"""SignNet: the small CNN that classifies 32x32 sign crops into 43 signs + "not a sign".

It takes raw BGR pixels (0..255, as OpenCV reads them) and standardises each image
itself, so the runtime only resizes crops and never has to agree on normalisation.

Example:
    >>> model = SignNet()
    >>> model(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 44])
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SignNet", "count_macs", "INPUT_SIZE"]

INPUT_SIZE = 32


def _conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class SignNet(nn.Module):
    """A VGG-style network sized for a laptop CPU: about 0.15 M parameters, 8.7 M MACs.

    Args:
        widths: Channels of the four stages (32, 16, 8 and 4 px feature maps).
        num_classes: Outputs: 43 GTSRB signs plus one "not a sign".
        dropout: Dropout before the classifier.
    """

    def __init__(self, widths: tuple[int, int, int, int] = (16, 32, 64, 128), num_classes: int = 44,
                 dropout: float = 0.2) -> None:
        super().__init__()
        w1, w2, w3, w4 = widths
        self.features = nn.Sequential(
            *_conv_bn_relu(3, w1), nn.MaxPool2d(2),
            *_conv_bn_relu(w1, w2), *_conv_bn_relu(w2, w2), nn.MaxPool2d(2),
            *_conv_bn_relu(w2, w3), *_conv_bn_relu(w3, w3), nn.MaxPool2d(2),
            *_conv_bn_relu(w3, w4),
        )
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout),
                                  nn.Linear(w4, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Per-image standardisation: GTSRB spans night to glare, and doing it here keeps
        # the exported model self-contained.
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        std = x.std(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) / (std + 4.0)
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
