"""MinHash sketches of article texts for near-duplicate detection. Pure: no I/O.

A text, as the token lines of :func:`workers.textnorm.token_lines`, becomes a set of
shingles (runs of :data:`SHINGLE` consecutive tokens), the set a MinHash signature
(datasketch), and two signatures an estimate of the Jaccard similarity J of the two sets.
Locality-sensitive hashing cuts the signature into bands: two texts share at least one band
with probability ``1 - (1 - J**rows)**bands``, which lets an index find candidates in
constant time.

Only *prose lines* are shingled. What extraction leaves of a site's chrome (menus, share
buttons, bylines, "read more", headings) comes in short lines, and two different articles of
one site share all of it: shingled, it would make them look alike, and a re-templated copy of
one article look different. A line of fewer than :data:`MIN_LINE_WORDS` words is not prose.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from datasketch import MinHash

from workers.textnorm import word_count

NUM_PERM = 128
"""Permutations per signature: the standard error of a Jaccard estimate is
``sqrt(J(1-J)/NUM_PERM)``, 0.04 around the decision threshold."""
SHINGLE = 4
"""Tokens per shingle. Shorter shingles match unrelated texts on common phrases; longer ones
are broken by every light edit (each changed word breaks SHINGLE shingles)."""
MIN_LINE_WORDS = 10
"""Lines of fewer words (:func:`workers.textnorm.word_count`) are not shingled (see the module
docstring), unless the prose lines hold less than :data:`MIN_PROSE_SHARE` of the text's words
(a short text, one without breaks, or one of short lines: results, a list of figures)."""
MIN_PROSE_SHARE = 0.5
"""Below it, the text is its short lines: shingling its few long lines alone made two different
results articles duplicates (similarity 1.0) of each other through the one wire footer they share.
Counted in words, not tokens (a line of Chinese is two tokens a word). On the held-out pairs of
bench/dedup.py: recall 0.969 -> 0.976, still no false positive."""
STORED_BITS = 8
"""Bits kept of each signature value in the index (b-bit MinHash, Li & König 2010): an eighth
of the memory; two unrelated values then agree by chance with probability 2**-8, which
:func:`jaccard` corrects for (a noisier estimate, which the decision does not feel: on the
held-out near-duplicate pairs of bench/dedup.py, F1 0.984 and no false positive, against 0.985
and 0.11% with 16 bits)."""

# The permutations and hashes are part of the stored format: every worker, and every version
# that reads an index written by another, must use the same ones. datasketch draws them from
# this seed.
_PERMUTATIONS = MinHash(num_perm=NUM_PERM, seed=20240611).permutations
_A, _B = (np.ascontiguousarray(row, dtype=np.uint32) for row in _PERMUTATIONS)
_EMPTY = np.uint32(0xFFFFFFFF)  # datasketch's value of a signature with nothing in it
_BLOCK = 4096
_LOW_BITS = np.uint32((1 << STORED_BITS) - 1)


@dataclass(frozen=True, slots=True)
class Sketch:
    """The MinHash of one text: ``signature`` (uint32[NUM_PERM]) and ``size``, the number of
    shingles (0 for a text without tokens, which is never anyone's duplicate)."""

    signature: np.ndarray
    size: int

    def stored(self) -> bytes:
        """The signature as the index keeps it: the low :data:`STORED_BITS` bits, a byte each."""
        return (self.signature & _LOW_BITS).astype(np.uint8).tobytes()


# Odd 32-bit multipliers that combine the token hashes of a shingle into the shingle's hash
# (a polynomial hash, order-sensitive): computed for all shingles at once with numpy.
_MIX = np.array([0x9E3779B1, 0x85EBCA77, 0xC2B2AE3D, 0x27D4EB2F][:SHINGLE], dtype=np.uint64)


def shingles(lines: Sequence[Sequence[str]]) -> np.ndarray:
    """The 32-bit hashes of the shingles of the prose lines among token ``lines`` (a shingle
    that recurs is there as often: a minimum does not care)."""
    # in words, not tokens: a line of Chinese is two tokens a word
    words = [word_count(tokens) for tokens in lines]
    prose = [tokens for tokens, count in zip(lines, words, strict=True) if count >= MIN_LINE_WORDS]
    if sum(count for count in words if count >= MIN_LINE_WORDS) < MIN_PROSE_SHARE * sum(words):
        prose = list(lines)
    tokens = [token for line in prose for token in line]
    if not tokens:
        return np.empty(0, dtype=np.uint32)
    # Token hashes: CRC-32, deterministic across processes (unlike hash()) and a fraction of
    # SHA-1's cost; the affine32 scheme mixes each value with the murmur3 finalizer before
    # permuting, so CRC's linearity does not reach the signature. Two C-level maps: cheaper
    # than a cache lookup per token.
    hashed = map(zlib.crc32, map(str.encode, tokens))
    ids = np.fromiter(hashed, dtype=np.uint64, count=len(tokens))
    # Shingles run across the line breaks between prose lines: the chrome between them is gone.
    n = max(1, len(ids) - SHINGLE + 1)
    width = min(SHINGLE, len(ids))
    hashes: np.ndarray = sum(ids[i : i + n] * _MIX[i] for i in range(width))
    return hashes.astype(np.uint32)  # uint64 products wrap; keep 32 bits


def sketch(lines: Sequence[Sequence[str]]) -> Sketch:
    """MinHash a text given as token lines (see :func:`shingles`).

    datasketch's ``affine32`` scheme computed here for all shingles at once: its
    ``update_batch`` goes through a Python list of the values, several times the cost of
    the arithmetic. A unit test checks the signatures are datasketch's, bit for bit.
    """
    hashes = shingles(lines)
    if hashes.size == 0:
        return Sketch(signature=np.full(NUM_PERM, _EMPTY, dtype=np.uint32), size=0)
    mixed = _fmix32(hashes)
    signature = np.full(NUM_PERM, _EMPTY, dtype=np.uint32)
    # In blocks: a long text would otherwise make a NUM_PERM x shingles temporary of 100s of MB.
    for start in range(0, len(mixed), _BLOCK):
        # One row per permutation: the minimum is then taken along contiguous memory.
        permuted = np.multiply.outer(_A, mixed[start : start + _BLOCK])  # uint32: mod 2**32
        permuted += _B[:, np.newaxis]  # in place: another temporary costs as much as the sum
        np.minimum(signature, permuted.min(axis=1), out=signature)
    return Sketch(signature=signature, size=len(hashes))


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer, the pre-mix of datasketch's affine32 scheme."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def jaccard(new: Sketch, stored: bytes) -> float:
    """Estimated Jaccard similarity of ``new`` and a signature kept by :meth:`Sketch.stored`."""
    low = np.frombuffer(stored, dtype=np.uint8)
    agree = float(np.count_nonzero((new.signature & _LOW_BITS) == low)) / NUM_PERM
    chance = 2.0**-STORED_BITS
    return max(0.0, (agree - chance) / (1.0 - chance))


def band_keys(sk: Sketch, bands: int, rows: int) -> list[bytes]:
    """One 8-byte key per LSH band; texts that share a key are near-duplicate candidates.

    The band number is hashed in, so equal values in different bands do not meet.
    """
    if bands * rows > NUM_PERM:
        raise ValueError(f"{bands} bands x {rows} rows exceed {NUM_PERM} permutations")
    if sk.size == 0:
        return []
    values = sk.signature.astype("<u4")
    return [
        hashlib.blake2b(
            values[b * rows : (b + 1) * rows].tobytes(), digest_size=8, salt=b.to_bytes(2, "big")
        ).digest()
        for b in range(bands)
    ]


def content_fingerprint(tokens: Sequence[str], unmatched: str = "") -> bytes:
    """8 bytes that identify a text's normalised token sequence: equal for texts that differ
    only in case, accents, spacing, punctuation or Arabic spelling variants.

    ``unmatched``: the rest of a text longer than matching reads (:func:`workers.textnorm.matched_text`
    gave the tokens), hashed as it is: an edit there still makes a re-crawl an update, not
    ``unchanged``. (A lone surrogate, which a JSON escape can put in a text, is hashed, not refused.)"""
    digest = hashlib.blake2b("\x1f".join(tokens).encode(), digest_size=8)
    if unmatched:
        digest.update(b"\x1e" + unmatched.encode("utf-8", "surrogatepass"))
    return digest.digest()
