"""Plausible wrong answers to notebook 02's exercises (see README.md)."""

WRONG_ANSWERS = {
    # The image size divided by the output stride, rounded down: 321 // 32 = 10, not 11.
    "feature_size": """
def feature_size(image_size, output_stride):
    return image_size // output_stride
""",
    # The later convolutions dilated, but their padding left as it was: the maps shrink.
    "stride_to_dilation": """
import copy

from torch import nn


def stride_to_dilation(net, index):
    dense = copy.deepcopy(net)
    dense[index].stride = 1
    for layer in dense[index + 1 :]:
        if isinstance(layer, nn.Conv2d):
            layer.dilation = (2 * layer.dilation[0], 2 * layer.dilation[1])
    return dense
""",
}
