"""Where the watermark's bits live: one square tile of 16 x 16 cells, repeated over the image.

A cell is a smooth bump (a sine window, so neighbouring cells of opposite sign blend instead
of drawing a grid) multiplied by +1 or -1. Of the 256 cells, 64 form a fixed pseudo-random
*sync* pattern that lets the detector find the tile's position after a crop, and 192 carry
the 192 coded bits of the message (``payload.py``), in a scattered order so that a damaged
region hits bits far apart in the code.
The layout is derived from a fixed public seed: anyone can read the mark, which is the point
of a disclosure (see docs/provenance.md for what this means for forgery and removal).
"""

from __future__ import annotations

import functools

import numpy as np

GRID = 16  # cells per tile side
CELLS = GRID * GRID
SYNC_CELLS = 64
LAYOUT_SEED = 0x47504D31  # "GPM1"
MIN_CELL = 8  # pixels per cell side at least; larger images get larger cells


@functools.cache
def _layout() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(LAYOUT_SEED)
    order = rng.permutation(CELLS)
    sync_signs = rng.choice(np.array([-1.0, 1.0], np.float32), SYNC_CELLS)
    return order[:SYNC_CELLS], sync_signs, order[SYNC_CELLS:]


def sync_cells() -> tuple[np.ndarray, np.ndarray]:
    """Indices of the sync cells (row-major in the tile) and their fixed signs."""
    cells, signs, _ = _layout()
    return cells, signs


def data_cells() -> np.ndarray:
    """Index of the cell carrying each coded bit, in code order."""
    return _layout()[2]


@functools.cache
def bump(cell: int) -> np.ndarray:
    """A ``cell`` x ``cell`` sine window, 1 in the middle, near 0 at the edges."""
    window = np.sin(np.pi * (np.arange(cell) + 0.5) / cell).astype(np.float32)
    return np.outer(window, window)


def cell_size(width: int, height: int) -> int:
    """Cell side for an image: 8 px up to 2047 px, then 1/128 of the short side, so a 4K image
    shrunk to a quarter for sharing still has cells of 4 px."""
    return max(MIN_CELL, min(width, height) // 128)


def tile(cell_signs: np.ndarray, cell: int) -> np.ndarray:
    """The tile (``GRID * cell`` px square) for 256 cell signs in row-major order."""
    return np.kron(cell_signs.reshape(GRID, GRID).astype(np.float32), bump(cell))


def payload_tile(coded: np.ndarray, cell: int) -> np.ndarray:
    """The tile carrying 192 coded bits (0/1) beside the sync cells."""
    signs = np.zeros(CELLS, np.float32)
    cells, sync = sync_cells()
    signs[cells] = sync
    signs[data_cells()] = 2.0 * coded - 1.0
    return tile(signs, cell)


def sync_tile(cell: int) -> np.ndarray:
    signs = np.zeros(CELLS, np.float32)
    cells, sync = sync_cells()
    signs[cells] = sync
    return tile(signs, cell)
