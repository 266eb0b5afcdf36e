"""ImageNet initialisation from torchvision's checkpoints (Sec. 4: "the Imagenet-pretrained
VGG-16 or ResNet-101 networks").

DeepLab starts from ImageNet classifiers. We load the ``.pth`` state dicts torchvision users
already have (``~/.cache/torch/hub/checkpoints/``) from a local path: nothing is downloaded.

* ResNet: torchvision's names are ours (``conv1``, ``bn1``, ``layer1.0.conv1`` ...) under
  ``backbone.``; the ImageNet classifier ``fc`` is dropped and the ASPP convolutions stay new.
  torchvision trained these weights with the stride of each downsampling block on its 3x3
  convolution and a floor-mode stem pool, so the backbone must be built in that layout
  (``resnet.TORCHVISION_LAYOUT``); the MSRA/Caffe layout is refused, since the same weights
  would compute other features there.
* VGG-16: ``features.N`` load into ``backbone.features.N``. fc6 and fc7 are built from the
  ImageNet fully connected layers: fc6's 4096 x (512 x 7 x 7) weights are viewed as 7x7 filters
  and subsampled to the head's kernel by decimation (every 3rd tap for 3x3, every 2nd for 4x4),
  the method of DeepLab's conference version (this paper does not say how fc6 shrank). The
  paper keeps "a random subset of 1,024 out of the 4,096 filters" of fc6 and fc7 (Sec. 4.1.1);
  ours are every 4th output channel, and fc7 every 4th row and column, so the same file always
  gives the same model. Every ASPP branch gets the same fc6/fc7. The ImageNet classifier
  (``classifier.6``) is dropped; the new fc8 stays at its random initialisation.

A file that does not fit the model raises a ``ValueError`` naming the file and the keys at fault.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from deeplab_ref.models.deeplab import DeepLabV2
from deeplab_ref.models.resnet import RESNET_BLOCKS, TORCHVISION_LAYOUT, ResNet
from deeplab_ref.models.vgg import VGG16

TORCHVISION_CHECKPOINTS: dict[str, str] = {
    "vgg16": "vgg16-397923af.pth",
    "resnet50": "resnet50-0676ba61.pth",
    "resnet101": "resnet101-63fe2227.pth",
}
_DOWNLOAD_URL = "https://download.pytorch.org/models/"
_VGG_FC_SIDE = 7  # ImageNet fc6 reads a 7x7 pool5 map


def default_weights_path(architecture: str) -> Path:
    """Where torchvision keeps the checkpoint: ``$TORCH_HOME/hub/checkpoints/<file>``."""
    if architecture not in TORCHVISION_CHECKPOINTS:
        raise ValueError(
            f"architecture must be one of {list(TORCHVISION_CHECKPOINTS)}, got {architecture!r}"
        )
    return Path(torch.hub.get_dir()) / "checkpoints" / TORCHVISION_CHECKPOINTS[architecture]


def backbone_architecture(model: DeepLabV2) -> str:
    """The torchvision name of the model's backbone ("vgg16", "resnet50" or "resnet101")."""
    backbone = model.backbone
    if isinstance(backbone, VGG16) and backbone.width == 64:
        return "vgg16"
    if isinstance(backbone, ResNet) and backbone.width == 64:
        for name, blocks in RESNET_BLOCKS.items():
            if backbone.blocks == blocks:
                return name
    raise ValueError(
        f"the backbone ({type(backbone).__name__} {_backbone_shape(backbone)}) has no "
        "torchvision ImageNet checkpoint: build it with width=64 and the standard blocks"
    )


def _backbone_shape(backbone: object) -> str:
    return f"width={getattr(backbone, 'width', '?')}, blocks={getattr(backbone, 'blocks', '-')}"


def decimate_fc6(weight: torch.Tensor, out_channels: int, kernel_size: int) -> torch.Tensor:
    """ImageNet fc6 (4096, 512 * 7 * 7) -> (out_channels, 512, kernel_size, kernel_size)."""
    n_out, n_in = weight.shape
    in_channels = n_in // _VGG_FC_SIDE**2
    filters = weight.reshape(n_out, in_channels, _VGG_FC_SIDE, _VGG_FC_SIDE)
    taps = _decimation(_VGG_FC_SIDE, kernel_size, "kernel_size")
    return filters[_decimation(n_out, out_channels, "hidden_channels")][:, :, taps][..., taps]


def decimate_fc7(weight: torch.Tensor, channels: int) -> torch.Tensor:
    """ImageNet fc7 (4096, 4096) -> a 1x1 convolution (channels, channels, 1, 1)."""
    keep = _decimation(weight.shape[0], channels, "hidden_channels")
    return weight[keep][:, keep, None, None]


def _decimation(size: int, kept: int, name: str) -> torch.Tensor:
    """Indices 0, s, 2s, ... keeping ``kept`` of ``size`` evenly, ends included for taps."""
    if name == "kernel_size":
        step = (size - 1) // (kept - 1) if kept > 1 else 0
        ok = kept == 1 or (size - 1) % (kept - 1) == 0
    else:
        step = size // kept if kept else 0
        ok = kept > 0 and size % kept == 0
    if not ok:
        raise ValueError(f"{name}={kept} cannot be decimated from ImageNet's {size}")
    return torch.arange(kept) * step


def _vgg16_state(state: Mapping[str, torch.Tensor], model: DeepLabV2) -> dict:
    mapped = {}
    fc = {key: state[key] for key in state if key.startswith("classifier.")}
    for key, value in state.items():
        if not key.startswith("classifier."):
            mapped[f"backbone.{key}" if key.startswith("features.") else key] = value
    fc6_w, fc7_w = fc.get("classifier.0.weight"), fc.get("classifier.3.weight")
    fc6_b, fc7_b = fc.get("classifier.0.bias"), fc.get("classifier.3.bias")
    fits = (
        fc6_w is not None
        and fc7_w is not None
        and fc6_w.ndim == 2
        and fc6_w.shape[1] % _VGG_FC_SIDE**2 == 0
        and fc7_w.ndim == 2
        and fc6_b is not None
        and fc7_b is not None
    )
    if not fits:  # let the key check below report the fully connected layers at fault
        return mapped | {key: value for key, value in fc.items() if key != "classifier.6.weight"}
    for index, branch in enumerate(model.head.branches):
        channels, prefix = branch.hidden_channels, f"head.branches.{index}."
        if channels is None:
            raise ValueError("the head's branches have no fc6/fc7 (hidden_channels=None)")
        mapped[prefix + "fc6.weight"] = decimate_fc6(fc6_w, channels, branch.kernel_size)
        mapped[prefix + "fc6.bias"] = fc6_b[_decimation(len(fc6_b), channels, "hidden_channels")]
        mapped[prefix + "fc7.weight"] = decimate_fc7(fc7_w, channels)
        mapped[prefix + "fc7.bias"] = fc7_b[_decimation(len(fc7_b), channels, "hidden_channels")]
    return mapped


def _resnet_state(state: Mapping[str, torch.Tensor]) -> dict:
    return {f"backbone.{key}": value for key, value in state.items() if not key.startswith("fc.")}


def _check_torchvision_layout(backbone: object, source: str) -> None:
    """Refuse a ResNet whose block layout is not the one torchvision trained its weights in."""
    if not isinstance(backbone, ResNet):
        return
    layout = {name: getattr(backbone, name) for name in TORCHVISION_LAYOUT}
    if layout != TORCHVISION_LAYOUT:
        raise ValueError(
            f"{source} holds torchvision weights, trained with the stride on each block's 3x3 "
            f"convolution and a floor-mode stem pool, but the backbone was built with {layout}: "
            "build it with stride_in_1x1=False, pool_ceil_mode=False (TORCHVISION_LAYOUT); the "
            "MSRA/Caffe layout is for weights converted from the released Caffe model"
        )


def _misfits(mapped: dict, expected: dict) -> list[str]:
    missing = sorted(set(expected) - set(mapped))
    unexpected = sorted(set(mapped) - set(expected))
    shapes = [
        f"{key}: file {tuple(mapped[key].shape)}, model {tuple(expected[key].shape)}"
        for key in sorted(set(mapped) & set(expected))
        if mapped[key].shape != expected[key].shape
    ]
    lines = []
    for title, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", shapes)):
        if keys:
            more = f" ... and {len(keys) - 8} more" if len(keys) > 8 else ""
            lines.append(f"  {title} ({len(keys)}): {', '.join(keys[:8])}{more}")
    return lines


def load_imagenet_weights(model: DeepLabV2, path: str | Path | None = None) -> list[str]:
    """Initialise ``model``'s backbone (and VGG's fc6/fc7) from a torchvision checkpoint.

    Args:
        model: a ``DeepLabV2`` with a full-width VGG-16, ResNet-50 or ResNet-101 backbone.
        path: the ``.pth`` file; default ``default_weights_path(<backbone>)``.

    Returns:
        The model's state_dict keys left at their random initialisation (the classifiers).

    Raises:
        FileNotFoundError: no file at ``path`` (the message says where to put which file).
        ValueError: the file is not a state dict, or its keys/shapes do not fit the model.
    """
    architecture = backbone_architecture(model)
    path = Path(path) if path is not None else default_weights_path(architecture)
    if not path.is_file():
        file = TORCHVISION_CHECKPOINTS[architecture]
        raise FileNotFoundError(
            f"no ImageNet weights at {path}. Put torchvision's {architecture} checkpoint {file} "
            f"there (from {_DOWNLOAD_URL}{file}, or ~/.cache/torch/hub/checkpoints/ after any "
            "torchvision download), or pass its path."
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"{path} cannot be read as a PyTorch state dict: {error}") from error
    return load_torchvision_state_dict(model, state, source=str(path))


def load_torchvision_state_dict(
    model: DeepLabV2, state: Mapping[str, torch.Tensor], source: str = "the state dict"
) -> list[str]:
    """Copy a torchvision ImageNet state dict (already in memory) into ``model``.

    Same mapping and checks as ``load_imagenet_weights``; ``source`` names the state dict in
    error messages. Returns the keys left at their random initialisation.
    """
    architecture = backbone_architecture(model)
    if not isinstance(state, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise ValueError(f"{source} is not a state dict of tensors (got {type(state).__name__})")
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    try:
        mapped = _vgg16_state(state, model) if architecture == "vgg16" else _resnet_state(state)
    except ValueError as error:
        raise ValueError(f"{source} cannot initialise this model: {error}") from error
    target = model.state_dict()
    expected = {key: value for key, value in target.items() if ".classifier." not in key}
    problems = _misfits(mapped, expected)
    if problems:
        raise ValueError(
            f"{source} does not fit this DeepLab {architecture} model (a checkpoint of another "
            "architecture?):\n" + "\n".join(problems)
        )
    _check_torchvision_layout(model.backbone, source)
    model.load_state_dict(mapped, strict=False)
    return sorted(set(target) - set(mapped))
