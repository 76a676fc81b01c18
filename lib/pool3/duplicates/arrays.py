"""Near duplicates of the driver's float32 feature array: the LSH of :mod:`.lsh`, in numpy.

When a driver solver already holds the rows as one array (:mod:`pool3.training.table.data`),
the same search runs there instead of as Spark joins: the same hyperplanes (drawn from
the seed), keys, bands, bucket limit, signature estimate and exact check, so it finds the
same pairs (up to float32 rounding at the threshold). Per band the rows are sorted by key;
the buckets of each size are expanded into pairs at once (``triu_indices``), their
signatures' Hamming distance (bits set in the XOR of the packed bits) gives the estimate,
the pairs that pass it are de-duplicated across bands as ``i * n + j`` codes, and only
those pairs' features are multiplied. Memory: the signatures (~70 bytes a row), the candidate codes,
and the rows' ``path, label, is_test`` as dicts (a few hundred bytes a row).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from pool3.duplicates import lsh
from pool3.duplicates.lsh import ANGLE_SIGMAS, BANDS, BITS, NearPairs, near_result

#: rows signed at once (a block's centred copy and its products stay ~100 MB)
_BLOCK = 8192
#: bits set in each byte value (numpy 1.x has no bitwise_count)
_POPCOUNT = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).sum(axis=1)
#: candidate pairs estimated at once
_CHUNK = 1 << 20
#: candidate pairs whose features are multiplied at once (2 x 4096 x 2048 x 8 B = 134 MB)
_CHECK = 4096


@dataclass(frozen=True)
class Signatures:
    """Per row: the packed sign bits of its centred features, ``norm`` = |x|, ``cnorm`` =
    |x - mean|, ``dmean`` = x . mean (float64); and the mean."""

    packed: np.ndarray
    norm: np.ndarray
    cnorm: np.ndarray
    dmean: np.ndarray
    mean: np.ndarray

    def keys(self) -> np.ndarray:
        """(n, BANDS) int64: each band's BITS sign bits as one key."""
        bits = np.unpackbits(self.packed, axis=1)[:, : BANDS * BITS]
        weights = (1 << np.arange(BITS, dtype=np.int64)).astype(np.int64)
        return bits.reshape(len(bits), BANDS, BITS).astype(np.int64) @ weights


def hyperplanes(seed: int, dim: int) -> np.ndarray:
    """The LSH hyperplanes (dim, BANDS * BITS) float32, drawn from ``seed`` (PCG64 gives the
    same matrix everywhere, so workers make it instead of receiving it)."""
    return np.random.default_rng(seed).standard_normal((dim, BANDS * BITS)).astype(np.float32)


def sign_block(
    X: np.ndarray, mean: np.ndarray, planes: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(packed bits, norm, cnorm, dmean)`` of a block of rows (float32)."""
    centred = X - mean
    return (
        np.packbits(centred @ planes > 0, axis=1),
        np.linalg.norm(X, axis=1).astype(np.float64),
        np.linalg.norm(centred, axis=1).astype(np.float64),
        (X @ mean).astype(np.float64),
    )


def _signatures(X: np.ndarray, seed: int) -> Signatures:
    n, dim = X.shape
    total = np.zeros(dim)
    for start in range(0, n, _BLOCK):
        total += X[start : start + _BLOCK].sum(axis=0, dtype=np.float64)
    mean = (total / max(n, 1)).astype(np.float32)
    planes = hyperplanes(seed, dim)
    parts = [sign_block(X[start : start + _BLOCK], mean, planes) for start in range(0, n, _BLOCK)]
    if not parts:
        empty = np.empty(0)
        return Signatures(
            np.empty((0, (BANDS * BITS + 7) // 8), np.uint8), empty, empty, empty, mean
        )
    packed, norm, cnorm, dmean = (np.concatenate(p) for p in zip(*parts, strict=True))
    return Signatures(packed, norm, cnorm, dmean, mean)


def _band_pairs(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Pairs ``(i, j)``, ``i < j``, sharing this band's key in a bucket of at most
    MAX_BUCKET rows, and the rows in larger buckets (not expanded)."""
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    sizes = np.diff(np.r_[starts, len(keys)])
    firsts, seconds = [], []
    limit = lsh.MAX_BUCKET  # read when called: one setting for both searches
    for size in np.unique(sizes[(sizes > 1) & (sizes <= limit)]):
        members = order[starts[sizes == size][:, None] + np.arange(size)]
        a, b = np.triu_indices(int(size), 1)
        firsts.append(members[:, a].ravel())
        seconds.append(members[:, b].ravel())
    oversize = int(sizes[sizes > limit].sum())
    if not firsts:
        return np.empty(0, np.int64), np.empty(0, np.int64), oversize
    i, j = np.concatenate(firsts), np.concatenate(seconds)
    return np.minimum(i, j), np.maximum(i, j), oversize


def _estimate(h: np.ndarray, a: np.ndarray, b: np.ndarray, sig: Signatures) -> Any:
    """:func:`pool3.duplicates.lsh.estimated_cosine` of pairs ``a, b`` (numpy)."""
    n = BANDS * BITS
    p = h / n
    sigma = np.sqrt(p * (1 - p) / n) * math.pi
    angle = np.maximum(0.0, p * math.pi - ANGLE_SIGMAS * sigma)
    mean_sq = float(np.dot(sig.mean.astype(np.float64), sig.mean))
    dot = sig.cnorm[a] * sig.cnorm[b] * np.cos(angle) + sig.dmean[a] + sig.dmean[b] - mean_sq
    return dot / (sig.norm[a] * sig.norm[b])


def candidates(sig: Signatures, threshold: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Pairs ``(a, b)``, ``a < b``, that share a band's key and whose signature estimate
    reaches ``threshold``, each once; and the rows in buckets too large to expand."""
    n = len(sig.norm)
    keys = sig.keys()
    # Per band, only the pairs whose signature estimate reaches the threshold are kept:
    # memory follows one band's candidates, not all bands' (tens of millions at 1M rows).
    codes, unchecked = [], 0
    for band in range(BANDS):
        i, j, oversize = _band_pairs(keys[:, band])
        unchecked += oversize
        for start in range(0, len(i), _CHUNK):
            a, b = i[start : start + _CHUNK], j[start : start + _CHUNK]
            h = _POPCOUNT[sig.packed[a] ^ sig.packed[b]].sum(axis=1, dtype=np.int64)
            keep = _estimate(h, a, b, sig) >= threshold
            codes.append(a[keep] * n + b[keep])
    cand = np.concatenate(codes) if codes else np.empty(0, np.int64)
    cand.sort()  # sort + neighbour test: ~5x faster than np.unique's hashing on int64 codes
    cand = cand[np.r_[True, cand[1:] != cand[:-1]]] if len(cand) else cand
    return cand // max(n, 1), cand % max(n, 1), unchecked


def check(
    a: np.ndarray,
    b: np.ndarray,
    features: Callable[[np.ndarray], np.ndarray],
    norm: np.ndarray,
    same: Callable[[np.ndarray, np.ndarray], np.ndarray],
    threshold: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The candidate pairs whose exact cosine reaches ``threshold`` and that are not the
    same content (``same(a, b)``), with their cosines; ``features(rows)`` gives rows' float32
    features."""
    found_a, found_b, found_c = [], [], []
    for at in range(0, len(a), _CHECK):
        pa, pb = a[at : at + _CHECK], b[at : at + _CHECK]
        xa, xb = features(pa).astype(np.float64), features(pb).astype(np.float64)
        cosine = np.einsum("ij,ij->i", xa, xb) / np.maximum(norm[pa] * norm[pb], 1e-300)
        hit = (cosine >= threshold) & ~same(pa, pb)
        found_a.append(pa[hit])
        found_b.append(pb[hit])
        found_c.append(cosine[hit])
    if not found_a:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0)
    return np.concatenate(found_a), np.concatenate(found_b), np.concatenate(found_c)


def near_pairs_arrays(
    X: np.ndarray, records: list[dict[str, Any]], sha: np.ndarray, threshold: float, seed: int
) -> NearPairs:
    """Near pairs (``kind="near"``) of the rows of ``X`` (float32), ``records[i]`` the
    ``path, label, is_test`` of row ``i`` and ``sha[i]`` its content hash (pairs of one
    content are exact duplicates, not near ones)."""
    sig = _signatures(X, seed)
    a, b, unchecked = candidates(sig, threshold)

    def same(pa: np.ndarray, pb: np.ndarray) -> np.ndarray:
        return np.array(
            [sha[p] is not None and sha[p] == sha[q] for p, q in zip(pa, pb, strict=True)],
            dtype=bool,
        )

    fa, fb, fc = check(a, b, lambda rows: X[rows], sig.norm, same, threshold)
    return near_result(
        records, ((int(p), int(q), c) for p, q, c in zip(fa, fb, fc, strict=True)), unchecked
    )
