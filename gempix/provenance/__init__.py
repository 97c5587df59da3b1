"""Content credentials: a signed C2PA manifest, an invisible watermark, and verification.

Knows nothing of users, databases or torch: callers pass plain facts (``ManifestFacts``),
pictures and bytes. See docs/provenance.md for what each mark is, what removes it, and how
keys are managed.

    prov = Provenance.from_paths(data_dir / "provenance")   # or operator PEM paths
    picture = prov.watermark(picture)                        # 1. pixels
    save_png(picture, path, params, include_prompt,          # 2. encode with metadata
             finish=lambda data: prov.sign(data, facts))     # 3. sign the bytes, last
    verify_image(path).lines()
"""

from .credentials import Credentials, load_credentials, local_credentials, resolve_credentials
from .detection import Detection, detect
from .manifest import Ingredient, ManifestFacts
from .reading import C2paCheck, ManifestSummary
from .signing import media_type, sign
from .stamp import GEMPIX_IDENTIFIER, Provenance
from .verify import VerifyReport, verify_image
from .watermark import embed

__all__ = [
    "GEMPIX_IDENTIFIER",
    "Ingredient",
    "C2paCheck",
    "Credentials",
    "Detection",
    "ManifestFacts",
    "ManifestSummary",
    "Provenance",
    "VerifyReport",
    "detect",
    "embed",
    "load_credentials",
    "local_credentials",
    "media_type",
    "resolve_credentials",
    "sign",
    "verify_image",
]
