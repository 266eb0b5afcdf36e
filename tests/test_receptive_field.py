"""Receptive fields against published numbers, invariants and brute-force perturbation."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deeplab_ref.models import RESNET_BLOCKS, VGG16, ResNet, deeplab_v2
from deeplab_ref.receptive_field import (
    ReceptiveField,
    atrous_footprint,
    effective_receptive_field,
    hdc_max_gap,
    layer_by_layer,
    layer_stack,
    receptive_field,
    valid_taps,
)

WIDTH = 4  # channel counts do not change a receptive field; keep the networks cheap


def vgg16_features(output_stride: int = 32) -> nn.Sequential:
    """VGG-16 conv1_1 .. pool5 (2x2 pooling); beyond ``output_stride`` each pool keeps stride 1
    and every later layer is dilated instead (the atrous trick)."""
    layers, in_channels, stride, rate = [], 3, 1, 1
    for n_convs in (2, 2, 3, 3, 3):
        for _ in range(n_convs):
            layers += [nn.Conv2d(in_channels, WIDTH, 3, padding=rate, dilation=rate), nn.ReLU()]
            in_channels = WIDTH
        if stride < output_stride:
            layers.append(nn.MaxPool2d(2, stride=2))
            stride *= 2
        else:
            layers.append(nn.MaxPool2d(2, stride=1, dilation=rate))
            rate *= 2
    return nn.Sequential(*layers)


class Bottleneck(nn.Module):
    """slim's ResNet-v1 unit: 1x1, 3x3 (stride, rate), 1x1, plus a shortcut (1x1 conv or
    subsampling)."""

    def __init__(self, in_channels: int, stride: int, rate: int) -> None:
        super().__init__()
        self.residual = nn.Sequential(
            nn.Conv2d(in_channels, WIDTH, 1),
            nn.BatchNorm2d(WIDTH),
            nn.ReLU(),
            nn.Conv2d(WIDTH, WIDTH, 3, stride, padding=rate, dilation=rate),
            nn.BatchNorm2d(WIDTH),
            nn.ReLU(),
            nn.Conv2d(WIDTH, 2 * WIDTH, 1),
        )
        if in_channels != 2 * WIDTH:
            self.shortcut = nn.Conv2d(in_channels, 2 * WIDTH, 1, stride)
        else:
            self.shortcut = nn.MaxPool2d(1, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.shortcut(x) + self.residual(x))


def slim_resnet_v1(units: tuple[int, ...], output_stride: int = 32) -> nn.Sequential:
    """slim's resnet_v1 (the stride in the last unit of blocks 1-3) with slim's output_stride."""
    layers = [nn.Conv2d(3, WIDTH, 7, 2, 3), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    in_channels, stride, rate = WIDTH, 4, 1
    for block, n_units in enumerate(units):
        for unit in range(n_units):
            unit_stride = 2 if unit == n_units - 1 and block < len(units) - 1 else 1
            if stride == output_stride:
                layers.append(Bottleneck(in_channels, 1, rate))
                rate *= unit_stride
            else:
                layers.append(Bottleneck(in_channels, unit_stride, 1))
                stride *= unit_stride
            in_channels = 2 * WIDTH
    return nn.Sequential(*layers)


def test_vgg16_pool5_published():
    with torch.device("meta"):
        field = receptive_field(vgg16_features(), (3, 224, 224))
    assert field == ReceptiveField((212, 212), (32, 32), (90, 90), True, (7, 7))


@pytest.mark.parametrize(("units", "expected"), [((3, 4, 6, 3), 483), ((3, 4, 23, 3), 1027)])
def test_slim_resnet_v1_published(units, expected):
    with torch.device("meta"):
        field = receptive_field(slim_resnet_v1(units), (3, 224, 224))
    assert field.field_of_view == (expected, expected)
    assert field.stride == (32, 32)
    assert field.aligned


def test_rates_1_2_4_8_stack():
    convs = [nn.Conv2d(1, 1, 3, padding=r, dilation=r) for r in (1, 2, 4, 8)]
    assert receptive_field(nn.Sequential(*convs), (1, 40, 40)).field_of_view == (31, 31)
    stack = layer_stack([{"kernel": 3, "rate": r, "padding": r} for r in (1, 2, 4, 8)])
    assert stack == ReceptiveField((31, 31), (1, 1), (15, 15))


@pytest.mark.parametrize(
    ("build", "size"),
    [
        (vgg16_features, 224),
        (lambda output_stride: slim_resnet_v1((3, 4, 6, 3), output_stride), 96),
    ],
)
def test_trading_stride_for_dilation_keeps_field_of_view(build, size):
    with torch.device("meta"):
        nets = {os: build(output_stride=os) for os in (32, 16, 8)}
    fields = {os: receptive_field(net, (3, size, size)) for os, net in nets.items()}
    assert {f.field_of_view for f in fields.values()} == {fields[32].field_of_view}
    assert {os: f.stride for os, f in fields.items()} == {os: (os, os) for os in (32, 16, 8)}


class Branchy(nn.Module):
    """Strides, both poolings, dilation, asymmetric paddings, a residual addition, a channel
    concatenation of parallel branches and a crop."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 4, 3, 2, 1), nn.BatchNorm2d(4), nn.LeakyReLU(0.3))
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.atrous = nn.Conv2d(4, 4, 3, padding=2, dilation=2)
        self.point = nn.Conv2d(4, 4, 1)
        self.smooth = nn.Sequential(nn.AvgPool2d(3, 1, 1), nn.Conv2d(4, 4, 4, padding="same"))
        self.head = nn.Sequential(nn.ZeroPad2d((3, 1, 1, 3)), nn.Conv2d(12, 2, 3, dilation=2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.stem(x))
        x = x + F.leaky_relu(self.atrous(x), 0.3)
        x = torch.cat([self.point(x), self.smooth(x), x], dim=1)
        return self.head(x)[:, :, 1:, :-1]


def perturbation_sets(net: nn.Module, height: int, width: int) -> np.ndarray:
    """changed[i, j, u, v]: whether perturbing input pixel (i, j) changes output (u, v)."""
    net.eval()
    base = torch.randn(1, 1, height, width, generator=torch.Generator().manual_seed(0))
    batch = base.repeat(height * width + 1, 1, 1, 1)
    pixels = torch.arange(height * width)
    changed = []
    for sign in (1.0, -1.0):  # a max pool may hide a decrease; one of the two signs gets through
        batch[pixels, 0, pixels // width, pixels % width] = base[0, 0].flatten() + sign * 1e3
        with torch.no_grad():
            out = net(batch)
        # Unaffected outputs differ by float32 rounding at most; affected ones by far more.
        changed.append((out[:-1] - out[-1:]).abs().amax(dim=1) > 1e-4)
    changed = (changed[0] | changed[1]).numpy()
    return changed.reshape(height, width, *changed.shape[1:])


@pytest.mark.filterwarnings("ignore:Using padding='same'")
def test_brute_force_perturbation_matches_the_field():
    torch.manual_seed(0)
    net, (height, width) = Branchy(), (70, 66)
    field = receptive_field(net, (1, height, width))
    changed = perturbation_sets(net, height, width)
    assert field.output_size == changed.shape[2:]
    assert not field.aligned  # the 'same' padding of an even kernel is one pixel off-centre
    interior = 0
    for u in range(changed.shape[2]):
        for v in range(changed.shape[3]):
            (top, bottom), (left, right) = field.input_region(u, v)
            rows, cols = np.nonzero(changed[:, :, u, v])
            # Sound: nothing outside the predicted region changes the output ...
            assert rows.min() >= top and rows.max() < bottom
            assert cols.min() >= left and cols.max() < right
            # ... and tight: where the region fits in the image, its border pixels matter.
            if top >= 0 and left >= 0 and bottom <= height and right <= width:
                interior += 1
                assert (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1) == (
                    top, bottom, left, right,
                )  # fmt: skip
    assert interior >= 4


@pytest.mark.parametrize("rates", [[2, 2], [2, 4, 8], [1, 2, 5]])
def test_atrous_footprint_is_the_set_of_pixels_read(rates):
    footprint = atrous_footprint(rates)
    span = layer_stack([{"kernel": 3, "rate": r} for r in rates]).field_of_view[0]
    assert footprint.shape == (span, span)
    # Oracle: with all-ones weights and no bias, the gradient of the single output counts paths.
    net = nn.Sequential(*[nn.Conv2d(1, 1, 3, dilation=r, bias=False) for r in rates])
    for conv in net:
        nn.init.ones_(conv.weight)
    x = torch.zeros(1, 1, span, span, requires_grad=True)
    net(x).sum().backward()
    np.testing.assert_array_equal(footprint, x.grad[0, 0].numpy())
    changed = perturbation_sets(net, span, span)[:, :, 0, 0]
    np.testing.assert_array_equal(footprint > 0, changed)


def test_gridding_counts():
    assert (atrous_footprint([2, 2]) > 0).sum() == 25  # 9x9 span, every other pixel
    assert (atrous_footprint([1, 2, 5]) > 0).all()


def test_effective_receptive_field_of_one_atrous_filter():
    conv = nn.Conv2d(2, 1, 3, padding=2, dilation=2, bias=False)
    erf = effective_receptive_field(conv, (2, 15, 15), n_samples=2)
    expected = np.zeros((15, 15))
    expected[5:10:2, 5:10:2] = conv.weight.detach().abs().sum(dim=(0, 1)).numpy()
    np.testing.assert_allclose(erf, expected, rtol=1e-6)


def test_effective_field_lies_inside_the_theoretical_one():
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, 2, 1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=3, dilation=3),
    )
    net.train()
    erf = effective_receptive_field(net, (1, 33, 33))
    assert net.training and net[1].training  # the caller's mode is restored
    (top, bottom), (left, right) = receptive_field(net, (1, 33, 33)).input_region(8, 8)
    inside = np.zeros_like(erf, dtype=bool)
    inside[top:bottom, left:right] = True
    assert erf[~inside].max() == 0 and erf[inside].max() > 0


@pytest.mark.parametrize(("rate", "size"), [(1, 41), (6, 41), (24, 41), (40, 41), (30, 65)])
def test_valid_taps_against_convolving_ones(rate, size):
    ones = torch.ones(1, 1, size, size, dtype=torch.float64)
    counts = F.conv2d(
        ones, torch.ones(1, 1, 3, 3, dtype=torch.float64), padding=rate, dilation=rate
    )
    np.testing.assert_array_equal(valid_taps(rate, size), counts[0, 0].numpy())


def test_valid_taps_degenerate_to_the_centre():
    assert (valid_taps(41, 41) == 1).all()
    assert valid_taps(1, 41).mean() == pytest.approx(9 * (1 - 2 / 41 / 3) ** 2)


def test_several_outputs_and_meta_device():
    class TwoHeads(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Conv2d(3, 2, 3), nn.Conv2d(3, 2, 5, stride=2)

        def forward(self, x):
            return {"a": self.a(x), "b": (self.b(x),)}

    with torch.device("meta"):
        net = TwoHeads()
    fields = receptive_field(net, (1, 3, 20, 20))
    assert fields["a"] == ReceptiveField((3, 3), (1, 1), (0, 0), True, (18, 18))
    assert fields["b"][0] == ReceptiveField((5, 5), (2, 2), (0, 0), True, (8, 8))


class Upsample(nn.Module):
    def forward(self, x):
        return F.interpolate(x, scale_factor=2.0)


class CatHeight(nn.Module):
    def forward(self, x):
        return torch.cat([x, x], dim=2)


class StackWidth(nn.Module):
    def forward(self, x):
        return torch.stack([x, x], dim=-1).sum(dim=-1)


class GlobalMean(nn.Module):
    def forward(self, x):
        return x.mean(dim=(2, 3), keepdim=True)


@pytest.mark.parametrize(
    ("module", "input_size", "message"),
    [
        (Upsample(), (1, 8, 8), "cannot follow"),
        (nn.AdaptiveAvgPool2d(1), (1, 8, 8), "cannot follow"),
        (CatHeight(), (1, 8, 8), "along channels"),
        (StackWidth(), (1, 8, 8), "along channels"),
        (GlobalMean(), (1, 8, 8), "cannot follow"),
        (nn.ConvTranspose2d(1, 1, 3), (1, 8, 8), "transposed"),
        (nn.Flatten(), (1, 8, 8), "no spatial receptive field"),
        (nn.Conv2d(1, 1, 3), (8, 8), "input_size"),
        (lambda x: x, (1, 8, 8), "module must be"),
    ],
)
def test_bad_input_raises_clear_errors(module, input_size, message):
    with pytest.raises(ValueError, match=message):
        receptive_field(module, input_size)


@pytest.mark.parametrize(
    ("module", "message"),
    [(nn.Flatten(), "one \\(N, C, H, W\\) tensor"), (lambda x: x, "module must be")],
)
def test_effective_field_bad_input(module, message):
    with pytest.raises(ValueError, match=message):
        effective_receptive_field(module, (1, 8, 8))


def test_bad_layer_arguments():
    with pytest.raises(ValueError, match="stride"):
        ReceptiveField().then(3, stride=0)
    with pytest.raises(ValueError, match="kernel must be odd"):
        valid_taps(2, 10, kernel=4)


def test_strided_crop_hand_worked():
    class Subsample(nn.Module):
        def forward(self, x):
            return F.conv2d(x, torch.ones(1, 1, 3, 3), padding=1)[:, :, ::2, 1::2]

    # Output (u, v) is the convolution's (2u, 2v + 1): rows 2u - 1 .. 2u + 1, columns 2v .. 2v + 2.
    field = receptive_field(Subsample(), (1, 10, 10))
    assert field == ReceptiveField((3, 3), (2, 2), (1, 0), True, (5, 5))
    assert field.input_region(2, 3) == ((3, 6), (6, 9))


# The project's DeepLab-v2 modules, traced on the meta device (shapes only, nothing computed).


@pytest.mark.parametrize("output_stride", [8, 16, 32])
def test_deeplab_resnet101_keeps_1027_at_every_output_stride(output_stride):
    with torch.device("meta"):
        backbone = ResNet(RESNET_BLOCKS["resnet101"], output_stride=output_stride)
        model = deeplab_v2("resnet101", "aspp-l", output_stride=8)
    field = receptive_field(backbone, (3, 321, 321))
    assert field.field_of_view == (1027, 1027) and field.stride == (output_stride,) * 2
    # ASPP-L's branches are aligned; the rate-24 branch adds 8 * 24 * 2 pixels to the backbone's.
    assert receptive_field(model, (3, 321, 321)) == ReceptiveField(
        (1411, 1411), (8, 8), (705, 705), True, (41, 41)
    )


def test_torchvision_style_resnet101_hand_worked():
    # With the stride on the 3x3 of each stage's first block: stem 11 pixels, layer1 3 x 8,
    # layer2 8 + 3 x 16, layer3 16 + 22 x 32, layer4 32 + 2 x 64: 971.
    with torch.device("meta"):
        backbone = ResNet(RESNET_BLOCKS["resnet101"], output_stride=32, stride_in_1x1=False)
    assert receptive_field(backbone, (3, 224, 224)).field_of_view == (971, 971)


def deeplab_vgg16_layers(fc6_kernel: int, fc6_rate: int) -> list[dict[str, int]]:
    """DeepLab-LargeFOV's VGG-16 as a layer list: 3x3 pools, pool4/pool5 stride 1, conv5 rate 2."""
    conv = {"kernel": 3, "padding": 1}
    layers = [conv] * 2 + [{"kernel": 3, "stride": 2, "padding": 1}]
    layers += [conv] * 2 + [{"kernel": 3, "stride": 2, "padding": 1}]
    layers += [conv] * 3 + [{"kernel": 3, "stride": 2, "padding": 1}]
    layers += [conv] * 3 + [{"kernel": 3, "padding": 1}]
    layers += [{"kernel": 3, "padding": 2, "rate": 2}] * 3 + [{"kernel": 3, "padding": 1}]
    fc6_padding = fc6_rate * (fc6_kernel - 1) // 2
    return layers + [{"kernel": fc6_kernel, "rate": fc6_rate, "padding": fc6_padding}]


@pytest.mark.parametrize(("kernel", "rate"), [(7, 4), (4, 4), (4, 8), (3, 12)])
def test_deeplab_vgg16_fc6_variants_against_layer_lists(kernel, rate):
    with torch.device("meta"):
        model = deeplab_v2("vgg16", atrous_rates=(rate,), kernel_size=kernel)
    traced = receptive_field(model, (3, 321, 321))
    described = layer_stack(deeplab_vgg16_layers(kernel, rate))
    assert traced.field_of_view == described.field_of_view
    assert traced.stride == described.stride == (8, 8)
    assert traced.padding == described.padding


def test_deeplab_vgg16_pool5_is_not_dilated():
    # Trading pool4's stride for rate 2 keeps conv5's reach, but pool5 stays an undilated 3x3
    # at output stride 8: it covers 16 pixels fewer than at output strides 16 and 32.
    with torch.device("meta"):
        fields = [receptive_field(VGG16(output_stride=os), (3, 321, 321)) for os in (8, 16, 32)]
    assert [f.field_of_view[0] for f in fields] == [227, 243, 243]


def test_layer_by_layer_against_prefix_traces():
    with torch.device("meta"):
        model = deeplab_v2("vgg16", "largefov")
    layers = nn.Sequential(*model.backbone.features, model.head.branches[0].fc6)
    fields = layer_by_layer(layers, (3, 321, 321))
    assert len(fields) == len(layers)
    for end in (1, 5, 17, 24, len(layers)):
        with torch.device("meta"):
            prefix = receptive_field(layers[:end], (3, 321, 321))
        assert fields[end - 1].field_of_view == prefix.field_of_view
        assert fields[end - 1].stride == prefix.stride
        assert fields[end - 1].padding == prefix.padding
    assert fields[-1].field_of_view == (419, 419)  # DeepLab-LargeFOV up to fc6
    with pytest.raises(ValueError, match="nn.Sequential"):
        layer_by_layer(nn.Sequential(), (3, 9, 9))


def test_hdc_max_gap_examples():
    # Wang et al.'s examples: [1, 2, 5] works (M_2 = 2 <= 3), [1, 2, 9] does not (M_2 = 5).
    assert hdc_max_gap([1, 2, 5]) == 2
    assert hdc_max_gap([1, 2, 9]) == 5
    assert hdc_max_gap([1, 2, 4, 8]) == 2
    assert hdc_max_gap([3, 4]) == 4
    with pytest.raises(ValueError, match="at least two"):
        hdc_max_gap([1])


def test_hdc_condition_is_exactly_the_footprint_without_holes():
    # Every sorted list of two to four rates up to 9: the stack of 3x3 layers reads every pixel
    # of its field exactly when its smallest rate is 1 and M_2 <= 3.
    import itertools

    for n in (2, 3, 4):
        for rates in itertools.combinations_with_replacement(range(1, 10), n):
            reads_all = bool((atrous_footprint(list(rates)) > 0).all())
            assert reads_all == (rates[0] == 1 and hdc_max_gap(rates) <= 3), rates
    # The order of the layers changes the recurrence, not the pixels read.
    assert (atrous_footprint([1, 3, 1]) > 0).all() and hdc_max_gap([1, 3, 1]) == 5
