"""The watermark's message: a GemPix header, a 32-bit identifier and a CRC-16, coded for noise.

58 bits (10-bit header ``0x2E1``: "GemPix layout 1", the identifier, and a CRC-16/CCITT
over both) go through the rate-1/3, constraint-length-7 convolutional code of
CCSDS/Voyager (generators 171, 133, 165 octal), terminated with 6 zero bits: 192 coded bits,
one per data cell of the tile (``layout.py``). Decoding is soft-decision Viterbi, which
corrects errors a plain repetition cannot (free distance 15). A decoded word counts only when
its header and CRC match: 26 check bits, so a random word passes with probability 2**-26.
"""

from __future__ import annotations

import binascii
import functools

import numpy as np

HEADER = 0x2E1
HEADER_BITS = 10
ID_BITS = 32
CRC_BITS = 16
MESSAGE_BITS = HEADER_BITS + ID_BITS + CRC_BITS  # 58
MAX_IDENTIFIER = (1 << ID_BITS) - 1
MEMORY = 6  # constraint length 7
GENERATORS = (0o171, 0o133, 0o165)
CODED_BITS = (MESSAGE_BITS + MEMORY) * len(GENERATORS)  # 192
STATES = 1 << MEMORY


def check_identifier(identifier: object) -> int:
    if isinstance(identifier, bool) or not isinstance(identifier, int):
        raise TypeError(f"identifier: expected an int, got {type(identifier).__name__}")
    if not 0 <= identifier <= MAX_IDENTIFIER:
        raise ValueError(f"identifier: {identifier} is outside 0..{MAX_IDENTIFIER} (32 bits)")
    return identifier


def _crc(body: int) -> int:
    return binascii.crc_hqx(body.to_bytes(6, "big"), 0)


def _message(identifier: int) -> list[int]:
    body = (HEADER << ID_BITS) | check_identifier(identifier)
    word = (body << CRC_BITS) | _crc(body)
    return [(word >> (MESSAGE_BITS - 1 - i)) & 1 for i in range(MESSAGE_BITS)]


def _parity(value: int) -> int:
    return bin(value).count("1") & 1


@functools.cache
def _trellis() -> tuple[np.ndarray, np.ndarray]:
    """For each (state, input bit): the next state and the code's output bits as +-1."""
    following = np.zeros((STATES, 2), np.int64)
    outputs = np.zeros((STATES, 2, len(GENERATORS)), np.float64)
    for state in range(STATES):
        for bit in (0, 1):
            register = (bit << MEMORY) | state  # newest bit on top of the 6 remembered ones
            following[state, bit] = register >> 1
            outputs[state, bit] = [2 * _parity(register & g) - 1 for g in GENERATORS]
    return following, outputs


def encode(identifier: int) -> np.ndarray:
    """The 192 coded bits (0/1) that carry ``identifier``."""
    following, outputs = _trellis()
    state, coded = 0, []
    for bit in _message(identifier) + [0] * MEMORY:
        coded += [int(value > 0) for value in outputs[state, bit]]
        state = following[state, bit]
    return np.array(coded, np.int8)


def decode(soft: np.ndarray) -> int | None:
    """The identifier from 192 soft bits (> 0 means 1), or None when the best path fails the
    header or CRC check."""
    following, outputs = _trellis()
    received = np.asarray(soft, np.float64).reshape(-1, len(GENERATORS))
    metric = np.full(STATES, -np.inf)
    metric[0] = 0.0
    history = []
    for step, symbol in enumerate(received):
        gains = metric[:, None] + outputs @ symbol  # (state, bit)
        if step >= MESSAGE_BITS:
            gains[:, 1] = -np.inf  # the tail is all zeros
        best = np.full(STATES, -np.inf)
        origin = np.zeros((STATES, 2), np.int64)  # (previous state, input bit)
        for bit in (0, 1):
            for state in range(STATES):
                target = following[state, bit]
                if gains[state, bit] > best[target]:
                    best[target] = gains[state, bit]
                    origin[target] = (state, bit)
        metric = best
        history.append(origin)
    state, bits = 0, []
    for origin in reversed(history):
        state, bit = origin[state]
        bits.append(int(bit))
    message = bits[::-1][:MESSAGE_BITS]
    word = int("".join(map(str, message)), 2)
    body, crc = word >> CRC_BITS, word & ((1 << CRC_BITS) - 1)
    if body >> ID_BITS != HEADER or _crc(body) != crc:
        return None
    return body & MAX_IDENTIFIER
