"""ResNet with atrous convolution: DeepLab-v2's ResNet-101 backbone (Sec. 3.1 and 4.1.2).

He et al.'s ResNet downsamples 32 times. DeepLab removes the stride of the last two stages and
dilates every 3x3 convolution after each removed stride, so the backbone keeps output stride 8
and, in the Caffe layout, each layer still sees the same input pixels as before (Sec. 3.1):

    output_stride   layer3 (res4) stride / rate   layer4 (res5) stride / rate
         32                   2 / 1                         2 / 1
         16                   2 / 1                         1 / 2
          8                   1 / 2                         1 / 4

All blocks of a dilated stage use its rate, the first one included, as the released model does.
In the Caffe layout the first block's stride sits on its 1x1, so its 3x3 already ran at the new
resolution and the rate only keeps its reach. In torchvision's layout that 3x3 held the stride:
dilating it (our choice) makes it read twice as far as in pre-training (the receptive field grows
from 971 at output stride 32 to 1,019 at 8), where torchvision's own ``replace_stride_with_dilation``
gives the first block the previous rate instead.
Batch norm is frozen (``FrozenBatchNorm2d``, the released configuration's choice).

The block layout must be the one the weights were trained in; two details differ between the
ImageNet ResNets in use:

* ``stride_in_1x1``: the stride of a downsampling bottleneck sits on its first 1x1 convolution in
  the MSRA/Caffe model the released DeepLab-v2 fine-tuned (True), and on its 3x3 convolution in
  torchvision's (False, "ResNet v1.5");
* ``pool_ceil_mode``: the Caffe stem max-pools with ceil rounding (True); torchvision floors.

``TORCHVISION_LAYOUT`` and ``CAFFE_LAYOUT`` hold both settings. torchvision's checkpoints, the
ones ``load_imagenet_weights`` reads, need ``TORCHVISION_LAYOUT`` (the ResNet-101 preset builds
it and the loader refuses another); weights converted from the released Caffe model need
``CAFFE_LAYOUT``, which is also the constructor's default (its receptive field is the 1,027
pixels published for ResNet-v1-101; torchvision's layout gives 971 at output stride 32). On inputs of 8k + 1 pixels
both layouts give the same score sizes (321 -> 41, 513 -> 65), but not the same values for the
same weights.

Module names follow torchvision (``conv1``, ``bn1``, ``layer1`` ... ``layer4``, ``downsample``)
so its checkpoints load by name; ``layer1`` to ``layer4`` are res2 to res5 of the Caffe model.
"""

from __future__ import annotations

import torch
from torch import nn

from deeplab_ref.models.frozen_bn import FrozenBatchNorm2d

RESNET_BLOCKS: dict[str, tuple[int, int, int, int]] = {
    "resnet50": (3, 4, 6, 3),
    "resnet101": (3, 4, 23, 3),
}

# Keyword arguments of ResNet for the block layout of each source of ImageNet weights.
TORCHVISION_LAYOUT: dict[str, bool] = {"stride_in_1x1": False, "pool_ceil_mode": False}
CAFFE_LAYOUT: dict[str, bool] = {"stride_in_1x1": True, "pool_ceil_mode": True}

# (stride, atrous rate) of layer1 .. layer4 for each output stride.
_STAGE_STRIDES_AND_RATES: dict[int, tuple[tuple[int, int], ...]] = {
    32: ((1, 1), (2, 1), (2, 1), (2, 1)),
    16: ((1, 1), (2, 1), (2, 1), (1, 2)),
    8: ((1, 1), (2, 1), (1, 2), (1, 4)),
}


class Bottleneck(nn.Module):
    """1x1 (reduce) -> 3x3 atrous -> 1x1 (expand x4), plus the shortcut; (N, C_in, H, W) ->
    (N, 4 mid_channels, H / stride, W / stride)."""

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        mid_channels: int,
        stride: int = 1,
        atrous_rate: int = 1,
        stride_in_1x1: bool = True,
    ) -> None:
        super().__init__()
        out_channels = mid_channels * self.expansion
        stride_1x1, stride_3x3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = nn.Conv2d(in_channels, mid_channels, 1, stride=stride_1x1, bias=False)
        self.bn1 = FrozenBatchNorm2d(mid_channels)
        # padding = rate keeps the size: the dilated 3x3 spans 2 rate + 1 pixels.
        self.conv2 = nn.Conv2d(
            mid_channels,
            mid_channels,
            3,
            stride=stride_3x3,
            padding=atrous_rate,
            dilation=atrous_rate,
            bias=False,
        )
        self.bn2 = FrozenBatchNorm2d(mid_channels)
        self.conv3 = nn.Conv2d(mid_channels, out_channels, 1, bias=False)
        self.bn3 = FrozenBatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                FrozenBatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + shortcut)


class ResNet(nn.Module):
    """Bottleneck ResNet backbone without its ImageNet classifier.

    Args:
        blocks: bottlenecks per stage, (3, 4, 23, 3) for ResNet-101, (3, 4, 6, 3) for ResNet-50;
            small values such as (1, 1, 1, 1) give a network that trains on a CPU.
        width: channels of the stem (64 in ResNet-101); stage i has width * 2**i bottleneck
            channels and 4 * width * 2**i output channels.
        output_stride: 8 (DeepLab), 16 or 32 (the ImageNet network).
        stride_in_1x1: where a downsampling bottleneck strides: its 1x1 (Caffe, the default) or
            its 3x3 convolution (torchvision); see the module docstring.
        pool_ceil_mode: round the stem's max-pool output size up (Caffe, the default) or down
            (torchvision). ``**TORCHVISION_LAYOUT`` sets both for torchvision's weights.

    Shapes: (N, 3, H, W) -> (N, out_channels, ~H / output_stride, ~W / output_stride).
    """

    def __init__(
        self,
        blocks: tuple[int, ...] = RESNET_BLOCKS["resnet101"],
        width: int = 64,
        output_stride: int = 8,
        stride_in_1x1: bool = True,
        pool_ceil_mode: bool = True,
    ) -> None:
        super().__init__()
        blocks = tuple(blocks)
        if len(blocks) != 4 or any(not isinstance(b, int) or b < 1 for b in blocks):
            raise ValueError(f"blocks must be 4 positive integers, got {blocks!r}")
        if not isinstance(width, int) or width < 1:
            raise ValueError(f"width must be a positive integer, got {width!r}")
        if output_stride not in _STAGE_STRIDES_AND_RATES:
            raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride!r}")
        self.blocks = blocks
        self.width = width
        self.output_stride = output_stride
        self.stride_in_1x1 = stride_in_1x1
        self.pool_ceil_mode = pool_ceil_mode
        self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = FrozenBatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=pool_ceil_mode)
        in_channels = width
        stages = _STAGE_STRIDES_AND_RATES[output_stride]
        for index, (n_blocks, (stride, rate)) in enumerate(zip(blocks, stages, strict=True)):
            mid_channels = width * 2**index
            layer = []
            for block in range(n_blocks):
                layer.append(
                    Bottleneck(
                        in_channels,
                        mid_channels,
                        stride=stride if block == 0 else 1,
                        atrous_rate=rate,
                        stride_in_1x1=stride_in_1x1,
                    )
                )
                in_channels = mid_channels * Bottleneck.expansion
            self.add_module(f"layer{index + 1}", nn.Sequential(*layer))
        self.out_channels = in_channels
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))
