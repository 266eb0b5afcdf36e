"""Receptive fields of convolutional networks with atrous convolution.

DeepLab's argument (Sec. 3.1, Fig. 3) is that atrous convolution enlarges the field of view of a
filter without more parameters, and that removing a stride and dilating every later layer keeps the
field of view while making the output denser. This module measures those fields of view.

The theoretical receptive field follows Araujo, Norris and Sim, "Computing Receptive Fields of
Convolutional Neural Networks" (Distill, 2019). Along each axis, a stack of layers l = 1..L with
kernel k_l, atrous rate r_l (an effective kernel k'_l = r_l (k_l - 1) + 1), stride s_l and
padding p_l has

    field_of_view  R = 1 + sum_l (k'_l - 1) prod_{i<l} s_i        (input pixels)
    stride         S = prod_l s_l                                 (the output stride)
    padding        P = sum_l p_l prod_{i<l} s_i

and output u reads the input pixels u S - P .. u S - P + R - 1 (negative indices are padding).
Where branches meet (residual additions, parallel sums, concatenation) the field is the union of
the branches' fields; when the branches' centres differ the result is marked ``aligned=False``.

The effective receptive field is Luo, Li, Urtasun and Zemel, "Understanding the Effective Receptive
Field in Deep Convolutional Neural Networks" (NIPS 2016): the gradient of one output with respect
to the input, which fills only part of the theoretical field. ``atrous_footprint`` shows the
"gridding" of stacked atrous layers, ``hdc_max_gap`` the rule of Wang et al. (2018, "hybrid
dilated convolution") that predicts it, and ``valid_taps`` the degeneration of a 3x3 atrous filter
when its rate nears the feature-map size (the reason for ASPP's image pooling in later DeepLabs).
``layer_by_layer`` traces the field after every layer of an ``nn.Sequential``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves, tree_map
from torch.utils.weak import WeakTensorKeyDictionary

from deeplab_ref.atrous import dilate_kernel, effective_kernel_size

Pair = tuple[int, int]


def _pair(name: str, value: int | tuple[int, ...] | list[int], minimum: float) -> Pair:
    values = (value,) if isinstance(value, int | np.integer) else tuple(value)
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or not all(
        isinstance(v, int | np.integer) and v >= minimum for v in values
    ):
        bound = "" if minimum == -np.inf else f" >= {minimum}"
        raise ValueError(f"{name} must be an int{bound} or a pair of them, got {value!r}")
    return int(values[0]), int(values[1])


@dataclass(frozen=True)
class ReceptiveField:
    """Where one output of a network looks in its input, per axis (height, width), in pixels.

    ``field_of_view`` R, ``stride`` S (the output stride) and ``padding`` P mean that output
    (row, col) reads input rows row * S - P .. row * S - P + R - 1, and likewise for columns.
    ``aligned`` is False when branches with different centres were merged. ``output_size`` is the
    traced output's (H, W), when known.
    """

    field_of_view: Pair = (1, 1)
    stride: Pair = (1, 1)
    padding: Pair = (0, 0)
    aligned: bool = True
    output_size: Pair | None = None

    def then(
        self,
        kernel: int | Pair,
        stride: int | Pair = 1,
        padding: int | Pair = 0,
        rate: int | Pair = 1,
    ) -> ReceptiveField:
        """The field after one more convolution or pooling layer (kernel k, atrous rate r);
        a negative padding crops."""
        kernel, stride, rate = (
            _pair(n, v, 1) for n, v in (("kernel", kernel), ("stride", stride), ("rate", rate))
        )
        padding = _pair("padding", padding, -np.inf)
        # Each new tap is one step of the current stride apart in the input.
        field_of_view = tuple(
            R + (effective_kernel_size(k, r) - 1) * S
            for R, S, k, r in zip(self.field_of_view, self.stride, kernel, rate, strict=True)
        )
        return replace(
            self,
            field_of_view=field_of_view,
            stride=tuple(S * s for S, s in zip(self.stride, stride, strict=True)),
            padding=tuple(
                P + p * S for P, p, S in zip(self.padding, padding, self.stride, strict=True)
            ),
        )

    def input_region(self, row: int, col: int) -> tuple[Pair, Pair]:
        """Input rows and columns [start, stop) read by output (row, col); may reach outside."""
        return tuple(  # type: ignore[return-value]
            (u * S - P, u * S - P + R)
            for u, R, S, P in zip(
                (row, col), self.field_of_view, self.stride, self.padding, strict=True
            )
        )

    def centre_offset(self) -> tuple[float, float]:
        """Centre of output u's field minus u * S, per axis: (R - 1) / 2 - P input pixels."""
        return tuple((R - 1) / 2 - P for R, P in zip(self.field_of_view, self.padding, strict=True))


def layer_stack(layers: list[dict[str, int]]) -> ReceptiveField:
    """The field of a chain of layers, each a dict of ``kernel`` and optional ``stride``,
    ``padding`` and ``rate`` (the arguments of :meth:`ReceptiveField.then`)."""
    field = ReceptiveField()
    for layer in layers:
        field = field.then(**layer)
    return field


def _union(fields: list[ReceptiveField], where: str) -> ReceptiveField:
    """Merge branches that meet element-wise or by channel concatenation."""
    if len({f.stride for f in fields}) > 1:
        raise ValueError(
            f"branches with different strides {[f.stride for f in fields]} meet at {where}"
        )
    padding = tuple(max(f.padding[a] for f in fields) for a in (0, 1))
    end = tuple(max(f.field_of_view[a] - f.padding[a] for f in fields) for a in (0, 1))
    aligned = all(f.aligned for f in fields) and len({f.centre_offset() for f in fields}) == 1
    return ReceptiveField(
        field_of_view=(end[0] + padding[0], end[1] + padding[1]),
        stride=fields[0].stride,
        padding=padding,  # type: ignore[arg-type]
        aligned=aligned,
    )


aten = torch.ops.aten
_POOLS = {aten.max_pool2d_with_indices, aten.max_pool2d, aten.avg_pool2d}
# Operations that act on each position separately (in evaluation mode, batch norm does).
_POSITIONWISE = {
    aten.native_batch_norm,
    aten._native_batch_norm_legit_no_training,
    aten.clone,
    aten.detach,
    aten.alias,
    aten._to_copy,
    aten.copy_,
}
_REDUCTIONS = {aten.sum, aten.mean, aten.amax, aten.amin}


def _arg(args: tuple, index: int, default: Any) -> Any:
    return args[index] if len(args) > index and args[index] is not None else default


def _spatial_dims(dims: Any, ndim: int) -> bool:
    """Whether ``dims`` (an int or a list of them) include the last two axes, H and W."""
    dims = [dims] if isinstance(dims, int) else list(dims)
    return any(d % ndim >= ndim - 2 for d in dims) or not dims


class _FieldTracer(TorchDispatchMode):
    """Runs the network once and attaches a :class:`ReceptiveField` to every tensor that depends
    on the input, following each ATen operation of the forward pass. The last two axes of a
    tensor are its rows and columns."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: WeakTensorKeyDictionary = WeakTensorKeyDictionary()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        out = func(*args, **(kwargs or {}))
        leaves = tree_leaves((args, kwargs))
        traced = [t for t in leaves if isinstance(t, torch.Tensor) and t in self.fields]
        if traced:
            field = self._follow(func, args, traced, out)
            for t in tree_leaves(out):
                if isinstance(t, torch.Tensor) and t.dim() >= 3 and field is not None:
                    self.fields[t] = field
        return out

    def _follow(self, func, args, traced, out) -> ReceptiveField | None:  # noqa: ANN001
        op = func.overloadpacket
        x = args[0]
        field = self.fields.get(x) if isinstance(x, torch.Tensor) else None
        if op is aten.convolution:
            if args[6]:
                raise ValueError("receptive_field does not follow transposed convolutions")
            return field.then(tuple(args[1].shape[2:]), args[3], args[4], args[5])
        if op in _POOLS:
            kernel = args[1]
            rate = _arg(args, 4, 1) if op is not aten.avg_pool2d else 1
            return field.then(kernel, _arg(args, 2, None) or kernel, _arg(args, 3, 0), rate)
        if op is aten.constant_pad_nd:
            pad = [*args[1], 0, 0, 0, 0]  # (left, right, top, bottom, ...)
            return field.then(1, padding=(pad[2], pad[0]))
        if op is aten.slice and _spatial_dims(_arg(args, 1, 0), x.dim()):
            # A crop (start, step) is a 1x1 "layer" with negative padding and a stride.
            dim = _arg(args, 1, 0) % x.dim()
            start, step = _arg(args, 2, 0) % x.shape[dim], _arg(args, 4, 1)
            shifts = [(1, 0), (1, 0)]
            shifts[dim - x.dim() + 2] = (step, -start)
            (stride_h, pad_h), (stride_w, pad_w) = shifts
            return field.then(1, stride=(stride_h, stride_w), padding=(pad_h, pad_w))
        if op is aten.cat or op is aten.stack:
            ndim = args[0][0].dim() + (op is aten.stack)
            if _spatial_dims(_arg(args, 1, 0), ndim):
                raise ValueError(f"receptive_field follows {func} along channels only, not H or W")
            return _union([self.fields[t] for t in args[0] if t in self.fields], str(func))
        if op in _REDUCTIONS and not _spatial_dims(_arg(args, 1, []), x.dim()):
            return field  # e.g. summing stacked branches: positions stay apart
        if op in _POSITIONWISE or torch.Tag.pointwise in func.tags:
            size = next(t.shape[-2:] for t in tree_leaves(out) if isinstance(t, torch.Tensor))
            same = [self.fields[t] for t in traced if t.dim() >= 3 and t.shape[-2:] == size]
            return _union(same, str(func)) if same else None
        if any(isinstance(t, torch.Tensor) and t.dim() >= 3 for t in tree_leaves(out)):
            raise ValueError(
                f"receptive_field cannot follow {func} (it may mix positions: resizing, global "
                "pooling, reshaping); trace the part of the network before it"
            )
        return None  # a flattened tensor no longer has rows and columns


def _input_shape(input_size: tuple[int, ...]) -> tuple[int, int, int, int]:
    size = tuple(input_size)
    if len(size) == 3:
        size = (1, *size)
    if len(size) != 4 or not all(isinstance(v, int) and v > 0 for v in size):
        raise ValueError(
            f"input_size must be (C, H, W) or (N, C, H, W) positive ints, got {input_size!r}"
        )
    return size  # type: ignore[return-value]


def _device(module: nn.Module) -> torch.device:
    return next((p.device for p in module.parameters()), torch.device("cpu"))


@contextmanager
def _evaluation_mode(module: nn.Module) -> Iterator[None]:
    """Run ``module`` in evaluation mode (batch norm then acts position by position), then give
    every submodule back the mode the caller had set."""
    if not isinstance(module, nn.Module):
        raise ValueError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    training = {m: m.training for m in module.modules()}
    module.eval()
    try:
        yield
    finally:
        for m, mode in training.items():
            m.training = mode


def receptive_field(module: nn.Module, input_size: tuple[int, ...]) -> Any:
    """The theoretical receptive field of every output of ``module``.

    Runs ``module`` once (in evaluation mode, without gradients) on zeros of ``input_size``
    ((C, H, W) or (N, C, H, W)) on the module's device; a module on the ``meta`` device is traced
    without computing anything. Convolutions (with dilation), max and average pooling, padding,
    cropping, position-wise operations (activations, batch norm, dropout), additions of branches
    and channel concatenation are followed; anything that mixes positions raises ``ValueError``.

    Returns:
        A :class:`ReceptiveField` for a tensor output, or the same tuple/list/dict structure of
        them for several outputs.
    """
    tracer = _FieldTracer()
    with _evaluation_mode(module):
        x = torch.zeros(_input_shape(input_size), device=_device(module))
        tracer.fields[x] = ReceptiveField()
        with torch.no_grad(), tracer:
            out = module(x)

    def field_of(t: Any) -> ReceptiveField:
        if not isinstance(t, torch.Tensor) or t not in tracer.fields:
            raise ValueError(f"an output of {type(module).__name__} has no spatial receptive field")
        return replace(tracer.fields[t], output_size=tuple(t.shape[-2:]))

    return tree_map(field_of, out)


class _EveryLayer(nn.Module):
    """Runs an ``nn.Sequential`` and returns every layer's output, for tracing them at once."""

    def __init__(self, layers: nn.Sequential) -> None:
        super().__init__()
        self.layers = layers

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for layer in self.layers:
            x = layer(x)
            outputs.append(x)
        return outputs


def layer_by_layer(layers: nn.Sequential, input_size: tuple[int, ...]) -> list[ReceptiveField]:
    """The receptive field after each layer of ``layers`` (one trace, as in ``receptive_field``).

    Entry i is the field of the output of ``layers[i]`` with respect to the input of
    ``layers[0]``; activations repeat the field of the layer before them.
    """
    if not isinstance(layers, nn.Sequential) or len(layers) == 0:
        raise ValueError(f"layers must be a non-empty nn.Sequential, got {type(layers).__name__}")
    return list(receptive_field(_EveryLayer(layers), input_size))


def effective_receptive_field(
    module: nn.Module, input_size: tuple[int, ...], n_samples: int = 8, seed: int = 0
) -> np.ndarray:
    """Luo et al.'s effective receptive field: |d y_centre / d x| averaged over random inputs.

    ``input_size`` is (C, H, W); ``y_centre`` sums the channels of the centre output position
    (Ho // 2, Wo // 2). The gradient magnitude is summed over input channels and averaged over
    ``n_samples`` standard-normal inputs. Returns an (H, W) float64 array (input pixels).
    """
    channels, height, width = _input_shape(input_size)[1:]
    if not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive int, got {n_samples!r}")
    generator = torch.Generator().manual_seed(seed)
    with _evaluation_mode(module):
        x = torch.randn(n_samples, channels, height, width, generator=generator)
        x = x.to(_device(module)).requires_grad_(True)
        y = module(x)
    if not isinstance(y, torch.Tensor) or y.dim() != 4 or not y.requires_grad:
        raise ValueError(
            "effective_receptive_field needs a module returning one (N, C, H, W) tensor that "
            "depends on its input"
        )
    y[:, :, y.shape[2] // 2, y.shape[3] // 2].sum().backward()
    return x.grad.abs().sum(dim=1).mean(dim=0).double().cpu().numpy()


def atrous_footprint(rates: list[int], kernel: int = 3) -> np.ndarray:
    """How many paths join each input pixel to one output of a stack of kernel x kernel atrous
    layers at ``rates`` (square, the side is the field of view); zeros are pixels never read."""
    path_counts = np.ones(1, dtype=np.int64)
    for rate in rates:
        taps = dilate_kernel(np.ones((1, kernel), dtype=np.int64), rate)[0]
        path_counts = np.convolve(path_counts, taps)
    return np.outer(path_counts, path_counts)


def valid_taps(rate: int, size: int, kernel: int = 3) -> np.ndarray:
    """For a kernel x kernel filter at ``rate`` with "same" padding on a size x size feature map,
    the number of its taps that land inside the map, at each output position: (size, size) ints."""
    effective_kernel_size(kernel, rate)  # checks kernel and rate
    if kernel % 2 == 0 or not isinstance(size, int) or size < 1:
        raise ValueError(f"kernel must be odd and size a positive int, got {kernel} and {size!r}")
    offsets = rate * (np.arange(kernel) - (kernel - 1) // 2)
    positions = np.arange(size)[:, None] + offsets[None, :]
    inside = ((positions >= 0) & (positions < size)).sum(axis=1)
    return np.outer(inside, inside)


def hdc_max_gap(rates: list[int] | tuple[int, ...]) -> int:
    """Wang et al.'s "maximum distance between two nonzero values", M_2, for a stack of 3x3
    atrous layers at ``rates`` (r_1 first, the layer nearest the input).

    M_n = r_n and M_i = max(M_{i+1} - 2 r_i, M_{i+1} - 2 (M_{i+1} - r_i), r_i) for i = n-1 .. 2
    (Wang et al., "Understanding Convolution for Semantic Segmentation", WACV 2018).
    Their design goal is M_2 <= 3, the kernel size: the first layer, at rate 1, then fills every
    gap. The recurrence follows the layers in the order given and is meant for increasing rates;
    the set of pixels a stack reads does not depend on the order, and for 3x3 kernels a stack
    reads every pixel exactly when its smallest rate is 1 and M_2 <= 3 with the rates sorted
    (tested against ``atrous_footprint``).
    """
    rates = list(rates)
    if len(rates) < 2 or not all(isinstance(r, int | np.integer) and r >= 1 for r in rates):
        raise ValueError(f"rates must be at least two positive ints, got {rates!r}")
    gap = int(rates[-1])
    for rate in reversed(rates[1:-1]):
        gap = max(gap - 2 * rate, gap - 2 * (gap - rate), int(rate))
    return gap
