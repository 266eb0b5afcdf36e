"""DeepLab-v2: a backbone with atrous convolution, an ASPP (or LargeFOV) head, optional MSC.

The whole network of Sec. 3-4: an ImageNet backbone turned to output stride 8 (``vgg``,
``resnet``), a head of atrous branches whose class scores are summed (``aspp``), and optionally
the multi-scale input fusion (``msc``). The output is class scores at output stride 8, brought
to the image size by ``upsample_scores`` at test time.

Also here: the learning-rate multipliers of the released Caffe solvers (``param_groups``).
Layers initialised from ImageNet train at the base rate, the new classifier (fc8) at 10x; biases
at twice their layer's rate and without weight decay. The paper's text has only the classifier's
10x (Sec. 4.1.1: 0.01 against 0.001).
"""

from __future__ import annotations

import torch
from torch import nn

from deeplab_ref.models.aspp import ASPP, HEAD_RATES
from deeplab_ref.models.msc import MSC_SCALES, multi_scale_scores
from deeplab_ref.models.resnet import RESNET_BLOCKS, ResNet
from deeplab_ref.models.small import SmallBackbone
from deeplab_ref.models.vgg import VGG16


class DeepLabV2(nn.Module):
    """backbone -> head, optionally at several scales fused by a maximum.

    Args:
        backbone: a module (N, 3, H, W) -> (N, C, h, w) with an ``out_channels`` attribute.
        head: a module (N, C, h, w) -> (N, K, h, w), normally ``ASPP``.
        msc_scales: None for a single scale, else e.g. (1.0, 0.75, 0.5).

    ``forward`` returns the (N, K, h, w) scores, fused over the scales with ``msc_scales``, in
    training and evaluation mode alike. ``supervised_scores`` returns every map the loss
    supervises: ``[scores]``, or ``[fused, scale 1, scale 0.75, scale 0.5]`` with MSC (sizes in
    ``multi_scale_scores``).
    """

    def __init__(
        self, backbone: nn.Module, head: nn.Module, msc_scales: tuple[float, ...] | None = None
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.msc_scales = None if msc_scales is None else tuple(msc_scales)

    def single_scale(self, images: torch.Tensor) -> torch.Tensor:
        """Scores of one forward pass: (N, 3, H, W) -> (N, K, h, w)."""
        return self.head(self.backbone(images))

    def supervised_scores(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Every score map the training loss compares with the labels, the fused scores first."""
        if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images)
            raise ValueError(f"images must be a (N, 3, H, W) tensor, got {shape}")
        if not images.is_floating_point():
            raise ValueError(f"images must be floating point, got dtype {images.dtype}")
        if self.msc_scales is None:
            return [self.single_scale(images)]
        return multi_scale_scores(self.single_scale, images, self.msc_scales)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The class scores (N, K, h, w) at output stride 8, fused over the scales with MSC."""
        return self.supervised_scores(images)[0]


def deeplab_v2(
    backbone: str | nn.Module = "resnet101",
    head: str = "aspp-l",
    num_classes: int = 21,
    msc: bool = False,
    output_stride: int = 8,
    *,
    atrous_rates: tuple[int, ...] | None = None,
    hidden_channels: int | None = None,
    kernel_size: int = 3,
    dropout: float = 0.5,
    msc_scales: tuple[float, ...] = MSC_SCALES,
    **backbone_options: object,
) -> DeepLabV2:
    """Build DeepLab-v2 as in the paper.

    Args:
        backbone: "resnet101" (the paper), "resnet50", "vgg16", "small" (``SmallBackbone``, for
            training from scratch on a CPU), or a built module with an
            ``out_channels`` attribute (then ``output_stride`` is the module's business).
        head: "aspp-l" (rates 6, 12, 18, 24), "aspp-s" (2, 4, 8, 12) or "largefov" (12).
        num_classes: 21 for PASCAL VOC (background included).
        msc: run at scales ``msc_scales`` and fuse by a maximum.
        output_stride: 8 (the paper), 16 or 32.
        atrous_rates: the head's rates, overriding ``head``'s.
        hidden_channels: fc6/fc7 width of the head's branches; default 1024 on VGG-16 (fc6 ->
            fc7 -> fc8 branches) and None on ResNet (one convolution to the classes).
        kernel_size: fc6's kernel (3; 7 and 4 in the paper's fc6 study).
        dropout: after fc6 and fc7 (VGG-style branches only).
        **backbone_options: passed to ``ResNet`` (``blocks``, ``width``, ``stride_in_1x1``,
            ``pool_ceil_mode``) or ``VGG16`` (``width``): e.g. ``blocks=(1, 1, 1, 1), width=8``
            builds a CPU-sized network with the same DeepLab machinery.

    Returns:
        A ``DeepLabV2``: (N, 3, H, W) -> (N, num_classes, h, w), h = ceil(H / 8) for
        H = 8k + 1 (321 -> 41, 513 -> 65).
    """
    if isinstance(backbone, nn.Module):
        if backbone_options:
            raise ValueError(
                f"backbone options {sorted(backbone_options)} only apply to a backbone by name"
            )
        if not isinstance(getattr(backbone, "out_channels", None), int):
            raise ValueError("a backbone module must have an integer out_channels attribute")
        net = backbone
    elif backbone in RESNET_BLOCKS:
        options = {"blocks": RESNET_BLOCKS[backbone], **backbone_options}
        net = ResNet(output_stride=output_stride, **options)
    elif backbone == "vgg16":
        net = VGG16(output_stride=output_stride, **backbone_options)
    elif backbone == "small":
        net = SmallBackbone(output_stride=output_stride, **backbone_options)
    else:
        raise ValueError(
            f"backbone must be one of {[*RESNET_BLOCKS, 'vgg16', 'small']} or a module, "
            f"got {backbone!r}"
        )
    if atrous_rates is None:
        if head not in HEAD_RATES:
            raise ValueError(f"head must be one of {list(HEAD_RATES)}, got {head!r}")
        atrous_rates = HEAD_RATES[head]
    if hidden_channels is None and isinstance(net, VGG16):
        hidden_channels = 1024
    aspp = ASPP(net.out_channels, num_classes, atrous_rates, hidden_channels, kernel_size, dropout)
    return DeepLabV2(net, aspp, msc_scales if msc else None)


def param_groups(
    model: DeepLabV2, base_lr: float, weight_decay: float = 5e-4
) -> list[dict[str, object]]:
    """Parameter groups for ``torch.optim.SGD`` following the released Caffe solvers.

    ============================  =========  ============
    parameters                    lr_mult    weight decay
    ============================  =========  ============
    backbone, fc6, fc7 weights    1          yes
    backbone, fc6, fc7 biases     2          no
    classifier (fc8) weights      10         yes
    classifier (fc8) biases       20         no
    ============================  =========  ============

    Frozen parameters (batch norm) are left out. Each group has ``lr = base_lr * lr_mult`` and
    keeps ``lr_mult`` so a schedule (e.g. "poly") can set ``lr = lr_mult * base_lr * factor``.
    Empty groups are dropped (ResNet's backbone has no biases).
    """
    if not isinstance(model, DeepLabV2):
        raise ValueError(f"model must be a DeepLabV2, got {type(model).__name__}")
    if not base_lr > 0:
        raise ValueError(f"base_lr must be positive, got {base_lr!r}")
    if not weight_decay >= 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
    classifier = {id(p) for branch in model.head.branches for p in branch.classifier.parameters()}
    groups = {(m, bias): [] for m in (1, 10) for bias in (False, True)}
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            is_bias = name.endswith("bias")
            groups[(10 if id(parameter) in classifier else 1, is_bias)].append(parameter)
    return [
        {
            "params": params,
            "lr_mult": mult * (2 if is_bias else 1),
            "lr": base_lr * mult * (2 if is_bias else 1),
            "weight_decay": 0.0 if is_bias else weight_decay,
        }
        for (mult, is_bias), params in groups.items()
        if params
    ]
