"""DeepLab-v2's networks (Sec. 3.2 and 4): backbones, ASPP, multi-scale inputs, weights.

``deeplab_v2(backbone="resnet101", head="aspp-l", num_classes=21, msc=False)`` builds the
paper's models; ``upsample_scores`` brings their output-stride-8 scores to the image size;
``param_groups`` gives the released solvers' learning-rate multipliers;
``load_imagenet_weights`` starts from torchvision's ImageNet checkpoints on disk (in the block
layout they were trained in, ``TORCHVISION_LAYOUT``).
"""

from deeplab_ref.models.aspp import ASPP, HEAD_RATES, ASPPBranch, branch_field_of_view
from deeplab_ref.models.complexity import count_parameters, multiply_adds
from deeplab_ref.models.deeplab import DeepLabV2, deeplab_v2, param_groups
from deeplab_ref.models.frozen_bn import FrozenBatchNorm2d
from deeplab_ref.models.msc import MSC_SCALES, multi_scale_scores, scaled_size, upsample_scores
from deeplab_ref.models.resnet import (
    CAFFE_LAYOUT,
    RESNET_BLOCKS,
    TORCHVISION_LAYOUT,
    Bottleneck,
    ResNet,
)
from deeplab_ref.models.small import SmallBackbone
from deeplab_ref.models.vgg import VGG16
from deeplab_ref.models.weights import (
    TORCHVISION_CHECKPOINTS,
    decimate_fc6,
    default_weights_path,
    load_imagenet_weights,
    load_torchvision_state_dict,
)

__all__ = [
    "ASPP",
    "ASPPBranch",
    "Bottleneck",
    "CAFFE_LAYOUT",
    "DeepLabV2",
    "FrozenBatchNorm2d",
    "HEAD_RATES",
    "MSC_SCALES",
    "RESNET_BLOCKS",
    "ResNet",
    "SmallBackbone",
    "TORCHVISION_CHECKPOINTS",
    "TORCHVISION_LAYOUT",
    "VGG16",
    "branch_field_of_view",
    "count_parameters",
    "decimate_fc6",
    "deeplab_v2",
    "default_weights_path",
    "load_imagenet_weights",
    "load_torchvision_state_dict",
    "multi_scale_scores",
    "multiply_adds",
    "param_groups",
    "scaled_size",
    "upsample_scores",
]
