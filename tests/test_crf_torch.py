"""The PyTorch dense CRF against the NumPy one and pydensecrf, batched, on the CPU and (when
there is one) CUDA; its lattice against the NumPy lattice; its gradients by gradcheck."""

import numpy as np
import pytest
import torch
from test_crf import PARAMETERS, assert_agrees, photo, pydensecrf_q, random_probs
from test_crf_inputs import broken, good_inputs
from torch.func import functional_call

from deeplab_ref.crf import (
    DenseCRFLayer,
    PermutohedralLattice,
    TorchLattice,
    bilateral_features,
    dense_crf,
    dense_crf_torch,
    gaussian_features,
    unary_from_probs,
)
from deeplab_ref.crf.torch_lattice import lattice_filter
from deeplab_ref.crf.torch_mean_field import label_softmax

NAMES = ("pos_xy_std", "pos_w", "bi_xy_std", "bi_rgb_std", "bi_w")
DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
    ),
]


def on(device, *arrays):
    return [torch.from_numpy(np.ascontiguousarray(a)).to(device) for a in arrays]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", PARAMETERS)
@pytest.mark.parametrize("smooth", [False, True])
def test_matches_numpy_and_pydensecrf_on_crops(device, name, smooth):
    """The inputs of test_crf's crop test, the two crops as one batch."""
    rng = np.random.default_rng(len(name) + smooth)
    images = np.stack([photo(1)[40:130, 60:180], photo(2)[40:130, 60:180]])
    probs = np.stack([random_probs(rng, 5, 90, 120, smooth) for _ in images])
    params = dict(zip(NAMES, PARAMETERS[name], strict=True))
    for iterations in (0, 1, 5, 10):
        ours = dense_crf_torch(*on(device, images, probs), iterations=iterations, **params)
        assert ours.dtype == torch.float32 and ours.shape == probs.shape
        assert ours.device.type == device
        for image, p, q in zip(images, probs, ours.cpu().numpy(), strict=True):
            assert_agrees(q, dense_crf(image, p, iterations=iterations, **params))
            unary = unary_from_probs(p)
            assert_agrees(q, pydensecrf_q(image, unary, iterations, *PARAMETERS[name]))


@pytest.mark.parametrize("device", DEVICES)
def test_full_photos_with_21_labels_as_a_batch_and_as_a_list(device):
    images = np.stack([photo(1)[:213], photo(2)])  # the second photo is 320x213
    rng = np.random.default_rng(1)
    probs = np.stack([random_probs(rng, 21, 213, 320, smooth=True) for _ in images])
    batch = dense_crf_torch(*on(device, images, probs)).cpu().numpy()
    for image, p, q in zip(images, probs, batch, strict=True):
        theirs = pydensecrf_q(image, unary_from_probs(p), 10, *PARAMETERS["deeplab_resnet"])
        assert_agrees(q, theirs)
    # A list may mix sizes; each image's result is the one it gets alone.
    sizes = [(213, 320), (100, 150)]
    listed = dense_crf_torch(
        on(device, images[0], images[1, :100, :150]),
        on(device, probs[0], probs[1, :, :100, :150]),
    )
    assert [tuple(q.shape[1:]) for q in listed] == sizes
    alone = dense_crf_torch(*on(device, images[None, 1, :100, :150], probs[None, 1, :, :100, :150]))
    torch.testing.assert_close(listed[0].cpu(), torch.from_numpy(batch[0]), atol=1e-5, rtol=0)
    torch.testing.assert_close(listed[1], alone[0], atol=1e-5, rtol=0)


def test_accepts_numpy_arrays_and_non_contiguous_views():
    image, probs = photo(1)[::2, ::-2], random_probs(np.random.default_rng(2), 3, 120, 160, True)
    theirs = pydensecrf_q(image, unary_from_probs(probs), 3, *PARAMETERS["deeplab_resnet"])
    assert_agrees(dense_crf_torch(image[None], probs[None], iterations=3)[0].numpy(), theirs)


@pytest.mark.parametrize("kind", ["gaussian", "bilateral", "generic"])
def test_lattice_matches_the_numpy_lattice(kind):
    rng = np.random.default_rng(4)
    image = photo(1)[:60, :80]
    features = {
        "gaussian": gaussian_features(60, 80, 2.0),
        "bilateral": bilateral_features(image, 20.0, 10.0),
        "generic": rng.normal(size=(500, 3)).astype(np.float32) * 3,
    }[kind]
    ours, theirs = TorchLattice(torch.from_numpy(features)), PermutohedralLattice(features)
    assert ours.n_vertices == theirs.n_vertices
    np.testing.assert_array_equal(ours.barycentric.numpy(), theirs.barycentric.T)
    values = rng.random((len(features), 4)).astype(np.float32)
    expected = theirs.filter(values)
    for sparse_products in (True, False):  # CPU's CSR products, and the index_add_ of CUDA
        ours.sparse_products = sparse_products
        got = ours.filter(torch.from_numpy(values)).numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * expected.max())
    lattice_values = torch.rand(ours.n_vertices + 1, 3)
    kept = lattice_values.clone()
    ours.blur(lattice_values)
    assert torch.equal(lattice_values, kept)  # the blur leaves its input alone


def test_a_batch_lattice_keeps_its_images_apart():
    rng = np.random.default_rng(5)
    first, second = (rng.normal(size=(200, 2)).astype(np.float32) for _ in range(2))
    features = torch.from_numpy(np.concatenate([first, second]))
    index = torch.arange(2).repeat_interleave(200)
    joint = TorchLattice(features, index)
    values = torch.from_numpy(rng.random((400, 3)).astype(np.float32))
    filtered = joint.filter(values)
    for part, own in ((slice(0, 200), first), (slice(200, 400), second)):
        alone = TorchLattice(torch.from_numpy(own)).filter(values[part])
        torch.testing.assert_close(filtered[part], alone)
    assert joint.n_vertices == sum(
        TorchLattice(torch.from_numpy(f)).n_vertices for f in (first, second)
    )


def test_the_filter_gradient_is_its_transpose():
    """gradcheck in float64 of the lattice filter, whose backward is the filter with the
    directions blurred in reverse order (no autograd graph through splat, blur and slice)."""
    lattice = TorchLattice(torch.randn(40, 3, generator=torch.Generator().manual_seed(0)) * 2)
    values = torch.randn(40, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: lattice_filter(lattice, v), (values,))
    lattice.sparse_products = False
    assert torch.autograd.gradcheck(lambda v: lattice_filter(lattice, v), (values,))


def test_layer_gradients_by_gradcheck():
    """Unaries (logits), both kernel weights and the compatibility matrix, float64, 3 updates."""
    rng = np.random.default_rng(6)
    images = torch.from_numpy(rng.integers(0, 256, size=(2, 5, 6, 3), dtype=np.uint8))
    layer = DenseCRFLayer(3, iterations=3, pos_xy_std=1.5, bi_xy_std=3.0, bi_rgb_std=40.0)
    layer = layer.double()
    parameters = {name: p.detach().clone() for name, p in layer.named_parameters()}
    parameters["compatibility"] += 0.1 * torch.randn(3, 3, dtype=torch.float64)
    names = list(parameters)

    def refined(logits, *values):
        return functional_call(layer, dict(zip(names, values, strict=True)), (images, logits))

    logits = torch.randn(2, 3, 5, 6, dtype=torch.float64)
    inputs = [t.requires_grad_() for t in (logits, *parameters.values())]
    assert torch.autograd.gradcheck(refined, inputs)


def test_layer_at_potts_is_dense_crf_torch_and_learns():
    rng = np.random.default_rng(7)
    images = torch.from_numpy(rng.integers(0, 256, size=(2, 20, 30, 3), dtype=np.uint8))
    probs = torch.softmax(
        3 * torch.randn(2, 4, 20, 30, generator=torch.Generator().manual_seed(1)), 1
    )
    layer = DenseCRFLayer(4, iterations=5, bi_xy_std=10.0, bi_rgb_std=20.0)
    log_q = layer(images, torch.log(probs.clamp(1e-5, 1)))
    expected = dense_crf_torch(images, probs, iterations=5, bi_xy_std=10.0, bi_rgb_std=20.0)
    torch.testing.assert_close(log_q.exp(), expected, atol=1e-5, rtol=0)
    labels = probs.argmax(1)
    optimiser = torch.optim.SGD(layer.parameters(), lr=0.01)
    losses = []
    for _ in range(5):
        loss = torch.nn.functional.nll_loss(layer(images, 0.3 * torch.log(probs)), labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in layer.parameters())


@pytest.mark.parametrize(
    "case, message",
    [
        ("image dtype", "images must be a uint8"),
        ("image channels", r"images must be RGB \(H, W, 3\)"),
        ("image size", "probs is .* pixels but image is"),
        ("probs dtype", "probs must be a float"),
        ("probs NaN", "probs contains NaN"),
        ("probs negative", "probs must be >= 0"),
        ("probs sum", "probs must sum to 1"),
    ],
)
def test_bad_arrays_get_the_errors_of_dense_crf(case, message):
    image, probs = broken(case)
    with pytest.raises(ValueError, match=message):
        dense_crf_torch(image[None], probs[None])
    listed = message.replace("images", r"images\[0\]").replace("probs ", r"probs(\[0\])? ")
    with pytest.raises(ValueError, match=listed):
        dense_crf_torch([image], [probs])


@pytest.mark.parametrize(
    "options, message",
    [
        ({"iterations": -1}, "iterations must be >= 0"),
        ({"iterations": 2.5}, "iterations must be an integer"),
        ({"pos_xy_std": 0.0}, "xy_std must be a positive"),
        ({"bi_rgb_std": float("nan")}, "rgb_std must be a positive"),
        ({"bi_w": float("inf")}, "bi_w must be a finite"),
        ({"pos_w": float("nan")}, "pos_w must be a finite"),
    ],
)
def test_bad_parameters_get_the_errors_of_dense_crf(options, message):
    image, probs = good_inputs()
    with pytest.raises(ValueError, match=message):
        dense_crf_torch(image[None], probs[None], **options)


def test_bad_batches():
    image, probs = good_inputs()
    with pytest.raises(ValueError, match=r"images must be a batch \(N, H, W, 3\)"):
        dense_crf_torch(image, probs[None])
    with pytest.raises(ValueError, match=r"probs must be a batch \(N, C, H, W\)"):
        dense_crf_torch(image[None], probs)
    with pytest.raises(ValueError, match="both be batches"):
        dense_crf_torch([image], probs[None])
    with pytest.raises(ValueError, match="same number"):
        dense_crf_torch(np.stack([image, image]), probs[None])
    with pytest.raises(ValueError, match="same number"):
        dense_crf_torch([], [])
    with pytest.raises(ValueError, match=r"probs\[1\] has 2 classes"):
        dense_crf_torch([image, image], [probs, probs[:2] / probs[:2].sum(0)])
    with pytest.raises(ValueError, match="logits have 3 classes, the layer 4"):
        DenseCRFLayer(4)(torch.from_numpy(image[None]), torch.zeros(1, 3, 12, 16))
    with pytest.raises(ValueError, match="num_classes must be"):
        DenseCRFLayer(0)


@pytest.mark.parametrize("height, width", [(0, 0), (0, 5), (4, 0)])
def test_images_without_pixels_are_refused_by_both_versions(height, width):
    image = np.zeros((height, width, 3), np.uint8)
    probs = np.full((2, height, width), 0.5, np.float32)
    with pytest.raises(ValueError, match="image has no pixels"):
        dense_crf(image, probs)
    with pytest.raises(ValueError, match="images has no pixels"):
        dense_crf_torch(image[None], probs[None])
    with pytest.raises(ValueError, match="features must hold at least one point"):
        TorchLattice(torch.zeros(0, 2))


def test_label_softmax_and_prebuilt_kernels():
    for labels in (5, 21):
        energy = torch.randn(50, labels, dtype=torch.float64)
        torch.testing.assert_close(label_softmax(energy), torch.softmax(energy, 1))
        torch.testing.assert_close(label_softmax(energy, log=True), torch.log_softmax(energy, 1))
    rng = np.random.default_rng(8)
    images = torch.from_numpy(rng.integers(0, 256, size=(2, 10, 12, 3), dtype=np.uint8))
    logits = torch.randn(2, 3, 10, 12)
    layer = DenseCRFLayer(3, iterations=4, bi_xy_std=5.0, bi_rgb_std=30.0)
    kernels = layer.kernels_for(images, logits)
    torch.testing.assert_close(layer(images, logits, kernels=kernels), layer(images, logits))
    assert not torch.equal(layer(images, logits, iterations=0), layer(images, logits))
