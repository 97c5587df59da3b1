"""IP-Adapter: style reference images and consistent characters (docs/characters.md).

One loaded pipeline carries up to two IP-Adapters, in fixed slot order (``KINDS``): ``style``,
the plain adapter on the UNet's style block only (InstantStyle, ``style_scales``), and
``character``, the "plus" (or "plus-face") adapter. Loaded once per pipeline and kept; a
generation that uses neither passes zero embeddings at scale 0, so nothing is ever reloaded.
One module per job: ``limits``, ``loading``, ``embeddings``, ``conditioning``, ``storage``.

Threading: ``ensure_adapters`` takes ``loaded.lock`` itself when it has to load, so call it
*before* entering ``with loaded.lock``; ``set_scales`` and ``pipeline_kwargs`` change the shared
pipeline: call them under ``loaded.lock``, together with the pipeline call.
"""

from .conditioning import (
    Conditioning,
    pipeline_kwargs,
    prepare_ip_embeds,
    set_scales,
    style_scales,
)
from .embeddings import ReferenceEmbeddings, consistency_score, embed_images, embeddings_match
from .limits import KINDS, MAX_REFERENCES, MAX_STRENGTH, check_references, check_strength
from .loading import ensure_adapters
from .storage import embeddings_from_bytes, embeddings_to_bytes

__all__ = [
    "KINDS",
    "MAX_REFERENCES",
    "MAX_STRENGTH",
    "Conditioning",
    "ReferenceEmbeddings",
    "check_references",
    "check_strength",
    "consistency_score",
    "embed_images",
    "embeddings_from_bytes",
    "embeddings_match",
    "embeddings_to_bytes",
    "ensure_adapters",
    "pipeline_kwargs",
    "prepare_ip_embeds",
    "set_scales",
    "style_scales",
]
