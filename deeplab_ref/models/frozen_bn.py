"""Frozen batch normalisation: the released DeepLab-v2 fine-tunes ResNet-101 with its batch norm
fixed.

The paper's text never mentions batch normalisation. The released ResNet-101 configuration
freezes it: its BatchNorm layers use the stored ImageNet statistics (``use_global_stats``) and
its Scale layers (gamma, beta) have learning rate 0, so neither is updated. Why is not written
down; a likely reason (ours) is that the released solver runs one 321x321 crop per forward pass
(batch 1, iter_size 10), too little to estimate statistics from. Frozen, batch norm is a fixed
per-channel affine map

    y = gamma (x - mean) / sqrt(var + eps) + beta = scale * x + shift.

The state_dict keys are those of ``torch.nn.BatchNorm2d`` (``weight``, ``bias``,
``running_mean``, ``running_var``), so torchvision's ImageNet checkpoints load unchanged; their
``num_batches_tracked`` counters are accepted and dropped.
"""

from __future__ import annotations

import torch
from torch import nn


class FrozenBatchNorm2d(nn.Module):
    """Batch norm that always uses its stored statistics, in ``train()`` mode too.

    ``weight`` and ``bias`` are ``nn.Parameter``s with ``requires_grad=False``: they count among
    the model's parameters, as ``nn.BatchNorm2d``'s would, but no optimiser updates them.

    Shapes: (N, C, H, W) -> (N, C, H, W).
    """

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_features), requires_grad=False)
        self.bias = nn.Parameter(torch.zeros(num_features), requires_grad=False)
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:  # noqa: ANN001
        # nn.BatchNorm2d checkpoints also carry a step counter, meaningless once frozen.
        state_dict.pop(prefix + "num_batches_tracked", None)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.weight * torch.rsqrt(self.running_var + self.eps)
        shift = self.bias - self.running_mean * scale
        # In x's dtype: under bf16 autocast, multiplying by the fp32 scale would turn every
        # activation back into fp32 (twice the memory and traffic for nothing).
        return torch.addcmul(shift.to(x.dtype)[:, None, None], x, scale.to(x.dtype)[:, None, None])

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"
