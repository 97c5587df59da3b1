"""Reading and validating the C2PA manifest of any image, and walking its chain.

``c2pa.Reader`` validates the signature, the hash of the asset and every assertion. Its
verdict is mapped to four words: ``absent`` (no manifest), ``invalid`` (something failed:
the image or the manifest was changed after signing, or the manifest cannot be parsed),
``untrusted`` (intact, but signed by a certificate no trust anchor vouches for: GemPix's
local CA until an operator supplies a trusted certificate) and ``valid`` (intact and
trusted). The failure codes come along unchanged, as the C2PA specification names them.
"""

from __future__ import annotations

import dataclasses
import io
import json
from typing import Any

import c2pa

from .manifest import GEMPIX_ASSERTION
from .signing import context

UNTRUSTED = "signingCredential.untrusted"
MAX_CHAIN = 16  # manifests followed through ingredients (a hostile file could loop)


@dataclasses.dataclass(frozen=True)
class ManifestSummary:
    """One manifest of the chain, as people want to read it."""

    label: str
    title: str | None
    claim_generator: str | None
    signed_by: str | None
    actions: tuple[str, ...]
    digital_source_types: tuple[str, ...]
    ingredients: tuple[dict[str, Any], ...]  # title, relationship, manifest (label or None)
    training_mining: dict[str, Any] | None
    gempix: dict[str, Any] | None


@dataclasses.dataclass(frozen=True)
class C2paCheck:
    status: str  # absent, invalid, untrusted or valid
    codes: tuple[str, ...] = ()  # C2PA failure codes, e.g. assertion.dataHash.mismatch
    message: str = ""
    chain: tuple[ManifestSummary, ...] = ()  # the active manifest first, then its sources


def read_c2pa(data: bytes, media_type: str, trust_anchors: str | None = None) -> C2paCheck:
    try:
        with c2pa.Reader(media_type, io.BytesIO(data), context=context(trust_anchors)) as reader:
            store = json.loads(reader.json())
    except c2pa.C2paError.ManifestNotFound:
        return C2paCheck("absent", message="No C2PA manifest.")
    except c2pa.C2paError.NotSupported:
        return C2paCheck("absent", message=f"C2PA is not defined for {media_type} files.")
    except c2pa.C2paError as error:
        return C2paCheck("invalid", message=f"The C2PA manifest cannot be read: {error}")
    codes = _failure_codes(store.get("validation_results") or {})
    state = store.get("validation_state")
    if state == "Trusted" or (state == "Valid" and UNTRUSTED not in codes):
        status, message = "valid", "Signed, intact, and the signer is trusted."
    elif state == "Valid":
        status = "untrusted"
        message = "Signed and intact, but the signer's certificate is not on a trust list."
    else:
        status, message = "invalid", "The image or its manifest changed after signing."
    return C2paCheck(status, codes, message, _chain(store))


def _failure_codes(results: dict[str, Any]) -> tuple[str, ...]:
    failures = list((results.get("activeManifest") or {}).get("failure") or [])
    for delta in results.get("ingredientDeltas") or []:
        failures += (delta.get("validationDeltas") or {}).get("failure") or []
    return tuple(dict.fromkeys(str(item.get("code")) for item in failures))


def _chain(store: dict[str, Any]) -> tuple[ManifestSummary, ...]:
    manifests = store.get("manifests") or {}
    chain, seen, pending = [], set(), [store.get("active_manifest")]
    while pending and len(chain) < MAX_CHAIN:
        label = pending.pop(0)
        if label in seen or label not in manifests:
            continue
        seen.add(label)
        summary = _summary(label, manifests[label])
        chain.append(summary)
        pending += [item["manifest"] for item in summary.ingredients if item["manifest"]]
    return tuple(chain)


def _summary(label: str, manifest: dict[str, Any]) -> ManifestSummary:
    assertions = {item.get("label"): item.get("data") for item in manifest.get("assertions") or []}
    actions = [
        action
        for key in ("c2pa.actions.v2", "c2pa.actions")
        for action in (assertions.get(key) or {}).get("actions") or []
    ]
    generator = manifest.get("claim_generator_info") or [{}]
    name = " ".join(str(generator[0].get(key, "")) for key in ("name", "version")).strip()
    signature = manifest.get("signature_info") or {}
    return ManifestSummary(
        label=label,
        title=manifest.get("title"),
        claim_generator=name or manifest.get("claim_generator"),
        signed_by=signature.get("common_name") or signature.get("issuer"),
        actions=tuple(str(action.get("action")) for action in actions),
        digital_source_types=tuple(
            dict.fromkeys(a["digitalSourceType"] for a in actions if a.get("digitalSourceType"))
        ),
        ingredients=tuple(
            {
                "title": item.get("title"),
                "relationship": item.get("relationship"),
                "manifest": item.get("active_manifest"),
            }
            for item in manifest.get("ingredients") or []
        ),
        training_mining=assertions.get("c2pa.training-mining"),
        gempix=assertions.get(GEMPIX_ASSERTION),
    )
