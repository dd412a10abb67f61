"""SignDet: a small fully-convolutional network that says where signs are in a full frame.

It predicts, on a grid of stride 4, a heatmap of sign centres plus each sign's size and
sub-cell offset (CenterNet-style, one class: "a sign"). The classifier then names or
rejects each peak.

Example:
    >>> SignDet()(torch.zeros(1, 3, 192, 192)).shape
    torch.Size([1, 5, 48, 48])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SignDet", "STRIDE", "INPUT_MULTIPLE"]

STRIDE = 4  # output cell size, in pixels of the network's input
#: Input sides the network's grids line up for: it halves its input four times, and the merge
#: back to stride 4 adds each stage's map to the one before it (the runtime rounds frames to it too).
INPUT_MULTIPLE = 16


def _cbr(c_in: int, c_out: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, padding=dilation, dilation=dilation, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class SignDet(nn.Module):
    """Encoder to stride 16, top-down merge back to stride 4, three heads.

    Output: N x 5 x H/4 x W/4 = heatmap logit, log width, log height (in cells), x and y offset.
    """

    def __init__(self, widths: tuple[int, int, int, int] = (16, 16, 32, 48)) -> None:
        super().__init__()
        w1, w2, w3, w4 = widths
        self.c2 = nn.Sequential(_cbr(3, w1, 2), _cbr(w1, w2, 2), _cbr(w2, w2))
        self.c3 = nn.Sequential(_cbr(w2, w3, 2), _cbr(w3, w3))
        self.c4 = nn.Sequential(_cbr(w3, w4, 2), _cbr(w4, w4, dilation=2))
        self.lat4 = nn.Conv2d(w4, w3, 1)
        self.lat3 = nn.Conv2d(w3, w2, 1)
        self.head = nn.Sequential(_cbr(w2, w2), nn.Conv2d(w2, 5, 1))
        nn.init.constant_(self.head[1].bias[:1], -4.0)  # start with "no sign" everywhere

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - 110.0) / 70.0
        c2 = self.c2(x)
        c3 = self.c3(c2)
        c4 = self.c4(c3)
        p3 = c3 + F.interpolate(self.lat4(c4), size=c3.shape[-2:], mode="nearest")
        p2 = c2 + F.interpolate(self.lat3(p3), size=c2.shape[-2:], mode="nearest")
        return self.head(p2)
