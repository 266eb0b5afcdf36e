"""A small backbone for teaching on a CPU: DeepLab's machinery at a size a laptop trains.

The paper's backbones (``vgg``, ``resnet``) start from ImageNet. On the CPU we train from scratch
on the synthetic scenes, in minutes, so this network is narrow and shallow, but it is built the
DeepLab way (Sec. 3.1): four stages that would each halve the resolution, the last one's stride
removed and the convolution after it dilated by 2, so the scores come out at output stride 8 with
the field of view of the output-stride-16 network. At output stride 32 both convolutions of the
last stage stride instead: the same weights at three densities, for comparing output strides. Batch norm is trained here, not frozen:
freezing only makes sense with ImageNet statistics to keep (the released configuration's case).

Shapes: (N, 3, H, W) -> (N, 2 width, ceil(H / 8), ceil(W / 8)).
"""

from __future__ import annotations

import torch
from torch import nn

# Output stride -> ((strides of the last stage's two convolutions), rate of its second).
LAST_STAGE = {8: ((1, 1), 2), 16: ((2, 1), 1), 32: ((2, 2), 1)}


def conv_bn_relu(in_channels: int, out_channels: int, stride: int = 1, rate: int = 1) -> nn.Module:
    """3x3 convolution (atrous with ``rate``; "same" padding), batch norm, ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride, padding=rate, dilation=rate, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class SmallBackbone(nn.Module):
    """Four stages of 3x3 convolutions: (width, width), (2 width, 2 width), (2 width), then two
    more at 2 width. Each of the first three stages starts with a stride-2 convolution; the last
    stage's first convolution strides too at output stride 16 (and its second at 32); at output
    stride 8 neither does, and the second has rate 2 instead.

    Args:
        width: channels of the first stage.
        output_stride: 8 (DeepLab), 16 or 32.
    """

    def __init__(self, width: int = 32, output_stride: int = 8) -> None:
        super().__init__()
        if not isinstance(width, int) or width < 1:
            raise ValueError(f"width must be a positive integer, got {width!r}")
        if output_stride not in LAST_STAGE:
            raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride!r}")
        (stride, second_stride), rate = LAST_STAGE[output_stride]
        wide = 2 * width
        self.stage1 = nn.Sequential(conv_bn_relu(3, width, stride=2), conv_bn_relu(width, width))
        self.stage2 = nn.Sequential(conv_bn_relu(width, wide, stride=2), conv_bn_relu(wide, wide))
        self.stage3 = conv_bn_relu(wide, wide, stride=2)
        # The atrous trick: drop the stride, dilate every layer *after* it by the stride dropped.
        self.stage4 = nn.Sequential(
            conv_bn_relu(wide, wide, stride=stride),
            conv_bn_relu(wide, wide, stride=second_stride, rate=rate),
        )
        self.out_channels = wide
        self.output_stride = output_stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stage4(self.stage3(self.stage2(self.stage1(x))))
