"""Checks for the exercises of notebook 02 (atrous convolution versus pooling, DeepLab Sec. 3.1).

* ``check_feature_size``: the side of the feature map the library's ResNet (its default, Caffe
  layout) gives for a square image at output stride 8, 16 or 32, against the network's own
  output shape (a tiny one: the sizes depend only on the strides);
* ``check_stride_to_dilation``: a copy of a small ``nn.Sequential`` in which one layer loses its
  stride and every later convolution is dilated by it, against the strided network (equal
  values on the stride grid), a reference copy built the same way (equal values everywhere)
  and ``receptive_field`` (the same field of view at output stride 1).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

from deeplab_ref.exercises import attempt, expect, passed
from deeplab_ref.models import ResNet
from deeplab_ref.receptive_field import receptive_field


def check_feature_size(feature_size: Callable) -> None:
    """feature_size(image_size, output_stride) -> int against the library's ResNet."""
    name = "feature_size"
    sizes = (321, 513, 320, 512, 129, 100, 64, 33)
    for output_stride in (32, 16, 8):
        # The sizes do not depend on the depth or the width: a tiny ResNet answers quickly.
        net = ResNet(output_stride=output_stride, blocks=(1, 1, 1, 1), width=1).eval()
        for size in sizes:
            with torch.no_grad():
                want = net(torch.zeros(1, 3, size, size)).shape[-1]
            got = attempt(feature_size, size, output_stride)
            expect(
                isinstance(got, int) and not isinstance(got, bool),
                f"feature_size({size}, {output_stride}) should return an int, got {got!r}",
            )
            expect(
                got == want,
                f"feature_size({size}, {output_stride}) returned {got}, the library's ResNet "
                f"gives {want} ({want}x{want} features). Follow the size through each stride-2 layer with "
                "floor((i + 2p - k) / s) + 1 (the stem's max-pool rounds up instead).",
            )
    passed(name, f"{len(sizes)} image sizes at output strides 32, 16, 8, against ResNet")


def _networks() -> list[tuple[str, nn.Sequential, int]]:
    """(description, network, index of its strided layer), with fixed random weights."""
    torch.manual_seed(0)
    pooled = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2, stride=2),
        nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
        nn.Conv2d(4, 2, 3, padding=1),
    )  # fmt: skip
    strided_conv = nn.Sequential(
        nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(4, 4, 5, padding=2), nn.ReLU(),
        nn.Conv2d(4, 2, 1),
    )  # fmt: skip
    already_dilated = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
        nn.Conv2d(4, 4, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=2, dilation=2), nn.ReLU(),
        nn.Conv2d(4, 2, 3, padding=1),
    )  # fmt: skip
    return [
        ("conv, ReLU, 2x2 max-pool with stride 2 (index 2), conv, ReLU, conv", pooled, 2),
        ("3x3 conv with stride 2 (index 0), ReLU, 5x5 conv, ReLU, 1x1 conv", strided_conv, 0),
        ("conv, ReLU, 3x3 conv with stride 2 (index 2), ReLU, a conv already at rate 2, ReLU, "
         "conv", already_dilated, 2),
    ]  # fmt: skip


def _reference(net: nn.Sequential, index: int) -> nn.Sequential:
    dense = copy.deepcopy(net)
    stride = dense[index].stride
    stride = stride if isinstance(stride, int) else stride[0]
    dense[index].stride = 1
    for layer in list(dense)[index + 1 :]:
        if isinstance(layer, nn.Conv2d):
            layer.dilation = tuple(stride * d for d in layer.dilation)
            layer.padding = tuple(stride * p for p in layer.padding)
    return dense


def _layout(net: nn.Module) -> str:
    return repr(net)


def check_stride_to_dilation(stride_to_dilation: Callable) -> None:
    """stride_to_dilation(net, index) -> a dense copy of net, checked on three networks."""
    name = "stride_to_dilation"
    x = torch.randn(1, 3, 24, 24, generator=torch.Generator().manual_seed(1))
    for described, net, index in _networks():
        before = (_layout(net), {k: v.clone() for k, v in net.state_dict().items()})
        dense = attempt(stride_to_dilation, net, index)
        expect(
            isinstance(dense, nn.Module),
            f"stride_to_dilation should return an nn.Module, got {type(dense).__name__}",
        )
        expect(
            _layout(net) == before[0]
            and all(torch.equal(v, net.state_dict()[k]) for k, v in before[1].items()),
            f"for {described}: the network passed in was changed; work on a copy "
            "(copy.deepcopy(net)) and return that.",
        )
        with torch.no_grad():
            coarse, fine, want = net(x), dense(x), _reference(net, index)(x)
        case = f"for {described} on a 24x24 input"
        expect(
            fine.shape == want.shape,
            f"{case}: the dense network's output is {tuple(fine.shape[2:])}, expected "
            f"{tuple(want.shape[2:])}. Without its stride the network keeps the full "
            "resolution; a dilated 3x3 convolution keeps the size when its padding grows with "
            "its rate.",
        )
        expect(
            torch.allclose(fine[:, :, ::2, ::2], coarse, atol=1e-5),
            f"{case}: on the stride-2 grid, dense[:, :, ::2, ::2] should equal the strided "
            "network's output and does not. Every convolution after the removed stride must "
            "read pixels 2 apart: multiply its dilation (and its padding) by the stride.",
        )
        expect(
            torch.allclose(fine, want, atol=1e-5),
            f"{case}: equal on the stride grid but not between its points; check the layers "
            "after the removed stride (every Conv2d, its dilation and padding times the stride).",
        )
        fields = [receptive_field(n, (3, 24, 24)) for n in (net, dense)]
        expect(
            fields[0].field_of_view == fields[1].field_of_view and fields[1].stride == (1, 1),
            f"{case}: field of view {fields[1].field_of_view} at output stride "
            f"{fields[1].stride}; expected {fields[0].field_of_view} at output stride (1, 1).",
        )
    passed(name, "3 networks: equal on the stride grid, same field of view, output stride 1")
