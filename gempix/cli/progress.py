"""A terminal progress bar fed by the engine's ``progress(done, total, stage)`` callback."""

from __future__ import annotations

from tqdm import tqdm


class ProgressBar:
    """One bar per stage ("denoise", "upscale"), on stderr, hidden when not a terminal."""

    def __init__(self) -> None:
        self._bar: tqdm | None = None
        self._stage = ""

    def __call__(self, done: int, total: int, stage: str) -> None:
        if self._bar is None or stage != self._stage or total != self._bar.total:
            self.close()
            self._stage = stage
            self._bar = tqdm(total=total, desc=stage, unit="step", leave=False, disable=None)
        self._bar.n = done
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
