"""Atrous spatial pyramid pooling as in DeepLab-v2 (Sec. 3.2, Fig. 4 and 7), and LargeFOV.

ASPP runs several branches in parallel on the same backbone features, each an atrous
convolution with its own rate, so each looks at the image through its own field of view. Each
branch ends in class scores and the branches' scores are **summed**:

    scores = sum_b branch_b(features)

* ASPP-S: rates {2, 4, 8, 12}; ASPP-L: rates {6, 12, 18, 24}.
* LargeFOV (Sec. 4.1) is the single-branch case: one 3x3 convolution at rate 12.
* On VGG-16 a branch is fc6 (3x3 atrous, 1024 channels) -> ReLU -> dropout -> fc7 (1x1, 1024)
  -> ReLU -> dropout -> fc8 (1x1, classes), as in Fig. 7. On ResNet-101 a branch is a single 3x3
  atrous convolution from the 2048 features straight to the classes.

This is not DeepLab-v3's ASPP, which adds batch norm, a 1x1 branch and an image-pooling branch,
concatenates the branches' 256-channel features and classifies them with one more convolution.
Here nothing mixes the branches before their scores are added.

Each branch's last layer is called ``classifier`` (the paper's fc8): the paper replaces ImageNet's
classifier with it and trains it at 10x the learning rate (Sec. 4 and 4.1.1); the released
configurations initialise it from a Gaussian of std 0.01 with zero bias.
"""

from __future__ import annotations

import torch
from torch import nn

from deeplab_ref.atrous import effective_kernel_size

HEAD_RATES: dict[str, tuple[int, ...]] = {
    "largefov": (12,),
    "aspp-s": (2, 4, 8, 12),
    "aspp-l": (6, 12, 18, 24),
}


def branch_field_of_view(atrous_rate: int, kernel_size: int = 3, output_stride: int = 8) -> int:
    """Input pixels spanned by one branch's atrous filter: output_stride * r (k - 1) + 1.

    On features at ``output_stride``, neighbouring taps of a rate-r filter are r feature pixels,
    i.e. output_stride * r image pixels, apart (ASPP-L at output stride 8: 97, 193, 289, 385).
    This is the filter's own reach; the backbone's receptive field adds to it.
    """
    return output_stride * (effective_kernel_size(kernel_size, atrous_rate) - 1) + 1


def atrous_conv(
    in_channels: int, out_channels: int, kernel_size: int, atrous_rate: int
) -> nn.Conv2d:
    """A stride-1 atrous convolution padded to keep the size (for odd dilated kernels)."""
    padding = (effective_kernel_size(kernel_size, atrous_rate) - 1) // 2
    return nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, dilation=atrous_rate)


class ASPPBranch(nn.Module):
    """One branch: (N, in_channels, H, W) -> (N, num_classes, H, W) class scores.

    With ``hidden_channels`` (VGG-16): fc6 (kernel_size, atrous) -> fc7 (1x1) -> classifier
    (1x1), ReLU and dropout after fc6 and fc7. Without (ResNet-101): one kernel_size atrous
    convolution to the classes.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        atrous_rate: int,
        hidden_channels: int | None = None,
        kernel_size: int = 3,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.atrous_rate = atrous_rate
        self.kernel_size = kernel_size
        self.hidden_channels = hidden_channels
        if hidden_channels is None:
            self.classifier = atrous_conv(in_channels, num_classes, kernel_size, atrous_rate)
        else:
            self.fc6 = atrous_conv(in_channels, hidden_channels, kernel_size, atrous_rate)
            self.fc7 = nn.Conv2d(hidden_channels, hidden_channels, 1)
            self.classifier = nn.Conv2d(hidden_channels, num_classes, 1)
            self.dropout = nn.Dropout(dropout)
            for layer in (self.fc6, self.fc7):
                nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(layer.bias)
        # The released configurations' initialisation of the new classifier (the paper's text
        # gives none): Gaussian, std 0.01, zero bias.
        nn.init.normal_(self.classifier.weight, std=0.01)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if self.hidden_channels is not None:
            features = self.dropout(torch.relu(self.fc6(features)))
            features = self.dropout(torch.relu(self.fc7(features)))
        return self.classifier(features)


class ASPP(nn.Module):
    """Parallel atrous branches whose class scores are summed (DeepLab-v2 ASPP).

    Args:
        in_channels: channels of the backbone features (512 for VGG-16, 2048 for ResNet-101).
        num_classes: classes scored (21 for PASCAL VOC).
        atrous_rates: one rate per branch, e.g. ``HEAD_RATES["aspp-l"]``.
        hidden_channels: fc6/fc7 width of VGG-style branches (1024), None for ResNet-style ones.
        kernel_size: fc6's kernel (3; the paper's fc6 study also tries 7 and 4).
        dropout: drop probability after fc6 and fc7 (VGG-style branches only).

    Shapes: (N, in_channels, H, W) -> (N, num_classes, H, W).
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        atrous_rates: tuple[int, ...] = HEAD_RATES["aspp-l"],
        hidden_channels: int | None = None,
        kernel_size: int = 3,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        if not atrous_rates or any(not isinstance(r, int) or r < 1 for r in atrous_rates):
            raise ValueError(f"atrous_rates must be positive integers, got {atrous_rates!r}")
        self.atrous_rates = tuple(atrous_rates)
        self.branches = nn.ModuleList(
            ASPPBranch(in_channels, num_classes, rate, hidden_channels, kernel_size, dropout)
            for rate in self.atrous_rates
        )

    def branch_scores(self, features: torch.Tensor) -> list[torch.Tensor]:
        """Each branch's class scores, (N, num_classes, H, W) each, before the sum."""
        return [branch(features) for branch in self.branches]

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.stack(self.branch_scores(features)).sum(dim=0)
