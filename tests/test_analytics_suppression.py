"""k-anonymity with secondary suppression, tried on random tables by hypothesis.

The checker is independent of the code under test: exact rational Gaussian elimination over
the table's equations (each row and column of cells sums to its total) decides whether a
hidden cell's value follows from the published values.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from gempix.analytics import suppress


def determined(hidden: np.ndarray) -> list[tuple[int, int]]:
    """Hidden cells whose value the published cells fix (the last row/column are totals)."""
    rows, cols = hidden.shape
    unknowns = [(int(r), int(c)) for r, c in zip(*np.nonzero(hidden), strict=True)]
    index = {cell: n for n, cell in enumerate(unknowns)}
    lines = [[(r, c) for c in range(cols)] for r in range(rows)]
    lines += [[(r, c) for r in range(rows)] for c in range(cols)]
    matrix = []
    for line in lines:  # interior cells minus the total cell = 0; unknowns on the left
        equation = [Fraction(0)] * len(unknowns)
        for r, c in line:
            if (r, c) in index:
                is_total = r == rows - 1 or c == cols - 1
                equation[index[(r, c)]] = Fraction(-1 if is_total and line[-1] == (r, c) else 1)
        matrix.append(equation)
    pivot_rows = _reduced_row_echelon(matrix, len(unknowns))
    return [unknowns[col] for col, row in pivot_rows if sum(x != 0 for x in row) == 1]


def _reduced_row_echelon(matrix, width):
    """(pivot column, row) pairs of the reduced row echelon form, exactly."""
    rows = [list(row) for row in matrix]
    pivots = []
    top = 0
    for col in range(width):
        pick = next((r for r in range(top, len(rows)) if rows[r][col] != 0), None)
        if pick is None:
            continue
        rows[top], rows[pick] = rows[pick], rows[top]
        lead = rows[top][col]
        rows[top] = [x / lead for x in rows[top]]
        for r in range(len(rows)):
            if r != top and rows[r][col] != 0:
                factor = rows[r][col]
                rows[r] = [a - factor * b for a, b in zip(rows[r], rows[top], strict=True)]
        pivots.append((col, top))
        top += 1
    return [(col, rows[r]) for col, r in pivots]


@st.composite
def tables(draw):
    """Events and visitors of an R x C table plus totals, shaped like real usage counts."""
    rows, cols = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    cells = st.lists(st.integers(0, 24), min_size=rows * cols, max_size=rows * cols)
    visitors = np.array(draw(cells), dtype=np.int64).reshape(rows, cols)
    extra = np.array(draw(st.lists(st.integers(0, 9), min_size=rows * cols, max_size=rows * cols)))
    events = np.where(visitors > 0, visitors + extra.reshape(rows, cols), 0)

    def distinct(values: np.ndarray) -> int:  # distinct visitors over cells: max..sum
        return draw(st.integers(int(values.max(initial=0)), int(values.sum())))

    all_visitors = np.zeros((rows + 1, cols + 1), dtype=np.int64)
    all_visitors[:rows, :cols] = visitors
    all_visitors[:rows, cols] = [distinct(visitors[r]) for r in range(rows)]
    all_visitors[rows, :cols] = [distinct(visitors[:, c]) for c in range(cols)]
    all_visitors[rows, cols] = distinct(all_visitors[:rows, cols])
    all_events = np.zeros_like(all_visitors)
    all_events[:rows, :cols] = events
    all_events[:rows, cols] = events.sum(axis=1)
    all_events[rows, :] = all_events[:rows, :].sum(axis=0)
    return all_events, all_visitors, draw(st.integers(5, 12))


@settings(max_examples=200, deadline=None)
@given(tables())
def test_suppression_properties(table):
    events, visitors, k = table
    hidden = suppress(events, visitors, k)
    exists = events > 0
    # Every published cell counts at least k distinct visitors; only existing cells hide.
    assert (visitors[exists & ~hidden] >= k).all()
    assert not (hidden & ~exists).any()
    # Secondary suppression: no row or column (its total included) hides exactly one cell...
    for line in [*hidden, *hidden.T]:
        assert line.sum() != 1
    # ...and, stronger, no hidden value follows from the published cells and totals.
    assert determined(hidden) == []
    # Nothing is hidden when nothing needed to be.
    if not (exists & (visitors < k)).any():
        assert not hidden.any()


def test_a_lone_small_cell_takes_a_rectangle_with_it():
    visitors = np.array([[12, 3, 20, 30], [11, 15, 25, 40], [12, 15, 25, 40]])
    events = np.array([[12, 3, 20, 35], [11, 15, 25, 51], [23, 18, 45, 86]])
    hidden = suppress(events, visitors, 10)
    assert hidden.tolist() == [
        [True, True, False, False],
        [True, True, False, False],
        [False, False, False, False],
    ]  # (0,1) is primary; (0,0), (1,0), (1,1) are the cheapest rectangle through it


def test_rows_and_columns_with_two_hidden_cells_can_still_leak():
    # Two hidden 2x2 blocks joined by one hidden cell: every row and column hides 0 or >= 2
    # cells, yet the joining cell equals (rows 0-1 total) - (columns 0-1 total) of the hidden
    # parts. The line rule alone would publish this; suppress() must hide more.
    size = 5
    primary = np.zeros((size, size), dtype=bool)
    for r, c in [(0, 0), (0, 1), (1, 0), (1, 1), (2, 2), (2, 3), (3, 2), (3, 3), (1, 2)]:
        primary[r, c] = True
    assert all(line.sum() != 1 for line in [*primary, *primary.T])
    assert determined(primary) == [(1, 2)]
    visitors = np.where(primary, 2, 50)
    events = visitors.copy()
    events[:, -1] = events[:, :-1].sum(axis=1)
    events[-1, :] = events[:-1, :].sum(axis=0)
    visitors[:, -1], visitors[-1, :] = 60, 60
    hidden = suppress(events, visitors, 10)
    assert determined(hidden) == [] and hidden.sum() > primary.sum()
