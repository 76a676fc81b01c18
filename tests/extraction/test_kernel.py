"""The worker body without Spark: bytes in, one row per file out, errors recorded."""

from __future__ import annotations

import io
import shutil
import threading
import time
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from paths import GOLDEN, IMAGES
from pool3.extraction.batching import (
    ACTIVATION_MB_PER_IMAGE,
    AMX_AUTO_BATCH,
    LOW_PRECISION_ACTIVATION_MB_PER_IMAGE,
    MAX_AUTO_BATCH,
    OUTPUT_ROWS,
    WORKER_BASE_MB,
    auto_batch_size,
    output_rows,
)
from pool3.extraction.kernel import (
    PREFETCH_THREAD,
    BatchStats,
    WorkerOptions,
    featurize_batches,
    featurize_frame,
)
from pool3.storage.files import resolve
from pool3.storage.schemas import FEATURE_COLUMNS


def test_auto_batch_size_follows_memory_and_device():
    assert auto_batch_size(512) == 1  # below the worker's base: still one image
    # what fits above the base, one ACTIVATION_MB_PER_IMAGE each, below the cap
    for n in range(1, MAX_AUTO_BATCH + 1):
        assert auto_batch_size(WORKER_BASE_MB + n * ACTIVATION_MB_PER_IMAGE) == n
    assert auto_batch_size(WORKER_BASE_MB + 2 * ACTIVATION_MB_PER_IMAGE - 1) == 1
    assert auto_batch_size(64_000) == MAX_AUTO_BATCH
    assert auto_batch_size(512, gpu=True) == 64


def test_auto_batch_size_larger_for_openvino_low_precision_on_amx():
    # float32, TensorFlow or no AMX: the CPU rule above, whatever else is said
    for memory in (512, WORKER_BASE_MB + 3 * ACTIVATION_MB_PER_IMAGE, 64_000):
        old = auto_batch_size(memory)
        assert auto_batch_size(memory, runtime="openvino", precision="float32", amx=True) == old
        assert auto_batch_size(memory, runtime="tensorflow", precision="bfloat16", amx=True) == old
        assert auto_batch_size(memory, runtime="openvino", precision="bfloat16") == old
        assert auto_batch_size(memory, runtime="openvino", precision="int8-abc") == old
    # OpenVINO bfloat16 / int8 with AMX: up to 16 images of the halved activation estimate
    assert LOW_PRECISION_ACTIVATION_MB_PER_IMAGE == ACTIVATION_MB_PER_IMAGE // 2
    for precision in ("bfloat16", "int8", "int8-3f2a"):
        amx = {"runtime": "openvino", "precision": precision, "amx": True}
        assert auto_batch_size(64_000, **amx) == AMX_AUTO_BATCH == 16
        assert auto_batch_size(2048, **amx) == 16  # 1024 MB of room, 20 MB each: 51, cut
        for n, batch in ((1, 1), (5, 4), (8, 8), (15, 8)):  # what fits, down to a power of 2
            memory = WORKER_BASE_MB + n * LOW_PRECISION_ACTIVATION_MB_PER_IMAGE
            assert auto_batch_size(memory, **amx) == batch
        assert auto_batch_size(512, **amx) == 1
        assert auto_batch_size(512, gpu=True, **amx) == 64


def test_rows_in_input_order_with_errors(featurizer):
    png = (GOLDEN / "china.png").read_bytes()
    buf = io.BytesIO()
    Image.open(GOLDEN / "flower.png").save(buf, "JPEG", quality=90)
    frame = pd.DataFrame(
        {
            "path": [
                "file:/x/china_1.png",
                "file:/x/junk_2.jpg",
                "file:/x/big_3.jpg",
                "file:/x/flower_4.jpg",
            ],
            "length": [len(png), 5, 99 << 20, len(buf.getvalue())],
            "content": [png, b"hello", None, buf.getvalue()],
        }
    )
    opts = WorkerOptions(fingerprint="fp", batch_size=0, worker_memory_mb=1100)
    calls = []
    (out,) = list(featurize_batches(iter([frame]), lambda: featurizer, opts, calls.append))
    assert list(out.columns) == FEATURE_COLUMNS
    assert out["path"].tolist() == frame["path"].tolist()
    assert out["label"].tolist() == ["china", "junk", "big", "flower"]
    assert out["error"].iloc[1].startswith("not_an_image: ")
    assert out["error"].iloc[2].startswith("too_large: ")
    assert out["error"].iloc[0] is None and out["error"].iloc[3] is None
    assert out["features"].iloc[1] is None and out["sha256"].iloc[2] is None
    direct = featurizer.featurize([np.asarray(Image.open(GOLDEN / "china.png").convert("RGB"))])
    assert np.abs(out["features"].iloc[0] - direct[0]).max() < 1e-5
    assert (out["width"].iloc[0], out["height"].iloc[0]) == (299, 299)
    assert calls[0].images == 4 and calls[0].errors == 2


def jpeg(name: str) -> bytes:
    buf = io.BytesIO()
    Image.open(GOLDEN / name).convert("RGB").save(buf, "JPEG", quality=90)
    return buf.getvalue()


def content_frame(names_and_bytes: list[tuple[str, bytes | None]]) -> pd.DataFrame:
    """A frame that carries its files' bytes (None: left out for its size)."""
    return pd.DataFrame(
        {
            "path": [f"file:/x/{name}" for name, _ in names_and_bytes],
            "length": [99 << 20 if b is None else len(b) for _, b in names_and_bytes],
            "content": [b for _, b in names_and_bytes],
        }
    )


@pytest.fixture()
def mixed_frames(tmp_path):
    """Frames of good and bad files, in the bytes and on disk, and the Root of the latter.

    Sizes 7, 5, 0, 8 and 1, read 3 at a time: batches end inside frames and at their ends.
    """
    for name in (
        "baseline.jpg",
        "corrupt.jpg",
        "empty.jpg",
        "truncated.png",
        "flower.png",
        "grey.jpg",
        "html.jpg",
        "progressive.jpg",
        "cmyk.jpg",
    ):
        shutil.copy(IMAGES / name, tmp_path / name)
    (tmp_path / "gone.jpg").write_bytes(b"listed, then deleted")
    (tmp_path / "subdir.jpg").mkdir()
    root = resolve(str(tmp_path))

    def on_disk(entries: list[tuple[str, int | None]]) -> pd.DataFrame:
        """(name, listed length; None: the file's size)."""
        return pd.DataFrame(
            {
                "path": [f"{root.uri}/{n}" for n, _ in entries],
                "length": [
                    (tmp_path / n).stat().st_size if ln is None else ln for n, ln in entries
                ],
            }
        )

    png, china, flower = (GOLDEN / "china.png").read_bytes(), jpeg("china.png"), jpeg("flower.png")
    frames = [
        content_frame(
            [
                ("china_1.png", png),
                ("junk_2.jpg", b"hello"),
                ("big_3.jpg", None),
                ("flower_4.jpg", flower),
                ("empty_5.jpg", b""),
                ("china_6.jpg", china),
                ("cut_7.jpg", china[: len(china) // 2]),
            ]
        ),
        on_disk(
            [
                ("baseline.jpg", None),
                ("corrupt.jpg", None),
                ("gone.jpg", None),
                ("grey.jpg", 5),
                ("progressive.jpg", None),
            ]
        ),
        on_disk([]),
        on_disk(
            [
                ("empty.jpg", None),
                ("truncated.png", None),
                ("flower.png", None),
                ("subdir.jpg", 10),
                ("html.jpg", None),
                ("huge.jpg", 99 << 20),
                ("cmyk.jpg", None),
                ("baseline.jpg", None),
            ]
        ),
        content_frame([("flower_9.png", (GOLDEN / "flower.png").read_bytes())]),
    ]
    (tmp_path / "gone.jpg").unlink()
    return frames, root


def run_all(frames, featurizer, opts):
    """Output frames, and the order of on_stats / yield / after_batch calls, with the stats."""
    events: list[tuple[str, int]] = []
    stats: list[BatchStats] = []

    def on_stats(s: BatchStats) -> None:
        stats.append(s)
        events.append(("stats", len(stats)))

    out = []
    opts = replace(opts, after_batch=lambda: events.append(("after", len(out))))
    for rows in featurize_batches(iter(frames), lambda: featurizer, opts, on_stats):
        out.append(rows)
        events.append(("yield", len(out)))
    return out, events, stats


def test_prefetch_gives_the_rows_of_one_batch_after_the_other(featurizer, mixed_frames):
    frames, root = mixed_frames
    base = WorkerOptions(fingerprint="fp", batch_size=3, root=root)
    seq, seq_events, seq_stats = run_all(frames, featurizer, replace(base, prefetch=False))
    pre, pre_events, pre_stats = run_all(frames, featurizer, base)
    assert len(seq) == len(pre) == len(frames)
    expected_events = [
        (e, i) for i in range(1, len(frames) + 1) for e in ("stats", "yield", "after")
    ]
    assert seq_events == pre_events == expected_events
    for a, b, frame in zip(seq, pre, frames, strict=True):
        assert list(a.columns) == list(b.columns) == FEATURE_COLUMNS
        assert a["path"].tolist() == b["path"].tolist() == frame["path"].tolist()
        rest = [c for c in FEATURE_COLUMNS if c != "features"]
        pd.testing.assert_frame_equal(a[rest], b[rest])
        for fa, fb in zip(a["features"], b["features"], strict=True):
            assert (fa is None) == (fb is None)
            if fa is not None:
                assert fa.shape == (2048,) and np.array_equal(fa, fb)
    # what the frames hold, so that equal and wrong cannot pass
    errors = [e.split(":")[0] if e else None for f in pre for e in f["error"]]
    assert errors == [
        None,
        "not_an_image",
        "too_large",
        None,
        "empty",
        None,
        "truncated",
        None,
        "corrupt",
        "missing",
        "changed",
        None,
        "empty",
        "truncated",
        None,
        "unreadable",
        "not_an_image",
        "too_large",
        None,
        None,
        None,
    ]
    assert len(pre[2]) == 0
    for f in pre:
        assert (f["error"].isna() == f["features"].notna()).all()
    assert [s.images for s in pre_stats] == [s.images for s in seq_stats] == [7, 5, 0, 8, 1]
    assert [s.errors for s in pre_stats] == [s.errors for s in seq_stats] == [4, 3, 0, 5, 0]
    assert all(s.wait_s == 0.0 for s in seq_stats)
    assert all(s.decode_s > 0 and s.infer_s > 0 for s in pre_stats if s.images)
    # the one-frame function, as before
    one = BatchStats()
    alone = featurize_frame(
        frames[0], featurizer, WorkerOptions(fingerprint="fp", batch_size=3), one
    )
    pd.testing.assert_frame_equal(alone.drop(columns="features"), seq[0].drop(columns="features"))
    assert one.images == 7 and one.errors == 4 and one.wait_s == 0.0


@pytest.mark.parametrize("prefetch", [True, False])
def test_a_large_frame_comes_out_in_frames_of_whole_batches(featurizer, prefetch):
    """Rows leave the worker in frames of ~OUTPUT_ROWS (the JVM writes them while the next
    are computed): the same rows, in order, as the frame in one piece."""
    assert output_rows(3) == 18 and output_rows(4) == OUTPUT_ROWS == 16 and output_rows(64) == 64
    flower, china = jpeg("flower.png"), jpeg("china.png")
    files = [(f"f_{i}.jpg", (flower, china, b"junk")[i % 3]) for i in range(40)]
    frames = [content_frame(files[:2]), content_frame(files), content_frame([])]
    opts = WorkerOptions(fingerprint="fp", batch_size=3, prefetch=prefetch)
    out, _, stats = run_all(frames, featurizer, opts)
    assert [len(f) for f in out] == [2, 18, 18, 4, 0]
    assert [s.images for s in stats] == [2, 18, 18, 4, 0]
    assert sum(s.errors for s in stats) == 13  # every third file of the 40, and none of the 2
    whole = featurize_frame(frames[1], featurizer, replace(opts, prefetch=False), BatchStats())
    joined = pd.concat(out[1:4], ignore_index=True)
    pd.testing.assert_frame_equal(joined.drop(columns="features"), whole.drop(columns="features"))
    for a, b in zip(joined["features"], whole["features"], strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            assert np.allclose(a, b, rtol=1e-3, atol=1e-3)


def live_prefetch_threads(join_s: float = 5.0) -> list[threading.Thread]:
    for t in threading.enumerate():
        if t.name == PREFETCH_THREAD:
            t.join(join_s)
    return [t for t in threading.enumerate() if t.name == PREFETCH_THREAD and t.is_alive()]


class BrokenInput(Exception):
    pass


def test_error_in_the_prefetch_thread_reaches_the_caller(featurizer):
    flower = jpeg("flower.png")
    good = content_frame([("flower_1.jpg", flower), ("flower_2.jpg", flower)])

    def frames():
        yield good
        raise BrokenInput("the input stream broke")

    rows = featurize_batches(
        frames(), lambda: featurizer, WorkerOptions(fingerprint="fp", batch_size=1)
    )
    assert next(rows)["error"].isna().all()  # the frame before the failure comes out whole
    with pytest.raises(BrokenInput, match="stream broke"):
        next(rows)
    assert live_prefetch_threads() == []
    # an error from reading a file: a frame without bytes, and no root to read them from
    no_root = pd.DataFrame({"path": ["file:/x/a_1.jpg"], "length": [10]})
    rows = featurize_batches(
        iter([good, no_root]), lambda: featurizer, WorkerOptions(fingerprint="fp", batch_size=1)
    )
    with pytest.raises(ValueError, match=r"needs WorkerOptions\.root"):
        list(rows)
    assert live_prefetch_threads() == []


def test_closing_early_stops_the_prefetch_thread(featurizer):
    flower = jpeg("flower.png")
    pulled = []

    def frames():
        for i in range(6):
            pulled.append(i)
            yield content_frame([(f"flower_{i}{j}.jpg", flower) for j in range(4)])

    opts = WorkerOptions(fingerprint="fp", batch_size=2)
    rows = featurize_batches(frames(), lambda: featurizer, opts)
    assert len(next(rows)) == 4
    assert [t.is_alive() for t in threading.enumerate() if t.name == PREFETCH_THREAD] == [True]
    time.sleep(0.5)
    # one batch ahead of the model at most: the first batch of frame 2, no further
    assert pulled == [0, 1]
    rows.close()
    assert live_prefetch_threads(join_s=2.0) == []
    assert pulled == [0, 1]

    # a failure in the consumer's own code (a fault injected after a frame) stops it too
    def fault() -> None:
        raise RuntimeError("injected")

    pulled.clear()
    rows = featurize_batches(
        frames(),
        lambda: featurizer,
        WorkerOptions(fingerprint="fp", batch_size=2, after_batch=fault),
    )
    next(rows)
    with pytest.raises(RuntimeError, match="injected"):
        next(rows)
    assert live_prefetch_threads(join_s=2.0) == []
    assert pulled == [0, 1]
