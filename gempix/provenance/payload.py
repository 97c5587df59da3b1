"""The watermark's 64-bit word: a GemPix header, a 32-bit identifier and a CRC-16.

The header (8 bits "G", 8 bits layout version) and the CRC-16/CCITT over header + identifier
are what make a decoded word trustworthy: 32 check bits, so a random word passes with a
probability of 2**-32. Decoding is soft: each bit arrives as a signed confidence, and when the
hard decision fails the check, the least reliable bits are flipped in turn (Chase decoding,
at most ``2**CHASE_BITS`` candidates), which repairs the few errors a heavily compressed or
resized copy leaves without a full error-correcting code.
"""

from __future__ import annotations

import binascii
import itertools

import numpy as np

WORD_BITS = 64
HEADER = 0x4701  # "G" + layout version 1
MAX_IDENTIFIER = 0xFFFFFFFF
# 8 flips: at most 256 CRC checks, so a random word passes with probability <= 2**-24.
CHASE_BITS = 8


def check_identifier(identifier: object) -> int:
    if isinstance(identifier, bool) or not isinstance(identifier, int):
        raise TypeError(f"identifier: expected an int, got {type(identifier).__name__}")
    if not 0 <= identifier <= MAX_IDENTIFIER:
        raise ValueError(f"identifier: {identifier} is outside 0..{MAX_IDENTIFIER} (32 bits)")
    return identifier


def _crc(body: int) -> int:
    return binascii.crc_hqx(body.to_bytes(6, "big"), 0)


def encode(identifier: int) -> np.ndarray:
    """The 64 bits (0/1, most significant first) that carry ``identifier``."""
    body = (HEADER << 32) | check_identifier(identifier)
    word = (body << 16) | _crc(body)
    return np.array([(word >> (WORD_BITS - 1 - i)) & 1 for i in range(WORD_BITS)], np.int8)


def _identifier(bits: np.ndarray) -> int | None:
    word = int("".join("1" if bit else "0" for bit in bits), 2)
    body, crc = word >> 16, word & 0xFFFF
    if body >> 32 != HEADER or _crc(body) != crc:
        return None
    return body & MAX_IDENTIFIER


def decode(soft: np.ndarray) -> int | None:
    """The identifier from 64 soft bits (> 0 means 1), or None when no word passes the check."""
    hard = (np.asarray(soft) > 0).astype(np.int8)
    weakest = np.argsort(np.abs(soft))[:CHASE_BITS]
    for flips in range(CHASE_BITS + 1):
        for chosen in itertools.combinations(weakest, flips):
            bits = hard.copy()
            bits[list(chosen)] ^= 1
            identifier = _identifier(bits)
            if identifier is not None:
                return identifier
    return None
