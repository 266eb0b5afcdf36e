"""Numbering the points of the permutohedral lattice with tensor operations (Adams, Baek and
Davis, Eurographics 2010; the filter of the fully connected CRF, DeepLab Sec. 3.3).

The C++ code behind pydensecrf keeps the lattice points that the simplices touch in a hash table.
Here each point is packed into one int64 key (``LatticeKeys``), the keys are made unique by a sort
or, when they are few bits, by a table over every possible key (``unique``), and a neighbour's
key is a constant step from its point's, looked up in the sorted keys (``find``). The numbering
changes no result, only speed.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _bits(count: int) -> int:
    """Bits that hold the numbers 0 .. count - 1."""
    return max(count - 1, 0).bit_length()


class LatticeKeys:
    """Lattice points packed into int64 keys: the remainder r (every coordinate of a lattice point
    is r mod d + 1) in the lowest bits, then the quotients of d of the d + 1 coordinates (the last
    follows from sum = 0), each offset to be >= 0 with a margin of one step so that a neighbour
    packs without aliasing, then the image index.

    Which coordinates are stored, and in what order, changes no result, only speed: the one that
    changes least often from pixel to pixel is the most significant, so neighbouring pixels get
    nearby lattice indices (the NumPy version does the same).
    """

    def __init__(self, quotient: Tensor, n_images: int) -> None:
        d1 = quotient.shape[0]
        changes = (quotient[:, 1:] != quotient[:, :-1]).sum(dim=1).cpu()
        self.coordinates = torch.argsort(changes, stable=True)[:-1].flip(0).tolist()
        stored = quotient[self.coordinates]
        self.low = (stored.amin(dim=1) - 2).tolist()
        spans = (stored.amax(dim=1) + 2).tolist()
        self.remainder_bits = _bits(d1)
        self.shifts, shift = [], self.remainder_bits
        for low, high in zip(self.low, spans, strict=True):
            self.shifts.append(shift)
            shift += _bits(high - low)
        self.image_shift = shift
        self.bits = shift + _bits(n_images)
        if self.bits > 62:
            raise ValueError(
                "features span too wide a range for a 64-bit lattice key; rescale them"
            )

    def corners(self, quotient: Tensor, rank: Tensor, image_index: Tensor | None) -> Tensor:
        """Keys (d + 1, P) of every point's simplex corners. Corner r is ``rem0 +
        canonical_r[rank]``: remainder r, and one quotient step down where rank > d - r."""
        d = quotient.shape[0] - 1
        base = torch.zeros_like(quotient[0])
        if image_index is not None:
            base += image_index << self.image_shift
        for coordinate, low, shift in zip(self.coordinates, self.low, self.shifts, strict=True):
            base += (quotient[coordinate] - low) << shift
        keys = [base]
        for r in range(1, d + 1):
            step_down = torch.zeros_like(base)
            for coordinate, shift in zip(self.coordinates, self.shifts, strict=True):
                step_down += (rank[coordinate] > d - r).to(torch.int64) << shift
            keys.append(base + r - step_down)
        return torch.stack(keys)

    def neighbour_steps(self, keys: Tensor, direction: int) -> Tensor:
        """What to add to each key to get its neighbour ``x - (1, ..., 1) + (d + 1) e_j`` along
        direction j: remainder r - 1 and quotient + e_j, or, from r = 0, remainder d and every
        quotient one lower, + e_j."""
        d = len(self.coordinates)
        own = (
            1 << self.shifts[self.coordinates.index(direction)]
            if direction in self.coordinates
            else 0
        )
        every_field = sum(1 << shift for shift in self.shifts)
        remainder = keys & ((1 << self.remainder_bits) - 1)
        return torch.where(remainder == 0, d - every_field + own, own - 1)


def unique(keys: Tensor, bits: int) -> tuple[Tensor, Tensor, Tensor | None]:
    """Sorted unique keys, the index of each key among them, and (for few-bit keys) a table from
    key to index (-1 where absent). A table over all possible keys needs no sort."""
    if 1 << bits <= max(4 * keys.numel(), 1 << 20):
        present = torch.zeros(1 << bits, dtype=torch.bool, device=keys.device)
        present[keys] = True
        table = torch.cumsum(present, dim=0) - 1
        table[~present] = -1
        return torch.nonzero(present).squeeze(1), table[keys], table
    unique_keys, inverse = torch.unique(keys, sorted=True, return_inverse=True)
    return unique_keys, inverse, None


def find(unique_keys: Tensor, queries: Tensor, table: Tensor | None) -> Tensor:
    """Index of each query among the sorted unique keys, or -1 where absent."""
    if table is not None:
        return table[queries]
    found = torch.searchsorted(unique_keys, queries).clamp_(max=len(unique_keys) - 1)
    return torch.where(unique_keys[found] == queries, found, -1)
