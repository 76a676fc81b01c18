"""The model loaded while the JVM starts: the same bundle, its IR, and the loader's own errors."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pool3.commands.preload import Preload
from pool3.config.load import load_config
from pool3.extraction.shipping import openvino_bundle
from pool3.model import load_bundle
from pool3.model.openvino_ir import IR_KIND, to_openvino
from pool3.model.runtime import resolve, this_host


def test_preload_gives_the_bundle_and_this_hosts_ir_from_a_thread():
    config = load_config(env={})
    preload = Preload(config).start()
    got = preload.bundle()
    direct = load_bundle(config.model.source)
    assert (got.fingerprint, got.kind) == (direct.fingerprint, direct.kind)
    assert got.payload == direct.payload
    ir = preload.ir()
    if resolve("auto", "auto", [this_host()]).runtime == "openvino":  # every CPU machine here
        assert ir is not None and ir.kind == IR_KIND and ir.fingerprint == got.fingerprint
        assert ir.payload == to_openvino(direct).payload
    else:
        assert ir is None
    # TensorFlow asked for: no IR is read
    tf = Preload(replace(config, model=replace(config.model, runtime="tensorflow"))).start()
    assert tf.bundle().fingerprint == got.fingerprint and tf.ir() is None


def test_preload_raises_the_loaders_error_where_the_model_is_asked_for(tmp_path):
    missing = tmp_path / "no-such-model.pb"
    config = load_config(overrides={"model.source": str(missing)}, env={})
    with pytest.raises(Exception) as direct:
        load_bundle(str(missing))
    preload = Preload(config).start()  # the thread fails; nothing is raised yet
    with pytest.raises(type(direct.value)) as raised:
        preload.bundle()
    assert str(raised.value) == str(direct.value)
    assert preload.ir() is None
    # never started (e.g. a caller that builds it late): the work is done in the caller
    with pytest.raises(type(direct.value)):
        Preload(config).bundle()


def test_the_shipping_takes_a_preloaded_ir_only_for_its_own_bundle():
    bundle = load_bundle("default")
    ir = to_openvino(bundle)
    assert openvino_bundle(bundle, ir) is ir
    assert openvino_bundle(bundle, None).payload == ir.payload  # read from the cache
    other = replace(ir, fingerprint="another-model:0123456789abcdef")
    converted = openvino_bundle(bundle, other)
    assert converted is not other and converted.fingerprint == bundle.fingerprint
    int8 = replace(ir, extra={**ir.extra, "variant": "int8-abc"})
    assert openvino_bundle(int8, ir) is int8  # an IR (int8) bundle is shipped as it is
    assert openvino_bundle(bundle, bundle) is not bundle  # a "preloaded IR" that is no IR
