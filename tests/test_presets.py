"""The presets follow their sources: the paper's text, the released Caffe configurations, or ours.

Oracles: the paper's numbers (Sec. 4.1, Tables 2-4) and the released configurations' (solvers,
data layers, test networks), written out here by hand, and the training samples themselves for
the scale draw.
"""

import pytest
import torch

from deeplab_ref.data.synthetic import SyntheticSegmentation
from deeplab_ref.models import TORCHVISION_LAYOUT
from deeplab_ref.presets import PRESETS, TrainConfig, build_dataset, get_preset
from deeplab_ref.train import TrainSamples

from small_setups import tiny_config

VOC = ("voc-vgg16-largefov", "voc-vgg16-aspp-l", "voc-resnet101-aspp-l-msc")
VGG16 = VOC[:2]
RESNET = VOC[2]


def test_voc_presets_take_the_papers_numbers():
    for name in VOC:
        preset = PRESETS[name]
        # Sec. 4.1.1-4.1.2: batch 10, 20K iterations, poly 0.9, momentum 0.9, decay 5e-4.
        assert (preset.batch_size, preset.max_iter, preset.power) == (10, 20_000, 0.9)
        assert (preset.momentum, preset.weight_decay) == (0.9, 5e-4)
        assert preset.crf.iterations == 10
    for name in VGG16:
        assert PRESETS[name].base_lr == 1e-3
    assert PRESETS[RESNET].msc and PRESETS[RESNET].head == "aspp-l"


def test_voc_presets_take_the_released_numbers_where_the_paper_is_silent():
    for name in VOC:
        assert PRESETS[name].crop_size == 321
        assert PRESETS[name].eval_padding == 513
    assert PRESETS[RESNET].base_lr == 2.5e-4
    assert PRESETS[RESNET].scales == (0.5, 0.75, 1.0, 1.25, 1.5)
    assert PRESETS[RESNET].scale_range is None


def test_vgg16_presets_do_not_scale():
    # Table 4's "Aug" is a ResNet-101 ingredient; the released VGG-16 data layer has no scales.
    for name in VGG16:
        assert PRESETS[name].scale_range is None and PRESETS[name].scales is None


def test_vgg16_crf_is_the_released_example_script_s():
    crf = PRESETS["voc-vgg16-largefov"].crf
    values = (crf.bi_w, crf.bi_xy_std, crf.bi_rgb_std, crf.pos_w, crf.pos_xy_std)
    assert values == (4, 49, 5, 3, 3)  # run_densecrf.sh, not the third-party 4/65/3/2/2


def test_resnet_preset_builds_the_layout_of_its_weights():
    assert PRESETS[RESNET].backbone_options == TORCHVISION_LAYOUT
    assert PRESETS[RESNET].imagenet_weights == "default"  # torchvision's checkpoint


def test_cpu_preset_keeps_its_continuous_range_and_pads_scenes_to_the_exact_grid():
    cpu = PRESETS["cpu-synthetic"]
    assert cpu.scale_range == (0.75, 1.25) and cpu.scales is None
    scene = SyntheticSegmentation("val", length=1).load_raw(0)[0]
    # the smallest 8k + 1 holding a scene: score i over pixel 8 i, as 513 does for VOC
    assert cpu.eval_padding == 8 * -(-(scene.shape[0] - 1) // 8) + 1 == 97


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"scales": (0.5, 1.0)}, "scale_range=None"),  # both set
        ({"scale_range": None, "scales": ()}, "scales"),
        ({"scale_range": None, "scales": (1.0, -0.5)}, "scales"),
        ({"scale_range": (1.5, 0.5)}, "scale_range"),
        ({"eval_padding": 0}, "eval_padding"),
        ({"eval_padding": 513.0}, "eval_padding"),
    ],
)
def test_bad_scaling_and_padding_are_named(overrides, field):
    with pytest.raises(ValueError, match=field):
        get_preset("cpu-synthetic", **overrides).validate()


def test_settings_survive_a_round_trip_through_a_checkpoint_dict():
    config = get_preset(RESNET, data_root="/data")
    values = config.to_dict()
    values["scales"] = list(values["scales"])  # as a JSON file would hold it
    assert TrainConfig.from_dict(values) == config
    old = {k: v for k, v in values.items() if k not in ("scales", "eval_padding")}
    restored = TrainConfig.from_dict(old)  # a checkpoint written before these settings
    assert restored.scales is None and restored.eval_padding is None


@pytest.mark.parametrize(("scale", "rows"), [(0.5, 20), (1.5, 60)])
def test_the_configured_scales_reach_the_training_samples(scale, rows):
    # 40x40 scenes in an 81x81 crop: the scaled scene fills the top rows (left or right, as
    # flipped), 255 pads the rest.
    config = tiny_config(crop_size=81, scale_range=None, scales=(scale,))
    samples = TrainSamples(build_dataset(config, "train"), config)
    for sample in range(4):
        _, label = samples[sample]
        assert label.shape == (81, 81)
        assert (label[rows:] == 255).all()
        labelled = (label != 255).sum(dim=0)
        assert (labelled > 0).sum() <= rows and (
            label[:rows] != 255
        ).float().mean() > 0.5 * rows / 81


def test_same_seed_same_scale_draws_in_training():
    config = tiny_config(crop_size=81, scale_range=None, scales=(0.5, 1.0, 1.5))
    dataset = build_dataset(config, "train")
    first = [TrainSamples(dataset, config)[j][1] for j in range(6)]
    again = [TrainSamples(dataset, config)[j][1] for j in range(6)]
    for a, b in zip(first, again, strict=True):
        assert torch.equal(a, b)
