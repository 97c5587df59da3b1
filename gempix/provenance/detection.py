"""Finding the watermark in any copy: undo the resize and the crop, then read the bits.

1. Work on brightness, with big images first shrunk by a whole factor to about 1024 px.
2. Whiten: subtract a 7 x 7 local mean, divide by the local spread and clip, so the host
   picture's edges do not drown the faint pattern.
3. Period: the pattern repeats every tile, so the autocorrelation of the whitened image peaks
   at the tile's size in pixels, whatever resize the copy went through. Its strongest local
   maxima are the candidates (JPEG's 8 px block grid makes peaks too; step 4 tells them
   apart), with the peaks of each axis paired for a copy stretched to another aspect ratio,
   and the usual resize factors of the image's own size.
4. For each candidate, fold the image onto one tile (average every pixel into its position
   modulo the period) and correlate the fold with the known sync cells in all 8 flips and
   quarter turns. A true period gives one sharp peak; its height in standard deviations of
   the correlation surface is the ``score``. The peak's position is the crop offset.
5. Read the 192 data cells of the aligned fold and decode the message (``payload.py``).

A mark counts as found only when the score clears ``MIN_SCORE`` *and* the decoded message
passes its header and CRC check. Unmarked images score 4-6 (benchmarks/bench_provenance.py).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image

from . import layout, payload

WORK_SIZE = 1024  # larger images are reduced by a whole factor to about this short side
MIN_LAG = 16  # shortest tile period searched (a 128 px tile shrunk to 1/8)
CANDIDATES = 12
AXIS_CANDIDATES = 4  # per axis, for copies resized to another aspect ratio
USUAL_SCALES = (1.0, 3 / 4, 2 / 3, 1 / 2, 1 / 3, 1 / 4)
MIN_SCORE = 6.0
CLIP = 2.0
FOLD = layout.GRID * layout.MIN_CELL  # the fold's resolution: 128 x 128 bins


@dataclasses.dataclass(frozen=True)
class Detection:
    """What the detector saw: ``identifier`` is set only when a mark was found."""

    found: bool
    identifier: int | None
    score: float  # sync peak height in standard deviations (unmarked images: about 4-6)
    period: tuple[float, float] | None = None  # tile size in pixels (x, y) in the analysed copy


def _box_mean(values: np.ndarray, radius: int) -> np.ndarray:
    side = 2 * radius + 1
    padded = np.pad(
        values.astype(np.float64), ((radius + 1, radius), (radius + 1, radius)), "reflect"
    )
    sums = padded.cumsum(0).cumsum(1)
    window = sums[side:, side:] - sums[:-side, side:] - sums[side:, :-side] + sums[:-side, :-side]
    return (window / (side * side)).astype(np.float32)


def whiten(luma: np.ndarray) -> np.ndarray:
    residual = luma - _box_mean(luma, 3)
    spread = np.sqrt(np.maximum(_box_mean(residual * residual, 6), 0.0)) + 1.0
    return np.clip(residual / spread, -CLIP, CLIP)


def _autocorrelation(residual: np.ndarray) -> np.ndarray:
    spectrum = np.fft.rfft2(residual)
    power = np.fft.irfft2(spectrum * np.conj(spectrum), s=residual.shape)
    return power / max(float(power[0, 0]), 1e-12)


def _peaks(curve: np.ndarray, low: int, high: int) -> list[int]:
    lags = [
        lag
        for lag in range(max(low, 1), min(high, curve.size - 1))
        if curve[lag] >= curve[lag - 1] and curve[lag] >= curve[lag + 1]
    ]
    return sorted(lags, key=lambda lag: -curve[lag])[:CANDIDATES]


def _parabola_peak(curve: np.ndarray, near: float) -> float | None:
    """Sub-pixel position of the highest point within 2 px of ``near`` (None at the edge)."""
    centre = int(round(near))
    if centre - 3 < 0 or centre + 3 >= curve.size:
        return None
    index = centre - 2 + int(np.argmax(curve[centre - 2 : centre + 3]))
    before, peak, after = curve[index - 1], curve[index], curve[index + 1]
    bend = before - 2 * peak + after
    return index + (float(np.clip(0.5 * (before - after) / bend, -1, 1)) if bend else 0.0)


def _refine(curve: np.ndarray, lag: int) -> float:
    """Sub-pixel period: fit the peak at ``lag``, then at twice, four times... the period
    while it fits in ``curve``, dividing back (the error shrinks with the multiple)."""
    period = _parabola_peak(curve, lag) or float(lag)
    multiple = 2
    while (peak := _parabola_peak(curve, multiple * period)) is not None:
        period, multiple = peak / multiple, multiple * 2
    return period


def _fold(residual: np.ndarray, period_y: float, period_x: float) -> np.ndarray:
    height, width = residual.shape
    rows = np.floor((np.arange(height) % period_y) * FOLD / period_y).astype(np.int64)
    cols = np.floor((np.arange(width) % period_x) * FOLD / period_x).astype(np.int64)
    bins = (np.minimum(rows, FOLD - 1)[:, None] * FOLD + np.minimum(cols, FOLD - 1)).ravel()
    sums = np.bincount(bins, weights=residual.ravel(), minlength=FOLD * FOLD)
    counts = np.bincount(bins, minlength=FOLD * FOLD)
    return (sums / np.maximum(counts, 1)).reshape(FOLD, FOLD)


def _orientations(fold: np.ndarray):
    for turned in (fold, fold.T):
        yield from (turned, turned[::-1], turned[:, ::-1], turned[::-1, ::-1])


def _align(fold: np.ndarray) -> tuple[float, np.ndarray]:
    """The best (score, fold rolled so the tile starts at 0,0) over the 8 orientations."""
    template = np.conj(np.fft.rfft2(whiten(layout.sync_tile(layout.MIN_CELL) * 255)))
    best_score, best = -np.inf, fold
    for candidate in _orientations(fold):
        surface = np.fft.irfft2(np.fft.rfft2(candidate) * template, s=candidate.shape)
        spread = float(surface.std())
        score = (float(surface.max()) - float(surface.mean())) / spread if spread else 0.0
        if score > best_score:
            dy, dx = np.unravel_index(int(np.argmax(surface)), surface.shape)
            best_score, best = score, np.roll(candidate, (-dy, -dx), axis=(0, 1))
    return best_score, best


def _soft_bits(aligned: np.ndarray) -> np.ndarray:
    cell = layout.MIN_CELL
    weighted = aligned * np.tile(layout.bump(cell), (layout.GRID, layout.GRID))
    per_cell = weighted.reshape(layout.GRID, cell, layout.GRID, cell).sum(axis=(1, 3)).ravel()
    return per_cell[layout.data_cells()]


def _factor(image: Image.Image) -> int:
    return max(1, min(image.size) // WORK_SIZE)


def _luma(image: Image.Image) -> np.ndarray:
    factor = _factor(image)
    grey = image.convert("L")
    if factor > 1:
        grey = grey.reduce(factor)
    return np.asarray(grey, np.float32)


def _best_alignment(image: Image.Image) -> tuple[float, np.ndarray | None, tuple | None]:
    """(score, aligned fold, (period x, period y)) of the best candidate period."""
    residual = whiten(_luma(image))
    height, width = residual.shape
    high = min(height, width) // 2
    if high <= MIN_LAG + 2:
        return 0.0, None, None
    correlation = _autocorrelation(residual)
    along_x, along_y = correlation[0, : width // 2], correlation[: height // 2, 0]
    both = along_x[:high] + along_y[:high]
    periods = []
    for lag in _peaks(both, MIN_LAG, high):
        period_x, period_y = _refine(along_x, lag), _refine(along_y, lag)
        if abs(period_x / period_y - 1) > 0.15:  # disagreeing axes: trust the sum of both
            period_x = period_y = _refine(both, lag)
        periods.append((period_x, period_y))
    # A resize that changed the aspect ratio: the strongest peaks of each axis, paired.
    along = [
        [_refine(curve, lag) for lag in _peaks(curve, MIN_LAG, curve.size)[:AXIS_CANDIDATES]]
        for curve in (along_x, along_y)
    ]
    periods += [(x, y) for x in along[0] for y in along[1] if 0.5 <= x / y <= 2]
    # A busy repeating texture can hide the tile's peak; the original size and the usual
    # resize factors are tried exactly as well.
    unresized = layout.GRID * layout.cell_size(*image.size) / _factor(image)
    periods += [
        (unresized * f, unresized * f) for f in USUAL_SCALES if MIN_LAG <= unresized * f < high
    ]
    best: tuple[float, np.ndarray | None, tuple | None] = (0.0, None, None)
    for period_x, period_y in periods:
        score, aligned = _align(_fold(residual, period_y, period_x))
        if best[1] is None or score > best[0]:
            best = (score, aligned, (period_x, period_y))
    return best


def soft_bits(image: Image.Image) -> np.ndarray | None:
    """The 192 coded bits as read at the best alignment, before decoding (> 0 means 1): how
    clean the channel is, for benchmarks/bench_provenance.py."""
    _, aligned, _ = _best_alignment(image)
    return None if aligned is None else _soft_bits(aligned)


def detect(image: Image.Image) -> Detection:
    """Look for a GemPix watermark in ``image`` (any mode, any size)."""
    score, aligned, period = _best_alignment(image)
    if aligned is None:
        return Detection(False, None, 0.0)
    identifier = payload.decode(_soft_bits(aligned)) if score >= MIN_SCORE else None
    return Detection(identifier is not None, identifier, round(float(score), 2), period)
