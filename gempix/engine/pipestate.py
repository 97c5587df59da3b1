"""What GemPix remembers about each loaded pipeline: memory mode, compiled shapes, VAE upcast.

Kept beside the pipeline, weakly (it goes when the pipeline goes), so that diffusers' objects
stay as diffusers made them. ``memory``, ``fastpaths`` and ``pipeline`` each keep their part.
"""

from __future__ import annotations

import dataclasses
import threading
import weakref


@dataclasses.dataclass
class PipeState:
    mode: str = "high"  # the memory mode applied (memory.apply_mode)
    compiled: bool = False  # the denoiser is torch.compile'd (fastpaths.fast_paths)
    shapes: set = dataclasses.field(default_factory=set)  # shape keys compiled or announced
    vae_upcast: bool = False  # a float16 decode overflowed once: decode in float32 from now on
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)


_STATES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_STATES_LOCK = threading.Lock()


def state_of(pipe) -> PipeState:
    with _STATES_LOCK:
        found = _STATES.get(pipe)
        if found is None:
            found = _STATES[pipe] = PipeState()
        return found
