"""Generations that wait for the GPU at the same time share one pipeline call.

The web app lets up to ``GEMPIX_MAX_BATCH`` generations into the studio at once, and each asks
``Coalescer.draw`` for its images. Whoever gets the GPU next takes the waiting plans of its own
shape with it (``batching.group``: same size, steps, guidance; at most ``max_batch`` images)
and renders them in one call; the others find their images ready when their turn comes (the
group-commit pattern of databases). A plan that waits alone runs exactly as before
(``generate.run``, with its previews); batched calls show progress, not previews (one call's
preview strip would show one person's images to another).

A batched call that fails, for instance because one of its requests was cancelled (the web
app cancels by raising from the progress callback), is redone one request at a time, so each
request gets its own outcome and a cancel never costs someone else their image.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from typing import Any

from . import generate
from .batching import batch_key, group, run_batched
from .models import LoadedModel
from .request import Plan
from .upscale import Upscaler

log = logging.getLogger("gempix.coalesce")


@dataclasses.dataclass(eq=False)
class _Ticket:
    loaded: LoadedModel
    plan: Plan
    progress: generate.Progress | None
    upscaler: Upscaler | None
    on_preview: Any
    images: list | None = None
    error: BaseException | None = None
    done: bool = False

    @property
    def shareable(self) -> bool:
        """IP-Adapter embeddings are per call, so no plan shares a call once one is loaded."""
        return batch_key(self.plan) is not None and self.loaded.adapters is None


class Coalescer:
    """One per studio: the GPU's waiting line, batching what arrives together."""

    def __init__(self, max_batch: int):
        self.max_batch = max_batch
        self._waiting: list[_Ticket] = []
        self._waiting_lock = threading.Lock()
        self._gpu = threading.Lock()

    def draw(
        self,
        loaded: LoadedModel,
        plan: Plan,
        progress: generate.Progress | None = None,
        upscaler: Upscaler | None = None,
        on_preview: Any = None,
    ) -> list:
        """``generate.run(loaded, plan, ...)``, possibly in one call with other waiting plans."""
        ticket = _Ticket(loaded, plan, progress, upscaler, on_preview)
        with self._waiting_lock:
            self._waiting.append(ticket)
        with self._gpu:
            if not ticket.done:
                self._run(self._take(ticket))
        if ticket.error is not None:
            raise ticket.error
        return ticket.images

    def exclusive(self) -> threading.Lock:
        """The GPU itself, for work that is not a generation (upscaling a saved image)."""
        return self._gpu

    def waiting(self) -> int:
        with self._waiting_lock:
            return len(self._waiting)

    def _take(self, ticket: _Ticket) -> list[_Ticket]:
        """``ticket`` and the waiting tickets that can share its call, out of the line."""
        with self._waiting_lock:
            batch = [ticket]
            if ticket.shareable:
                others = [
                    other
                    for other in self._waiting
                    if other is not ticket and other.loaded is ticket.loaded and other.shareable
                ]
                candidates = [ticket, *others]
                first_group = group([each.plan for each in candidates], self.max_batch)[0]
                batch = [candidates[index] for index in first_group]
            for member in batch:
                self._waiting.remove(member)
        return batch

    def _run(self, batch: list[_Ticket]) -> None:
        if len(batch) > 1:
            first = batch[0]
            try:
                drawn = run_batched(
                    first.loaded,
                    [member.plan for member in batch],
                    self.max_batch,
                    progress=lambda index: batch[index].progress,
                    upscaler=first.upscaler,
                )
            except BaseException as error:  # a cancel too: each request is redone on its own
                log.info("a batch of %d failed (%r); running them one by one", len(batch), error)
            else:
                for member, images in zip(batch, drawn, strict=True):
                    member.images, member.done = images, True
                return
        for member in batch:
            self._run_alone(member)

    @staticmethod
    def _run_alone(ticket: _Ticket) -> None:
        try:
            ticket.images = generate.run(
                ticket.loaded,
                ticket.plan,
                ticket.progress,
                upscaler=ticket.upscaler,
                on_preview=ticket.on_preview,
            )
        except BaseException as error:  # handed to the request's own thread, re-raised there
            ticket.error = error
        finally:
            ticket.done = True
