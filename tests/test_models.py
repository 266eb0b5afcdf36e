"""DeepLab-v2 networks: parameter counts against the paper, output strides, ASPP, MSC, frozen BN.

Oracles: the paper's parameter counts (Table 1, to 0.1M), counts computed by hand from the
layer shapes, output sizes chained layer by layer with ``conv_output_size``, ASPP
recomputed branch by branch with ``F.conv2d``, MSC on a hand-worked example, and
``nn.BatchNorm2d`` in eval mode for the frozen batch norm.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deeplab_ref.atrous import conv_output_size
from deeplab_ref.models import (
    ASPP,
    FrozenBatchNorm2d,
    ResNet,
    count_parameters,
    deeplab_v2,
    multi_scale_scores,
    multiply_adds,
    param_groups,
    scaled_size,
    upsample_scores,
)

from small_setups import meta_model

# A CPU-sized network with all of DeepLab's machinery.
SMALL = {"blocks": (1, 1, 1, 1), "width": 4}


# -- parameter counts ---------------------------------------------------------------------------


# VGG-16's thirteen 3x3 convolutions (in, out channels), before DeepLab's fc6-fc8 head.
VGG16_CONVOLUTIONS = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256)] + [(256, 256)] * 2
VGG16_CONVOLUTIONS += [(256, 512)] + [(512, 512)] * 5


def vgg16_parameters_by_hand(kernel_size, channels, branches=1, classes=21):
    """Weights and biases: the backbone's convolutions, then per head branch fc6 (kernel_size^2
    from 512 channels), fc7 (1x1) and fc8 (1x1 to the classes)."""
    backbone = sum(9 * c_in * c_out + c_out for c_in, c_out in VGG16_CONVOLUTIONS)
    fc6 = kernel_size**2 * 512 * channels + channels
    fc7 = channels * channels + channels
    fc8 = channels * classes + classes
    return backbone + branches * (fc6 + fc7 + fc8)


@pytest.mark.parametrize(
    ("kernel_size", "rate", "channels", "paper_millions"),
    [(7, 4, 4096, 134.3), (4, 4, 4096, 65.1), (4, 8, 4096, 65.1), (3, 12, 1024, 20.5)],
)
def test_vgg16_fc6_variants_match_the_papers_table(kernel_size, rate, channels, paper_millions):
    model = meta_model(
        "vgg16", kernel_size=kernel_size, atrous_rates=(rate,), hidden_channels=channels
    )
    count = count_parameters(model)
    assert count == vgg16_parameters_by_hand(kernel_size, channels)
    assert round(count / 1e6, 1) == paper_millions  # Table 1 rounds to 0.1M


def test_vgg16_heads_by_hand():
    largefov = vgg16_parameters_by_hand(3, 1024)
    assert count_parameters(meta_model("vgg16", "largefov")) == largefov
    four_branches = vgg16_parameters_by_hand(3, 1024, branches=4)  # ASPP: four fc6-fc8 branches
    assert count_parameters(meta_model("vgg16", "aspp-l")) == four_branches
    assert count_parameters(meta_model("vgg16", "aspp-s")) == four_branches


def resnet_parameters_by_hand(blocks, width=64, classes=21, rates=4):
    """Conv weights plus batch-norm gamma and beta, stage by stage, plus the ASPP convs."""
    total = 3 * width * 7 * 7 + 2 * width
    in_channels = width
    for index, n_blocks in enumerate(blocks):
        mid = width * 2**index
        out = 4 * mid
        for block in range(n_blocks):
            total += in_channels * mid + mid * mid * 9 + mid * out + 2 * (mid + mid + out)
            if block == 0:
                total += in_channels * out + 2 * out
            in_channels = out
    return total, total + rates * (in_channels * 9 * classes + classes)


def test_resnet101_counts_by_hand_and_reference():
    backbone, with_aspp = resnet_parameters_by_hand((3, 4, 23, 3))
    assert (backbone, with_aspp) == (42_500_160, 44_048_532)
    model = meta_model("resnet101", "aspp-l")
    assert count_parameters(model.backbone) == backbone
    assert count_parameters(model) == with_aspp
    # Frozen batch norm: its gamma and beta count but do not train.
    assert count_parameters(model, trainable_only=True) == with_aspp - 2 * sum(
        m.num_features for m in model.modules() if isinstance(m, FrozenBatchNorm2d)
    )


def test_small_resnet_counts_by_hand():
    _, expected = resnet_parameters_by_hand((1, 2, 1, 1), width=8, classes=5, rates=4)
    model = deeplab_v2("resnet101", num_classes=5, blocks=(1, 2, 1, 1), width=8)
    assert model.backbone.out_channels == 8 * 8 * 4
    assert count_parameters(model) == expected


def test_multiply_adds_of_one_convolution_by_hand():
    conv = nn.Conv2d(3, 5, 3, stride=2, padding=1)
    out = conv_output_size(17, 3, stride=2, padding=1)
    assert multiply_adds(conv, (17, 17)) == 5 * out * out * 3 * 9


def test_msc_costs_the_sum_of_its_scales():
    model = meta_model("vgg16", "largefov")
    single = multiply_adds(model, (321, 321))
    msc = meta_model("vgg16", "largefov", msc=True)
    per_scale = [multiply_adds(model, (scaled_size(321, s),) * 2) for s in (1.0, 0.75, 0.5)]
    assert multiply_adds(msc, (321, 321)) == sum(per_scale) > 1.7 * single


# -- output stride ------------------------------------------------------------------------------


def pool_ceil(size, kernel=3, stride=2, padding=1):
    """Caffe/PyTorch ceil-mode pooling size: the last window must start inside the input."""
    out = math.ceil((size + 2 * padding - kernel) / stride) + 1
    return out - 1 if (out - 1) * stride >= size + padding else out


def resnet_score_size(size, output_stride, ceil_mode=True):
    size = conv_output_size(size, 7, stride=2, padding=3)
    size = pool_ceil(size) if ceil_mode else conv_output_size(size, 3, stride=2, padding=1)
    for _ in range({8: 1, 16: 2, 32: 3}[output_stride]):
        size = conv_output_size(size, 1, stride=2)  # the strided stages' 1x1 shortcut
    return size


def vgg_score_size(size, output_stride):
    for _ in range({8: 3, 16: 4, 32: 5}[output_stride]):
        size = pool_ceil(size)
    return size


@pytest.mark.parametrize("size", [321, 513, 320])
@pytest.mark.parametrize("output_stride", [8, 16, 32])
def test_output_sizes(size, output_stride):
    image = torch.zeros(1, 3, size, size + 8)
    for backbone, options, expected in [
        ("resnet101", SMALL, resnet_score_size),
        ("vgg16", {"width": 2, "hidden_channels": 4}, vgg_score_size),
    ]:
        model = deeplab_v2(backbone, num_classes=3, output_stride=output_stride, **options)
        with torch.no_grad():
            scores = model.eval()(image)
        assert scores.shape == (
            1,
            3,
            expected(size, output_stride),
            expected(size + 8, output_stride),
        )
    if output_stride == 8:  # the paper: 321 -> 41, 513 -> 65 (ceil(H / 8) for H = 8k + 1)
        assert scores.shape[-2] == math.ceil(size / 8) + (size % 8 == 0)


def test_torchvision_pooling_gives_its_own_sizes():
    with torch.device("meta"):
        model = deeplab_v2("resnet101", output_stride=32, stride_in_1x1=False, pool_ceil_mode=False)
        scores = model(torch.zeros(1, 3, 224, 223))
    assert scores.shape[-2:] == (
        resnet_score_size(224, 32, ceil_mode=False),
        resnet_score_size(223, 32, ceil_mode=False),
    )


def test_dilated_stages_keep_their_rate():
    resnet = ResNet(**SMALL, output_stride=8)
    rates = [[b.conv2.dilation[0] for b in getattr(resnet, f"layer{i}")] for i in range(1, 5)]
    assert rates == [[1], [1], [2], [4]]
    strides = [getattr(resnet, f"layer{i}")[0].downsample[0].stride[0] for i in range(1, 5)]
    assert strides == [1, 2, 1, 1]


# -- ASPP ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("hidden_channels", [None, 6])
def test_aspp_is_the_sum_of_its_branches_computed_separately(hidden_channels):
    torch.manual_seed(0)
    rates = (2, 4, 8, 12)
    head = ASPP(5, 3, rates, hidden_channels=hidden_channels).eval()
    features = torch.randn(2, 5, 13, 11)
    expected = torch.zeros(2, 3, 13, 11)
    for rate, branch in zip(rates, head.branches, strict=True):
        x = features
        if hidden_channels is not None:
            x = F.relu(F.conv2d(x, branch.fc6.weight, branch.fc6.bias, padding=rate, dilation=rate))
            x = F.relu(F.conv2d(x, branch.fc7.weight, branch.fc7.bias))
            expected += F.conv2d(x, branch.classifier.weight, branch.classifier.bias)
        else:
            w, b = branch.classifier.weight, branch.classifier.bias
            expected += F.conv2d(x, w, b, padding=rate, dilation=rate)
    with torch.no_grad():
        torch.testing.assert_close(head(features), expected)


def test_heads_have_the_papers_rates():
    assert [b.atrous_rate for b in meta_model("vgg16", "aspp-s").head.branches] == [2, 4, 8, 12]
    assert [b.atrous_rate for b in meta_model("vgg16", "aspp-l").head.branches] == [6, 12, 18, 24]
    assert [b.atrous_rate for b in meta_model("vgg16", "largefov").head.branches] == [12]


# -- MSC and upsampling -------------------------------------------------------------------------


class WidthTimesInput(nn.Module):
    """A stand-in network whose 'scores' are the image times its width: each scale differs."""

    def forward(self, images):
        return images[:, :1] * images.shape[-1]


def test_msc_max_fusion_by_hand():
    ramp = torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0]).expand(1, 3, 5, 5)
    # Sizes 5, 4 and 3 (floor(4 s) + 1); a ramp resizes exactly with aligned corners, so scale
    # s gives width * ramp: 5 ramp, 4 ramp, 3 ramp. The max takes 5 ramp where the ramp is
    # positive and 3 ramp where it is negative.
    expected = torch.tensor([-6.0, -3.0, 0.0, 5.0, 10.0]).expand(1, 1, 5, 5)
    outputs = multi_scale_scores(WidthTimesInput(), ramp)
    torch.testing.assert_close(outputs[0], expected)
    torch.testing.assert_close(outputs[1], 5 * ramp[:, :1])
    torch.testing.assert_close(outputs[2], 4 * ramp[:, :1])  # 0.75: upsampled to 5 x 5
    torch.testing.assert_close(outputs[3], torch.tensor([-6.0, 0.0, 6.0]).expand(1, 1, 3, 3))


def test_msc_model_supervised_scores_and_forward():
    torch.manual_seed(0)
    model = deeplab_v2("resnet101", num_classes=4, msc=True, **SMALL)
    image = torch.randn(1, 3, 65, 65)
    with torch.no_grad():
        fused, full, three_quarters, half = model.train().supervised_scores(image)
        assert [t.shape[-1] for t in (fused, full, three_quarters, half)] == [9, 9, 9, 5]
        # One return type: the fused scores, in training and in evaluation mode.
        torch.testing.assert_close(model(image), fused)
        evaluated = model.eval()(image)
        model.msc_scales = None
        single = model(image)
    torch.testing.assert_close(evaluated, fused)
    torch.testing.assert_close(full, single)
    stacked = torch.stack([full, three_quarters, upsample_scores(half, (9, 9))])
    torch.testing.assert_close(fused, stacked.amax(0))


def test_upsample_scores_puts_score_i_over_pixel_8i():
    scores = torch.arange(41.0).expand(1, 2, 41, 41)
    upsampled = upsample_scores(scores, (321, 321))
    torch.testing.assert_close(upsampled[0, 0, 0], torch.arange(321.0) / 8)


def test_scaled_size():
    assert [scaled_size(321, s) for s in (1.0, 0.75, 0.5)] == [321, 241, 161]


# -- frozen batch norm and the optimiser's groups ------------------------------------------------


def test_frozen_batch_norm_equals_eval_batch_norm():
    torch.manual_seed(0)
    reference = nn.BatchNorm2d(6)
    with torch.no_grad():
        for tensor in (reference.weight, reference.bias, reference.running_mean):
            tensor.normal_()
        reference.running_var.uniform_(0.5, 2.0)
    frozen = FrozenBatchNorm2d(6)
    frozen.load_state_dict(reference.state_dict())  # num_batches_tracked accepted
    assert set(frozen.state_dict()) == set(reference.state_dict()) - {"num_batches_tracked"}
    x = torch.randn(3, 6, 5, 4)
    torch.testing.assert_close(frozen.train()(x), reference.eval()(x))


def test_a_training_step_leaves_frozen_batch_norm_unchanged():
    torch.manual_seed(0)
    model = deeplab_v2("resnet101", num_classes=3, msc=True, **SMALL).train()
    frozen = {
        k: v.clone() for k, v in model.state_dict().items() if ".bn" in k or "downsample.1" in k
    }
    conv = model.backbone.layer1[0].conv2.weight.detach().clone()
    optimizer = torch.optim.SGD(param_groups(model, 0.1, 5e-4), lr=0.1, momentum=0.9)
    labels = torch.randint(0, 3, (2, 9, 9))
    for _ in range(2):
        outputs = model.supervised_scores(torch.randn(2, 3, 65, 65))
        loss = sum(F.cross_entropy(upsample_scores(o, (9, 9)), labels) for o in outputs)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert len(frozen) > 10
    for key, value in frozen.items():
        assert torch.equal(model.state_dict()[key], value), key
    assert not torch.equal(model.backbone.layer1[0].conv2.weight, conv)


def test_param_groups_follow_the_papers_multipliers():
    model = deeplab_v2("vgg16", "aspp-s", num_classes=3, width=2)
    groups = param_groups(model, base_lr=1e-3, weight_decay=5e-4)
    by_mult = {g["lr_mult"]: g for g in groups}
    assert sorted(by_mult) == [1, 2, 10, 20]
    classifier = [b.classifier for b in model.head.branches]
    assert {id(p) for p in by_mult[10]["params"]} == {id(c.weight) for c in classifier}
    assert {id(p) for p in by_mult[20]["params"]} == {id(c.bias) for c in classifier}
    assert by_mult[2]["weight_decay"] == by_mult[20]["weight_decay"] == 0.0
    assert by_mult[1]["weight_decay"] == by_mult[10]["weight_decay"] == 5e-4
    assert all(math.isclose(g["lr"], 1e-3 * g["lr_mult"]) for g in groups)
    grouped = [id(p) for g in groups for p in g["params"]]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters())  # each exactly once
    torch.optim.SGD(groups, lr=1e-3, momentum=0.9)


def test_param_groups_leave_frozen_batch_norm_out():
    model = deeplab_v2("resnet101", **SMALL)
    groups = param_groups(model, base_lr=2.5e-4)
    assert sorted(g["lr_mult"] for g in groups) == [1, 10, 20]
    grouped = {id(p) for g in groups for p in g["params"]}
    assert grouped == {id(p) for p in model.parameters() if p.requires_grad}
    assert not any(
        id(m.weight) in grouped for m in model.modules() if isinstance(m, FrozenBatchNorm2d)
    )


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"backbone": "resnet18"}, "backbone"),
        ({"head": "aspp-xl"}, "head"),
        ({"output_stride": 4}, "output_stride"),
        ({"blocks": (1, 1, 1)}, "blocks"),
        ({"width": 0}, "width"),
        ({"num_classes": 0}, "num_classes"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        meta_model(**kwargs)


def test_bad_images_raise_value_error():
    model = deeplab_v2("resnet101", **SMALL)
    with pytest.raises(ValueError, match="images"):
        model(torch.zeros(3, 33, 33))
    with pytest.raises(ValueError, match="images"):
        model(torch.zeros(1, 3, 33, 33, dtype=torch.uint8))
    with pytest.raises(ValueError, match="scales"):
        multi_scale_scores(model, torch.zeros(1, 3, 33, 33), scales=(0.5, 1.0))
    with pytest.raises(ValueError, match="size"):
        upsample_scores(torch.zeros(1, 2, 5, 5), (0, 5))


def test_a_built_backbone_gets_the_same_machinery():
    backbone = ResNet(blocks=(1, 1, 1, 1), width=4, output_stride=16)
    model = deeplab_v2(backbone, "aspp-s", num_classes=3, msc=True)
    assert model.backbone is backbone and model.head.branches[0].hidden_channels is None
    assert [b.atrous_rate for b in model.head.branches] == [2, 4, 8, 12]
    with torch.no_grad():
        assert model.eval()(torch.zeros(1, 3, 65, 65)).shape == (1, 3, 5, 5)
    with pytest.raises(ValueError, match="backbone options"):
        deeplab_v2(backbone, width=8)
    with pytest.raises(ValueError, match="out_channels"):
        deeplab_v2(nn.Identity())
