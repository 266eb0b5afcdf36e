"""The permutohedral lattice in PyTorch: fast Gaussian filtering for a batch of images.

The same algorithm as ``permutohedral.py`` (Adams, Baek and Davis, Eurographics 2010; the filter
inside the fully connected CRF of DeepLab Sec. 3.3 and Krähenbühl and Koltun, NIPS 2011), written
with tensor operations only, so that it runs on the CPU and on CUDA alike:

1. **elevate** every feature vector into the plane sum(x) = 0 of R^{d+1};
2. find its **enclosing simplex** (the nearest remainder-0 lattice point, the rank of the
   residuals) and the **barycentric weights** of the simplex's d + 1 corners;
3. number the lattice points the corners touch: pack each corner into an int64 key and take the
   unique keys (a sort, or a table when the keys are few bits) -- the role of the C++ hash table
   (``torch_lattice_keys.py``);
4. look up each lattice point's two neighbours along each of the d + 1 directions.

Filtering is then ``splat`` (``index_add_`` of each point's value into its corners; on the CPU a
sparse product with the same weights, since ``index_add_`` is several times slower there),
``blur`` (gathers of the neighbours, weights 1/2, 1, 1/2, along each direction in turn) and
``slice`` (gathers back with the barycentric weights, times 1 / (1 + 2^-d)). The arithmetic of
steps 1-2 is float32 in the order of the C++ code (and of the NumPy version), so all three agree
to float32 noise. The filter is linear in the values and the lattice is a constant of the
features, so its gradient is its transpose: the same filter with the blur's directions reversed
(``lattice_filter``).

Several images share one lattice object: each point carries the index of its image, which goes
into the key's top bits, so no two images share a lattice point and one splat, blur and slice
serve the whole batch.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import Tensor

from deeplab_ref.crf.permutohedral import elevation_scale
from deeplab_ref.crf.torch_lattice_keys import LatticeKeys, find, unique


def elevate(features: Tensor) -> Tensor:
    """Scale features (P, d) and embed them in the plane sum(x) = 0: (d + 1, P) float32.

    Coordinate-major, like the NumPy version: each coordinate is one contiguous row.
    """
    points, d = features.shape
    scale = torch.from_numpy(elevation_scale(d)).to(features.device)
    elevated = torch.empty(d + 1, points, dtype=torch.float32, device=features.device)
    partial_sum = torch.zeros(points, dtype=torch.float32, device=features.device)
    for j in range(d, 0, -1):
        scaled = features[:, j - 1] * scale[j - 1]
        elevated[j] = partial_sum - float(j) * scaled
        partial_sum += scaled
    elevated[0] = partial_sum
    return elevated


def enclosing_simplex(elevated: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """For each elevated point (d + 1, P): the nearest remainder-0 lattice point ``rem0`` and
    the ``rank`` of each coordinate of the residual (both int64), and the barycentric weights
    (float32) of the simplex corners 0 .. d; all (d + 1, P)."""
    d1 = elevated.shape[0]
    d = d1 - 1
    down = torch.tensor(1.0 / d1, dtype=torch.float32)
    nearest = torch.round(down * elevated)  # half to even, as the C++ code's SSE rounding
    rem0 = nearest * float(d1)
    plane_sum = nearest.sum(dim=0).to(torch.int64)
    residual = elevated - rem0
    rank = torch.zeros(elevated.shape, dtype=torch.int64, device=elevated.device)
    for i in range(d):
        for j in range(i + 1, d1):
            i_smaller = residual[i] < residual[j]  # a tie ranks the earlier coordinate first
            rank[i] += i_smaller
            rank[j] += ~i_smaller
    # Rounding may leave the point off the plane; a cyclic shift of the ranks brings it back.
    rank += plane_sum
    shift = ((rank < 0).to(torch.int64) - (rank > d).to(torch.int64)) * d1
    rank += shift
    rem0 = rem0.to(torch.int64) + shift
    weight = (elevated - rem0.to(torch.float32)) * down
    by_corner = torch.empty_like(weight).scatter_(0, d - rank, weight)
    barycentric = torch.empty_like(weight)
    barycentric[1:] = by_corner[1:] - by_corner[:-1]
    barycentric[0] = by_corner[0] + (1.0 - by_corner[d])
    return rem0, rank, barycentric


CPU_BLOCK = 16384  # lattice points per block of the blur on the CPU: 16384 x 21 labels x 4 bytes


def _csr_matrix(rows: Tensor, columns: Tensor, values: Tensor, size: tuple[int, int]) -> Tensor:
    """A CSR matrix (built right, so unchecked), without PyTorch's warning that its sparse
    formats are a beta feature."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(rows, columns, values, size=size, check_invariants=False)


class TorchLattice:
    """The lattice for the points of one or several images, reusable for any number of filterings.

    Args:
        features: (P, d) positions to filter over, already divided by the standard deviations.
        image_index: (P,) int64 image of each point (points of different images never mix), or
            None for one image.

    Attributes:
        vertex: (d + 1, P) int64 lattice point at each corner of each point's simplex.
        barycentric: (d + 1, P) float32 weights of those corners (>= 0, summing to 1).
        neighbours: (d + 1, 2, M + 1) int64, along each direction the two neighbours of each
            lattice point. Lattice point M is a zero that every missing neighbour points to: its
            own neighbours are itself, so the blur keeps it zero.
        alpha: the slice factor 1 / (1 + 2^-d).
        sparse_products: splat and slice as CSR products (the default on the CPU) rather than
            ``index_add_`` and gathers (the default elsewhere); both give the same values.
    """

    def __init__(self, features: Tensor, image_index: Tensor | None = None) -> None:
        if features.ndim != 2 or features.shape[1] < 1:
            shape = tuple(features.shape)
            raise ValueError(f"features must be (P, d) with d >= 1, got shape {shape}")
        features = features.to(torch.float32)
        if len(features) == 0:
            raise ValueError("features must hold at least one point")
        if not bool(torch.isfinite(features).all()):
            raise ValueError("features must be finite")
        self.n_points, self.dim = features.shape
        self.device = features.device
        elevated = elevate(features)
        if float(elevated.abs().max()) > 16000:  # as the NumPy version's int16
            raise ValueError(
                "features too large for the lattice (spread over more than ~1e4 standard "
                "deviations): use larger standard deviations"
            )
        rem0, rank, self.barycentric = enclosing_simplex(elevated)
        quotient = torch.div(rem0, self.dim + 1, rounding_mode="floor")
        n_images = 1 if image_index is None else int(image_index.max()) + 1
        layout = LatticeKeys(quotient, n_images)
        corner_keys = layout.corners(quotient, rank, image_index)
        unique_keys, inverse, table = unique(corner_keys.reshape(-1), layout.bits)
        self.n_vertices = len(unique_keys)
        self.vertex = inverse.reshape(corner_keys.shape)
        self.neighbours = self._neighbours(unique_keys, layout, table)
        self.alpha = 1.0 / (1.0 + 2.0**-self.dim)
        self.sparse_products = self.device.type == "cpu"
        self._matrices: dict[torch.dtype, tuple[Tensor, Tensor]] = {}

    def scaled(self, scale: Tensor) -> TorchLattice:
        """The same lattice with each point's barycentric weights times ``scale`` (P,): its filter
        is ``scale * K(scale * V)``, and still its own transpose up to the blur's order."""
        lattice = copy.copy(self)
        lattice.barycentric = self.barycentric * scale
        lattice._matrices = {}
        return lattice

    def _neighbours(self, unique_keys: Tensor, layout: LatticeKeys, table: Tensor | None) -> Tensor:
        m = self.n_vertices
        rows = torch.arange(m, device=self.device)
        neighbours = torch.full((self.dim + 1, 2, m + 1), m, dtype=torch.int64, device=self.device)
        for j in range(self.dim + 1):
            steps = layout.neighbour_steps(unique_keys, j)
            forward = find(unique_keys, unique_keys + steps, table)
            present = forward >= 0
            neighbours[j, 0, :m][present] = forward[present]
            # The neighbour on the other side is the inverse step: x is y's forward neighbour.
            neighbours[j, 1, forward[present]] = rows[present]
        return neighbours

    def _sparse_matrices(self, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """The splat (M + 1, P) and slice (P, M + 1) as CSR matrices of the barycentric weights.

        On the CPU, PyTorch's ``index_add_`` is several times slower than a sparse product
        (per-row overhead), so there the splat and slice are CSR products with the same weights.
        """
        if dtype not in self._matrices:
            d1, p, m1 = self.dim + 1, self.n_points, self.n_vertices + 1
            weights = self.barycentric.to(dtype)
            slicer = _csr_matrix(
                torch.arange(0, d1 * p + 1, d1, device=self.device),
                self.vertex.T.reshape(-1),
                weights.T.reshape(-1),
                size=(p, m1),
            )
            by_vertex = torch.argsort(self.vertex.reshape(-1), stable=True)
            counts = torch.bincount(self.vertex.reshape(-1), minlength=m1)
            splatter = _csr_matrix(
                torch.cat([counts.new_zeros(1), torch.cumsum(counts, dim=0)]),
                by_vertex % p,
                weights.reshape(-1)[by_vertex],
                size=(m1, p),
            )
            self._matrices[dtype] = splatter, slicer
        return self._matrices[dtype]

    def splat(self, values: Tensor) -> Tensor:
        """Lattice values (M + 1, C): each point's values (P, C) spread over its corners."""
        if self.sparse_products:  # into a fresh output: no zeroing and copying by matmul
            out = values.new_empty(self.n_vertices + 1, values.shape[1])
            return torch.addmm(out, self._sparse_matrices(values.dtype)[0], values, beta=0, out=out)
        lattice = values.new_zeros(self.n_vertices + 1, values.shape[1])
        weighted = torch.empty_like(values)
        for vertex, weight in zip(self.vertex, self.barycentric.to(values.dtype), strict=True):
            lattice.index_add_(0, vertex, torch.mul(values, weight[:, None], out=weighted))
        return lattice

    def blur(self, lattice: Tensor, reverse: bool = False) -> Tensor:
        """Lattice values (M + 1, C) blurred by [1/2, 1, 1/2] along each direction 0 .. d (or
        d .. 0: each direction's blur is a symmetric matrix, so this is the transpose).

        On the CPU each direction runs over blocks of CPU_BLOCK lattice points, so that the
        gathered neighbours are summed while they are in the cache (a third faster); on a GPU
        the whole lattice is one block.
        """
        m1 = len(lattice)
        rows = CPU_BLOCK if self.device.type == "cpu" else m1
        buffers = (torch.empty_like(lattice), torch.empty_like(lattice))
        pair = lattice.new_empty(min(rows, m1), lattice.shape[1])
        other = torch.empty_like(pair)
        directions = self.neighbours.flip(0) if reverse else self.neighbours
        for k, (before, after) in enumerate(directions):
            out = buffers[k % 2]
            for start in range(0, m1, rows):
                block, n = slice(start, start + rows), min(rows, m1 - start)
                torch.index_select(lattice, 0, before[block], out=pair[:n])
                torch.index_select(lattice, 0, after[block], out=other[:n])
                pair[:n] += other[:n]
                # out = lattice + pair / 2 (halving is exact: the NumPy version's rounding)
                torch.add(lattice[block], pair[:n], alpha=0.5, out=out[block])
            lattice = out
        return lattice

    def slice(self, lattice: Tensor) -> Tensor:
        """Values (P, C) read back from the corners, times alpha."""
        if self.sparse_products:
            out = lattice.new_empty(self.n_points, lattice.shape[1])
            slicer = self._sparse_matrices(lattice.dtype)[1]
            return torch.addmm(out, slicer, lattice, beta=0, alpha=self.alpha, out=out)
        weights = self.barycentric.to(lattice.dtype) * self.alpha
        out = lattice.new_zeros(self.n_points, lattice.shape[1])
        corner = torch.empty_like(out)
        for vertex, weight in zip(self.vertex, weights, strict=True):
            out.addcmul_(torch.index_select(lattice, 0, vertex, out=corner), weight[:, None])
        return out

    def filter(self, values: Tensor, reverse: bool = False) -> Tensor:
        """Approximate Gaussian filter of values (P, C): splat, blur, slice. Not tracked by
        autograd (``lattice_filter`` is); ``reverse`` blurs d .. 0, which gives the transpose."""
        return self.slice(self.blur(self.splat(values), reverse))


class _LatticeFilter(torch.autograd.Function):
    """The lattice filter as an autograd function. It is a fixed linear map A (the lattice is a
    constant), so the gradient is A^T applied to the incoming gradient, and A^T is the same
    splat, blur and slice with the directions blurred in reverse order: no intermediate needs
    to be kept for the backward pass."""

    @staticmethod
    def forward(ctx, values: Tensor, lattice: TorchLattice) -> Tensor:
        ctx.lattice = lattice
        return lattice.filter(values)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        return ctx.lattice.filter(grad.contiguous(), reverse=True), None


def lattice_filter(lattice: TorchLattice, values: Tensor) -> Tensor:
    """``lattice.filter(values)``, differentiable with respect to values (P, C)."""
    return _LatticeFilter.apply(values, lattice)
