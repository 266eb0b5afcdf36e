"""The CPU backbone: output stride 8 by atrous convolution, with the field of view of stride 16;
16 and 32 by striding, with the same weights."""

import pytest
import torch

from deeplab_ref.models import SmallBackbone, count_parameters, deeplab_v2
from deeplab_ref.receptive_field import receptive_field


@pytest.mark.parametrize(
    ("output_stride", "size", "expected"), [(8, 81, 11), (16, 81, 6), (32, 81, 3)]
)
def test_output_stride(output_stride, size, expected):
    net = SmallBackbone(width=4, output_stride=output_stride)
    assert net(torch.zeros(1, 3, size, size)).shape == (1, 8, expected, expected)


def test_dilation_keeps_the_field_of_view_of_the_strided_network():
    dense = receptive_field(SmallBackbone(width=4, output_stride=8), (3, 81, 81))
    strided = receptive_field(SmallBackbone(width=4, output_stride=16), (3, 81, 81))
    # by hand: 3x3 layers add 2 x (input pixels per step) each; steps 1, 2, 2, 4, 4, 8 (then
    # 16 strided, or 8 x rate 2 dilated): 1 + 2 (1 + 2 + 2 + 4 + 4 + 8 + 16) = 75
    assert dense.field_of_view == strided.field_of_view == (75, 75)
    assert (dense.stride, strided.stride) == ((8, 8), (16, 16))
    # At output stride 32 the last layer strides too: 1 + 2 (1 + 2 + 2 + 4 + 4 + 8 + 16) again.
    coarse = receptive_field(SmallBackbone(width=4, output_stride=32), (3, 81, 81))
    assert coarse.field_of_view == (75, 75) and coarse.stride == (32, 32)


def test_parameter_count_by_hand():
    width = 32
    layers = [(3, width), (width, width), (width, 64), (64, 64), (64, 64), (64, 64), (64, 64)]
    # 3x3 convolutions without bias, each followed by batch norm (weight and bias)
    expected = sum(9 * c_in * c_out + 2 * c_out for c_in, c_out in layers)
    assert count_parameters(SmallBackbone(width)) == expected
    head = 4 * (9 * 64 * 5 + 5)  # ASPP-S: four 3x3 convolutions to 5 classes, summed
    assert count_parameters(deeplab_v2("small", "aspp-s", 5, width=width)) == expected + head


def test_bad_arguments():
    with pytest.raises(ValueError, match="width"):
        SmallBackbone(width=0)
    with pytest.raises(ValueError, match="output_stride"):
        SmallBackbone(output_stride=4)
