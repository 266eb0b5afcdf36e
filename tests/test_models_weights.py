"""Loading torchvision's ImageNet checkpoints, and ResNet against independent implementations.

Oracles: a committed list of torchvision's state_dict keys and shapes (``fixtures/``, written
from torchvision's architecture definitions), the paper's decimation of fc6/fc7 redone here by
slicing, a functional ResNet written from scratch with ``torch.nn.functional``, and (when it is
installed) ``torchvision.models.resnet101`` itself.
"""

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from deeplab_ref.models import (
    CAFFE_LAYOUT,
    TORCHVISION_LAYOUT,
    ResNet,
    decimate_fc6,
    deeplab_v2,
    default_weights_path,
    load_imagenet_weights,
    load_torchvision_state_dict,
)
from deeplab_ref.presets import build_model, get_preset

from small_setups import meta_model

FIXTURE = Path(__file__).parent / "fixtures" / "torchvision_state_dict_shapes.json"
TORCHVISION_SHAPES = json.loads(FIXTURE.read_text())


def fake_torchvision_state(architecture, seed=0):
    """Random tensors with torchvision's exact keys and shapes."""
    generator = torch.Generator().manual_seed(seed)
    return {
        key: torch.randn(shape, generator=generator) if shape else torch.tensor(0)
        for key, shape in TORCHVISION_SHAPES[architecture].items()
    }


@pytest.fixture(scope="module")
def vgg16_state():
    return fake_torchvision_state("vgg16")  # 138M numbers: made once


@pytest.mark.parametrize("architecture", ["resnet50", "resnet101"])
def test_resnet_loads_every_torchvision_key(architecture):
    state = fake_torchvision_state(architecture)
    model = deeplab_v2(architecture, "aspp-l", num_classes=21, **TORCHVISION_LAYOUT)
    left = load_torchvision_state_dict(model, state)
    assert left == sorted(k for k in model.state_dict() if k.startswith("head."))
    ours = model.state_dict()
    for key, value in state.items():
        if not key.startswith("fc.") and not key.endswith("num_batches_tracked"):
            assert torch.equal(ours[f"backbone.{key}"], value), key
    assert len(ours) - len(left) == sum(
        not k.startswith("fc.") and not k.endswith("num_batches_tracked") for k in state
    )


@pytest.mark.parametrize("head", ["largefov", "aspp-l"])
def test_vgg16_decimates_fc6_and_fc7(head, vgg16_state):
    state = vgg16_state
    model = deeplab_v2("vgg16", head)
    left = load_torchvision_state_dict(model, state)
    assert left == sorted(k for k in model.state_dict() if ".classifier." in k)
    ours = model.state_dict()
    for key in (k for k in state if k.startswith("features.")):
        assert torch.equal(ours[f"backbone.{key}"], state[key]), key
    fc6 = state["classifier.0.weight"].view(4096, 512, 7, 7)[::4, :, ::3, ::3]
    fc7 = state["classifier.3.weight"][::4, ::4]
    for index in range(len(model.head.branches)):
        prefix = f"head.branches.{index}."
        assert torch.equal(ours[prefix + "fc6.weight"], fc6)
        assert torch.equal(ours[prefix + "fc6.bias"], state["classifier.0.bias"][::4])
        assert torch.equal(ours[prefix + "fc7.weight"][:, :, 0, 0], fc7)
        assert torch.equal(ours[prefix + "fc7.bias"], state["classifier.3.bias"][::4])


def test_vgg16_4x4_fc6_takes_every_other_tap(vgg16_state):
    weight = vgg16_state["classifier.0.weight"]
    fc6 = weight.view(4096, 512, 7, 7)[:, :, ::2, ::2]
    assert torch.equal(decimate_fc6(weight, 4096, kernel_size=4), fc6)
    with pytest.raises(ValueError, match="kernel_size=5"):
        decimate_fc6(weight, 1024, kernel_size=5)


def test_a_file_round_trip_with_and_without_step_counters(tmp_path):
    state = fake_torchvision_state("resnet50")
    path = tmp_path / "resnet50-0676ba61.pth"
    torch.save({k: v for k, v in state.items() if "num_batches" not in k}, path)
    model = deeplab_v2("resnet50", num_classes=3, **TORCHVISION_LAYOUT)
    load_imagenet_weights(model, path)
    assert torch.equal(model.backbone.layer3[5].bn2.running_var, state["layer3.5.bn2.running_var"])


def test_missing_file_says_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    model = meta_model("resnet101")
    expected = tmp_path / "hub" / "checkpoints" / "resnet101-63fe2227.pth"
    assert default_weights_path("resnet101") == expected
    with pytest.raises(FileNotFoundError, match="resnet101-63fe2227.pth"):
        load_imagenet_weights(model)
    with pytest.raises(FileNotFoundError, match="vgg16-397923af.pth"):
        load_imagenet_weights(meta_model("vgg16"), tmp_path / "nowhere.pth")


def test_checkpoint_of_another_model_names_the_file_and_keys(tmp_path):
    path = tmp_path / "resnet50-0676ba61.pth"
    torch.save(fake_torchvision_state("resnet50"), path)
    with pytest.raises(ValueError, match=r"resnet50-0676ba61\.pth.*\n.*missing") as error:
        load_imagenet_weights(meta_model("resnet101"), path)
    assert "missing (255)" in str(error.value)  # 17 more res4 blocks x 15 tensors
    with pytest.raises(ValueError, match="unexpected.*conv1.weight"):
        load_torchvision_state_dict(meta_model("vgg16"), fake_torchvision_state("resnet50"))
    with pytest.raises(ValueError, match="missing.*backbone.conv1.weight"):
        load_torchvision_state_dict(meta_model("resnet50"), {"features.0.weight": torch.zeros(1)})


def test_unreadable_or_odd_files_raise_value_error(tmp_path):
    model = meta_model("resnet50")
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="corrupt.pth"):
        load_imagenet_weights(model, corrupt)
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"epoch": 3, "state_dict": {}}, wrapped)
    with pytest.raises(ValueError, match="wrapped.pth"):
        load_imagenet_weights(model, wrapped)


@pytest.mark.parametrize(
    "layout", [CAFFE_LAYOUT, {"stride_in_1x1": True, "pool_ceil_mode": False}, {}]
)
def test_torchvision_weights_refuse_another_block_layout(layout):
    with torch.device("meta"):
        model = deeplab_v2("resnet50", num_classes=3, **layout)
    with pytest.raises(ValueError, match="stride_in_1x1=False, pool_ceil_mode=False"):
        load_torchvision_state_dict(model, fake_torchvision_state("resnet50"))


def test_narrow_backbones_have_no_imagenet_checkpoint():
    with pytest.raises(ValueError, match="width"):
        load_torchvision_state_dict(deeplab_v2("resnet101", width=8), {})


# -- ResNet against an implementation written from scratch ---------------------------------------


def functional_resnet(state, x, blocks, strides, rates, stride_in_1x1, ceil_mode):
    """Bottleneck ResNet from a torchvision-style state dict, layer by layer with F.*."""

    def bn(x, name):
        return F.batch_norm(
            x, state[f"{name}.running_mean"], state[f"{name}.running_var"],
            state[f"{name}.weight"], state[f"{name}.bias"], training=False, eps=1e-5,
        )  # fmt: skip

    x = F.relu(bn(F.conv2d(x, state["conv1.weight"], stride=2, padding=3), "bn1"))
    x = F.max_pool2d(x, 3, stride=2, padding=1, ceil_mode=ceil_mode)
    for stage, (n_blocks, stride, rate) in enumerate(zip(blocks, strides, rates, strict=True)):
        for block in range(n_blocks):
            p = f"layer{stage + 1}.{block}"
            s = stride if block == 0 else 1
            s1, s3 = (s, 1) if stride_in_1x1 else (1, s)
            y = F.relu(bn(F.conv2d(x, state[f"{p}.conv1.weight"], stride=s1), f"{p}.bn1"))
            y = F.conv2d(y, state[f"{p}.conv2.weight"], stride=s3, padding=rate, dilation=rate)
            y = F.relu(bn(y, f"{p}.bn2"))
            y = bn(F.conv2d(y, state[f"{p}.conv3.weight"]), f"{p}.bn3")
            if f"{p}.downsample.0.weight" in state:
                x = bn(
                    F.conv2d(x, state[f"{p}.downsample.0.weight"], stride=s), f"{p}.downsample.1"
                )
            x = F.relu(y + x)
    return x


@pytest.mark.parametrize(
    ("output_stride", "strides", "rates"),
    [(32, (1, 2, 2, 2), (1, 1, 1, 1)), (16, (1, 2, 2, 1), (1, 1, 1, 2))]
    + [(8, (1, 2, 1, 1), (1, 1, 2, 4))],
)
@pytest.mark.parametrize("stride_in_1x1", [True, False])
def test_resnet_matches_a_functional_resnet(output_stride, strides, rates, stride_in_1x1):
    torch.manual_seed(0)
    blocks = (2, 1, 2, 1)
    model = ResNet(blocks, width=4, output_stride=output_stride, stride_in_1x1=stride_in_1x1)
    with torch.no_grad():  # non-trivial batch-norm statistics
        for name, tensor in model.state_dict().items():
            if "bn" in name or "downsample.1" in name:
                tensor.copy_(torch.rand_like(tensor) + 0.5)
    x = torch.randn(2, 3, 57, 50)
    expected = functional_resnet(
        model.state_dict(), x, blocks, strides, rates, stride_in_1x1, ceil_mode=True
    )
    with torch.no_grad():
        torch.testing.assert_close(model(x), expected)


def test_resnet101_equals_torchvision_at_output_stride_32():
    models = pytest.importorskip("torchvision.models", reason="torchvision is optional")
    torch.manual_seed(0)
    reference = models.resnet101(weights=None).eval()
    with torch.no_grad():
        for module in reference.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_()
                module.running_var.uniform_(0.5, 2.0)
                module.weight.normal_()
    ours = deeplab_v2("resnet101", output_stride=32, stride_in_1x1=False, pool_ceil_mode=False)
    load_torchvision_state_dict(ours, reference.state_dict())
    trunk = torch.nn.Sequential(*list(reference.children())[:-2])
    x = torch.randn(1, 3, 96, 80)
    with torch.no_grad():
        torch.testing.assert_close(ours.backbone(x), trunk(x), rtol=1e-4, atol=1e-4)


# -- the ResNet-101 preset against torchvision's layout, with torchvision-shaped weights ----------


def plausible_torchvision_state(architecture, seed=0):
    """torchvision's keys and shapes with values a trained network could hold: He-scaled
    convolutions and batch norm with positive variances, so activations stay O(1) deep down."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in TORCHVISION_SHAPES[architecture].items():
        if not shape:
            state[key] = torch.tensor(0)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=generator) + 0.5
        elif key.endswith("weight") and len(shape) == 4:
            fan_in = shape[1] * shape[2] * shape[3]
            state[key] = torch.randn(shape, generator=generator) * (2 / fan_in) ** 0.5
        elif key.endswith("weight") and ("bn" in key or "downsample.1" in key):
            state[key] = torch.rand(shape, generator=generator) * 0.5 + 0.5  # gamma
        else:
            state[key] = torch.randn(shape, generator=generator) * 0.1
    return state


def torchvision_layout_stages(state, x):
    """Stem, layer1 and layer2 of torchvision's ResNet written out with F.*: the stride on each
    block's 3x3 convolution, the stem's max pool in floor mode (torchvision's Bottleneck)."""

    def bn(x, name):
        scale = state[f"{name}.weight"] / torch.sqrt(state[f"{name}.running_var"] + 1e-5)
        shift = state[f"{name}.bias"] - state[f"{name}.running_mean"] * scale
        return x * scale[:, None, None] + shift[:, None, None]

    x = F.relu(bn(F.conv2d(x, state["conv1.weight"], stride=2, padding=3), "bn1"))
    outputs = [F.max_pool2d(x, 3, stride=2, padding=1, ceil_mode=False)]
    for stage, stride in ((1, 1), (2, 2)):
        x = outputs[-1]
        for block in range(len({k.split(".")[1] for k in state if k.startswith(f"layer{stage}.")})):
            p, s = f"layer{stage}.{block}", stride if block == 0 else 1
            y = F.relu(bn(F.conv2d(x, state[f"{p}.conv1.weight"]), f"{p}.bn1"))
            y = F.relu(bn(F.conv2d(y, state[f"{p}.conv2.weight"], stride=s, padding=1), f"{p}.bn2"))
            y = bn(F.conv2d(y, state[f"{p}.conv3.weight"]), f"{p}.bn3")
            if f"{p}.downsample.0.weight" in state:
                x = bn(
                    F.conv2d(x, state[f"{p}.downsample.0.weight"], stride=s), f"{p}.downsample.1"
                )
            x = F.relu(y + x)
        outputs.append(x)
    return outputs


def preset_stages(backbone, x):
    x = backbone.maxpool(backbone.relu(backbone.bn1(backbone.conv1(x))))
    stem = x
    layer1 = backbone.layer1(stem)
    return [stem, layer1, backbone.layer2(layer1)]


@pytest.fixture(scope="module")
def resnet101_preset_with_torchvision_weights():
    """The ResNet-101 preset's own network (its backbone_options), torchvision-shaped weights
    loaded as the preset loads them, in float64 so that only the layout can make a difference."""
    config = get_preset("voc-resnet101-aspp-l-msc", imagenet_weights=None)
    torch.manual_seed(0)
    model = build_model(config)
    state = plausible_torchvision_state("resnet101", seed=1)
    load_torchvision_state_dict(model, state)
    return model.double().eval(), {k: v.double() for k, v in state.items() if v.ndim}


def test_resnet101_preset_computes_what_torchvision_weights_were_trained_for(
    resnet101_preset_with_torchvision_weights,
):
    model, state = resnet101_preset_with_torchvision_weights
    # Even heights: a ceil-mode stem pool gives another size (33 rows instead of 32 here).
    x = torch.randn(2, 3, 128, 90, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    with torch.no_grad():
        ours = preset_stages(model.backbone, x)
    expected = torchvision_layout_stages(state, x)
    for name, a, b in zip(("stem", "layer1", "layer2"), ours, expected, strict=True):
        assert a.shape == b.shape, name
        assert b.abs().mean() > 0.1, name  # the comparison is not between vanishing numbers
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10, msg=name)


def test_resnet101_preset_equals_torchvision_itself(resnet101_preset_with_torchvision_weights):
    models = pytest.importorskip("torchvision.models", reason="torchvision is optional")
    model, state = resnet101_preset_with_torchvision_weights
    reference = models.resnet101(weights=None).double().eval()
    reference.load_state_dict({**plausible_torchvision_state("resnet101", seed=1)}, strict=True)
    reference.double()
    x = torch.randn(1, 3, 96, 70, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    with torch.no_grad():
        stem = reference.maxpool(reference.relu(reference.bn1(reference.conv1(x))))
        expected = [stem, reference.layer1(stem), reference.layer2(reference.layer1(stem))]
        ours = preset_stages(model.backbone, x)
    for a, b in zip(ours, expected, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
