"""Model size and cost: parameters and multiply-adds (the paper's fc6 study, Table 1).

Multiply-adds are counted for convolutions only (batch norm, ReLU, pooling and resizing are
cheap next to them): a convolution producing an (C_out, h, w) map from C_in channels with a
k_h x k_w kernel costs C_out h w (C_in / groups) k_h k_w multiply-adds per image.

Counting needs only shapes: build the model under ``torch.device("meta")`` and no weight is
allocated and nothing is computed, so even the 134M-parameter fc6 variant counts instantly.
"""

from __future__ import annotations

import torch
from torch import nn


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (frozen batch-norm affine parameters included unless
    ``trainable_only``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def multiply_adds(model: nn.Module, image_size: tuple[int, int]) -> int:
    """Convolution multiply-adds of one forward pass on one (3, H, W) image.

    The image is made on the model's device (use "meta" to count without computing). In
    training mode an MSC model's scales are all counted, as they all run.
    """
    height, width = image_size
    if height < 1 or width < 1:
        raise ValueError(f"image_size must be positive (H, W), got {image_size!r}")
    total = 0

    def count(module: nn.Conv2d, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        kernel = module.kernel_size[0] * module.kernel_size[1]
        total += output[0].numel() * (module.in_channels // module.groups) * kernel

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        device = next(model.parameters()).device
        with torch.no_grad():
            model(torch.zeros(1, 3, height, width, device=device))
    finally:
        for hook in hooks:
            hook.remove()
    return total
