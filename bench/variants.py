"""Featurization variants, each in its own long-lived process, driven chunk by chunk.

One process per variant keeps TensorFlow's process-wide settings apart (thread pools, and
the ``auto_mixed_precision_onednn_bfloat16`` optimizer option, which is global), and lets
the parent alternate the variants on the same chunks of JPEG bytes (A B C, B C A, ...):
only one variant computes at a time, so each has both cores while it runs.

Variants
    ``tutorial``: the tutorial's method, one ``sess.run`` per JPEG on ``DecodeJpeg/contents:0``
    of the exported frozen graph (:class:`pool3.model.graphdef.TutorialSession`; a TF1
    ``Session`` with default threading, i.e. all cores).
    ``float32`` / ``bfloat16``: pool3's featurizer in one process, batched: Pillow decode
    (``pool3.images.decode.decode``), TF1 bilinear resize, ``Featurizer.featurize_batch`` in
    batches of ``batch_size``, 2 TensorFlow intra-op threads.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

VARIANTS = ("tutorial", "float32", "bfloat16")


def _build(variant: str, workdir: str, batch_size: int) -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if variant == "tutorial":
        from pool3.model import load_bundle
        from pool3.model.cache import load_npz_bytes
        from pool3.model.graphdef import TutorialSession, export_graphdef

        pb = Path(workdir) / "classify_image_graph_def.pb"
        if not pb.exists():
            export_graphdef(load_npz_bytes(load_bundle("default").payload), pb)
        session = TutorialSession(pb)

        def run_tutorial(jpegs: list[bytes]) -> tuple[np.ndarray, float]:
            return np.stack([session.features(j) for j in jpegs]), 0.0

        return run_tutorial, None

    from pool3.images.decode import decode
    from pool3.model import load_featurizer
    from pool3.model.featurizer import resize_299

    featurizer = load_featurizer("default", precision=variant, threads=2)

    def run_jpegs(jpegs: list[bytes]) -> tuple[np.ndarray, float]:
        out, prep = [], 0.0
        for start in range(0, len(jpegs), batch_size):
            t0 = time.perf_counter()
            batch = np.stack(
                [resize_299(decode(j).pixels) for j in jpegs[start : start + batch_size]]
            )
            prep += time.perf_counter() - t0
            out.append(featurizer.featurize_batch(batch))
        return np.concatenate(out), prep

    def run_arrays(images: list[np.ndarray]) -> np.ndarray:
        return featurizer.featurize(images)

    return run_jpegs, run_arrays


def _serve(conn: Connection, variant: str, workdir: str, batch_size: int) -> None:
    t0 = time.perf_counter()
    run_jpegs, run_arrays = _build(variant, workdir, batch_size)
    conn.send(("ready", time.perf_counter() - t0))
    while True:
        msg = conn.recv()
        if msg[0] == "stop":
            return
        start = time.perf_counter()
        if msg[0] == "jpegs":
            feats, prep = run_jpegs(msg[1])
        else:
            feats, prep = run_arrays(msg[1]), 0.0
        conn.send(("done", feats, time.perf_counter() - start, prep))


@dataclass
class VariantProcess:
    """Parent-side handle of one variant's process."""

    name: str
    process: Any
    conn: Connection
    build_s: float = 0.0
    spawn_s: float = 0.0

    @classmethod
    def start(cls, name: str, workdir: str, batch_size: int) -> VariantProcess:
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        t0 = time.perf_counter()
        proc = ctx.Process(target=_serve, args=(child, name, workdir, batch_size), daemon=True)
        proc.start()
        tag, build_s = parent.recv()
        assert tag == "ready"
        return cls(name, proc, parent, build_s=build_s, spawn_s=time.perf_counter() - t0)

    def run(self, kind: str, payload: list[Any]) -> tuple[np.ndarray, float, float]:
        """(features (N, 2048) float32, seconds in the child, of which decode+resize)."""
        self.conn.send((kind, payload))
        tag, feats, seconds, prep = self.conn.recv()
        assert tag == "done"
        return feats, seconds, prep

    def stop(self) -> None:
        self.conn.send(("stop",))
        self.process.join(timeout=30)
