"""Near duplicates of the driver's float32 feature array: the LSH of :mod:`.near_lsh`, in numpy.

When a driver solver already holds the rows as one array (:mod:`pool3.training.data`),
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
from typing import Any

import numpy as np

from pool3.training import near_lsh
from pool3.training.near_lsh import ANGLE_SIGMAS, BANDS, BITS, NearPairs, near_result

#: rows signed at once (a block's centred copy and its products stay ~100 MB)
_BLOCK = 8192
#: bits set in each byte value (numpy 1.x has no bitwise_count)
_POPCOUNT = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).sum(axis=1)
#: candidate pairs estimated at once
_CHUNK = 1 << 20
#: candidate pairs whose features are multiplied at once (2 x 4096 x 2048 x 8 B = 134 MB)
_CHECK = 4096


def _signatures(X: np.ndarray, seed: int) -> tuple[np.ndarray, ...]:
    """Band keys (n, BANDS) int64, packed sign bits, ``norm``, ``cnorm``, ``dmean``, mean."""
    n, dim = X.shape
    total = np.zeros(dim)
    for start in range(0, n, _BLOCK):
        total += X[start : start + _BLOCK].sum(axis=0, dtype=np.float64)
    mean = (total / max(n, 1)).astype(np.float32)
    planes = np.random.default_rng(seed).standard_normal((dim, BANDS * BITS))
    planes = planes.astype(np.float32)
    weights = (1 << np.arange(BITS, dtype=np.int64)).astype(np.int64)
    keys = np.empty((n, BANDS), dtype=np.int64)
    packed = np.empty((n, (BANDS * BITS + 7) // 8), dtype=np.uint8)
    norm, cnorm, dmean = np.empty(n), np.empty(n), np.empty(n)
    for start in range(0, n, _BLOCK):
        block = X[start : start + _BLOCK]
        centred = block - mean
        bits = centred @ planes > 0
        stop = start + len(block)
        keys[start:stop] = bits.reshape(len(block), BANDS, BITS).astype(np.int64) @ weights
        packed[start:stop] = np.packbits(bits, axis=1)
        norm[start:stop] = np.linalg.norm(block, axis=1)
        cnorm[start:stop] = np.linalg.norm(centred, axis=1)
        dmean[start:stop] = block @ mean
    return keys, packed, norm, cnorm, dmean, mean


def _band_pairs(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Pairs ``(i, j)``, ``i < j``, sharing this band's key in a bucket of at most
    MAX_BUCKET rows, and the rows in larger buckets (not expanded)."""
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    sizes = np.diff(np.r_[starts, len(keys)])
    firsts, seconds = [], []
    limit = near_lsh.MAX_BUCKET  # read when called: one setting for both searches
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


def _estimate(h: np.ndarray, a: np.ndarray, b: np.ndarray, sig: tuple[np.ndarray, ...]) -> Any:
    """:func:`pool3.training.near_lsh.estimated_cosine` of pairs ``a, b`` (numpy)."""
    _, _, norm, cnorm, dmean, mean = sig
    n = BANDS * BITS
    p = h / n
    sigma = np.sqrt(p * (1 - p) / n) * math.pi
    angle = np.maximum(0.0, p * math.pi - ANGLE_SIGMAS * sigma)
    mean_sq = float(np.dot(mean.astype(np.float64), mean))
    dot = cnorm[a] * cnorm[b] * np.cos(angle) + dmean[a] + dmean[b] - mean_sq
    return dot / (norm[a] * norm[b])


def near_pairs_arrays(
    X: np.ndarray, records: list[dict[str, Any]], sha: np.ndarray, threshold: float, seed: int
) -> NearPairs:
    """Near pairs (``kind="near"``) of the rows of ``X`` (float32), ``records[i]`` the
    ``path, label, is_test`` of row ``i`` and ``sha[i]`` its content hash (pairs of one
    content are exact duplicates, not near ones)."""
    n = len(X)
    sig = _signatures(X, seed)
    keys, packed = sig[0], sig[1]
    # Per band, only the pairs whose signature estimate reaches the threshold are kept:
    # memory follows one band's candidates, not all bands' (tens of millions at 1M rows).
    codes, unchecked = [], 0
    for band in range(BANDS):
        i, j, oversize = _band_pairs(keys[:, band])
        unchecked += oversize
        for start in range(0, len(i), _CHUNK):
            a, b = i[start : start + _CHUNK], j[start : start + _CHUNK]
            h = _POPCOUNT[packed[a] ^ packed[b]].sum(axis=1, dtype=np.int64)
            keep = _estimate(h, a, b, sig) >= threshold
            codes.append(a[keep] * n + b[keep])
    cand = np.concatenate(codes) if codes else np.empty(0, np.int64)
    cand.sort()  # sort + neighbour test: ~5x faster than np.unique's hashing on int64 codes
    cand = cand[np.r_[True, cand[1:] != cand[:-1]]] if len(cand) else cand
    found_a, found_b, found_c = [], [], []
    for start in range(0, len(cand), _CHUNK):
        code = cand[start : start + _CHUNK]
        a, b = code // n, code % n
        for at in range(0, len(a), _CHECK):
            pa, pb = a[at : at + _CHECK], b[at : at + _CHECK]
            xa, xb = X[pa].astype(np.float64), X[pb].astype(np.float64)
            cosine = np.einsum("ij,ij->i", xa, xb) / np.maximum(sig[2][pa] * sig[2][pb], 1e-300)
            same = np.array(
                [sha[p] is not None and sha[p] == sha[q] for p, q in zip(pa, pb, strict=True)],
                dtype=bool,
            )
            hit = (cosine >= threshold) & ~same
            found_a.append(pa[hit])
            found_b.append(pb[hit])
            found_c.append(cosine[hit])
    columns = [np.concatenate(f) for f in (found_a, found_b, found_c)] if found_a else []
    records_found = zip(*columns, strict=True) if columns else iter(())
    return near_result(records, ((int(a), int(b), c) for a, b, c in records_found), unchecked)
