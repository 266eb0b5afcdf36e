"""VGG-16 turned into DeepLab's backbone (Sec. 3.1 and 4, "DeepLab-LargeFOV").

The ImageNet VGG-16 downsamples 32 times with five 2x2 max-poolings. DeepLab keeps the first
three (as 3x3, stride 2, padding 1 poolings), makes pool4 and pool5 3x3 poolings with stride 1,
and dilates the conv5 layers by 2 to make up for the stride removed before them: the scores come
out at output stride 8 (a 321x321 crop gives 41x41). The fully connected fc6/fc7 become
convolutions in the head (``deeplab_ref.models.aspp``).

Poolings round up as Caffe does (``ceil_mode``), so an input of 8k + 1 pixels gives k + 1
outputs. The layer indices of ``features`` are torchvision's (``features.0`` is conv1_1,
``features.28`` conv5_3), so its ImageNet convolutions load by name. The extra 3x3 average
pooling (pool5a) of the DeepLab-v1 LargeFOV prototxt is not included.
"""

from __future__ import annotations

import torch
from torch import nn

# Convolutions per stage; stage i has width * (1, 2, 4, 8, 8)[i] channels.
_STAGE_CONVS = (2, 2, 3, 3, 3)
_STAGE_WIDTHS = (1, 2, 4, 8, 8)


class VGG16(nn.Module):
    """The 13 convolutions of VGG-16 with DeepLab's poolings and conv5 rate.

    Args:
        width: channels of conv1 (64 in the paper); small values give a CPU-sized network.
        output_stride: 8 (DeepLab: pool4, pool5 stride 1, conv5 rate 2), 16 (pool5 stride 1)
            or 32 (every pooling strides).

    Shapes: (N, 3, H, W) -> (N, 8 width, ~H / output_stride, ~W / output_stride).
    """

    def __init__(self, width: int = 64, output_stride: int = 8) -> None:
        super().__init__()
        if not isinstance(width, int) or width < 1:
            raise ValueError(f"width must be a positive integer, got {width!r}")
        if output_stride not in (8, 16, 32):
            raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride!r}")
        self.width = width
        self.output_stride = output_stride
        # Strides of pool1..pool5: the first three always halve; pool4/pool5 as output_stride asks.
        pool_strides = (2, 2, 2, 2 if output_stride >= 16 else 1, 2 if output_stride == 32 else 1)
        layers: list[nn.Module] = []
        in_channels, atrous_rate = 3, 1
        for n_convs, multiple, pool_stride in zip(
            _STAGE_CONVS, _STAGE_WIDTHS, pool_strides, strict=True
        ):
            channels = width * multiple
            for _ in range(n_convs):
                layers.append(
                    nn.Conv2d(in_channels, channels, 3, padding=atrous_rate, dilation=atrous_rate)
                )
                layers.append(nn.ReLU(inplace=True))
                in_channels = channels
            layers.append(nn.MaxPool2d(3, stride=pool_stride, padding=1, ceil_mode=True))
            # Every stride removed multiplies the rate of the convolutions after it.
            atrous_rate *= 2 // pool_stride
        self.features = nn.Sequential(*layers)
        self.out_channels = in_channels
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)
