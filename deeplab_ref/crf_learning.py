"""Learning the fully connected CRF end to end on top of a trained network (CRF-as-RNN).

DeepLab (Sec. 3.3, 4.1) fixes the CRF's kernel weights by a grid search on held-out images.
Zheng et al. (CRF-as-RNN, ICCV 2015) unroll mean field into a recurrent network and learn its
weights and label compatibility by backpropagation instead. Here the network below stays fixed:
its upsampled scores on training images are computed once (``network_examples``), and a
``DenseCRFLayer`` is fitted to them by minimising the per-pixel cross-entropy of its output
(label 255 ignored) with Adam on random mini-batches (``learn_crf``). ``score_refined`` scores
any refinement -- the network alone, the fixed CRF, the learned layer -- on the same examples,
with the confusion matrix and the trimap meter of ``deeplab_ref.evaluate``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from deeplab_ref.crf.torch_layer import DenseCRFLayer
from deeplab_ref.data.transforms import IGNORE_INDEX
from deeplab_ref.evaluate import SplitScores
from deeplab_ref.models.msc import upsample_scores

# images (N, H, W, 3) uint8 and scores (N, C, H, W) -> anything whose argmax over dim 1 is a label
Refine = Callable[[Tensor, Tensor], Tensor]


@dataclass
class Examples:
    """Images (N, H, W, 3) uint8, the network's scores at the image size (N, C, H, W) and the
    labels (N, H, W) int64, for images of one size."""

    images: Tensor
    scores: Tensor
    labels: Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, rows: Tensor | slice) -> Examples:
        return Examples(self.images[rows], self.scores[rows], self.labels[rows])


@torch.no_grad()
def network_examples(
    model: nn.Module, dataset: Dataset, indices: Iterable[int], device: str | torch.device = "cpu"
) -> Examples:
    """The network's scores (upsampled bilinearly to the image size) on ``dataset[indices]``,
    with the raw images (``dataset.load_raw``) and labels, all on ``device``."""
    model.eval()
    images, scores, labels = [], [], []
    for index in indices:
        image, label = dataset[index]
        output = model(image[None].to(device))
        scores.append(upsample_scores(output, tuple(image.shape[-2:]))[0])
        images.append(torch.from_numpy(dataset.load_raw(index)[0]).to(device))
        labels.append(torch.as_tensor(label).to(device))
    return Examples(torch.stack(images), torch.stack(scores), torch.stack(labels))


def learn_crf(
    layer: DenseCRFLayer,
    examples: Examples,
    steps: int,
    batch_size: int = 8,
    lr: float = 0.05,
    seed: int = 0,
) -> list[dict[str, float]]:
    """Fit the layer's parameters to the examples: ``steps`` Adam steps on the cross-entropy of
    the refined log-probabilities, one mini-batch per step in turn. The examples are shuffled
    once (with ``seed``) into batches, whose kernels are built once and reused: the lattice is a
    constant of the images. Returns one record per step: the loss and the kernel weights."""
    if steps < 0 or batch_size < 1:
        raise ValueError(f"steps must be >= 0 and batch_size >= 1, got {steps}, {batch_size}")
    order = torch.randperm(len(examples), generator=torch.Generator().manual_seed(seed))
    batches = [examples.batch(rows.to(examples.labels.device)) for rows in order.split(batch_size)]
    kernels = [layer.kernels_for(batch.images, batch.scores) for batch in batches]
    optimiser = torch.optim.Adam(layer.parameters(), lr=lr)
    history = []
    layer.train()
    for step in range(steps):
        batch, batch_kernels = batches[step % len(batches)], kernels[step % len(batches)]
        log_q = layer(batch.images, batch.scores, kernels=batch_kernels)
        loss = F.nll_loss(log_q, batch.labels, ignore_index=IGNORE_INDEX)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        history.append(
            {
                "loss": loss.item(),
                "bilateral_weight": layer.bilateral_weight.item(),
                "gaussian_weight": layer.gaussian_weight.item(),
            }
        )
    layer.eval()
    return history


@torch.no_grad()
def score_refined(
    refine: Refine,
    examples: Examples,
    num_classes: int,
    trimap_widths: Sequence[float] | None = None,
    batch_size: int = 25,
) -> SplitScores:
    """Confusion matrix (and trimap meter) of ``refine(images, scores).argmax(1)`` over the
    examples, ``batch_size`` images at a time."""
    scores = SplitScores(num_classes, trimap_widths)
    for start in range(0, len(examples), batch_size):
        batch = examples.batch(slice(start, start + batch_size))
        predictions = refine(batch.images, batch.scores).argmax(1).cpu()
        for prediction, label in zip(predictions, batch.labels.cpu(), strict=True):
            scores.update(prediction, label)
    return scores
