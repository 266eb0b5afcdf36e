"""Small models and training runs shared by several test modules."""

import torch

from deeplab_ref.models import deeplab_v2
from deeplab_ref.presets import get_preset

# The CPU preset cut down to a run of a few seconds: 33x33 crops of eight 40x40 scenes.
TINY = {
    "crop_size": 33,
    "batch_size": 2,
    "max_iter": 6,
    "checkpoint_every": 2,
    "log_every": 1,
    "dataset_options": {"length": 8, "image_size": 40},
    # fp32: the tests compare runs to the last bit or to 1e-4, whatever the CPU computes bf16 in.
    "bf16": False,
}
# A CPU-sized ResNet with the paper's frozen batch norm (the CPU preset's backbone trains its own).
FROZEN_BN = {"backbone": "resnet101", "backbone_options": {"blocks": (1, 1, 1, 1), "width": 8}}


def tiny_config(**overrides):
    return get_preset("cpu-synthetic", **{**TINY, **overrides})


def meta_model(*args, **kwargs):
    with torch.device("meta"):  # shapes only: no weight is allocated
        return deeplab_v2(*args, **kwargs)
