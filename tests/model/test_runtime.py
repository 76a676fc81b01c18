"""How a run picks its runtime and precision from what the executors report (pure rules)."""

from __future__ import annotations

import logging

import pytest

from pool3.errors import ConfigError
from pool3.model.runtime import HostReport, cpu_flags, resolve, this_host

AMX = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_int8", "amx_tile")
AVX2 = ("avx2",)


def host(name: str = "w1", flags=AMX, gpus: int = 0, openvino: str | None = "2026.4.1"):
    return HostReport(name, "test cpu", tuple(flags), 16, gpus, openvino, "2.21.0")


def test_auto_is_openvino_bfloat16_on_amx_executors():
    p = resolve("auto", "auto", [host("a"), host("b")])
    assert (p.runtime, p.precision) == ("openvino", "bfloat16")
    assert "AMX-BF16" in p.reason


def test_auto_is_float32_when_any_executor_lacks_bfloat16():
    p = resolve("auto", "auto", [host("a"), host("b", flags=AVX2)])
    assert (p.runtime, p.precision) == ("openvino", "float32")
    assert "b (test cpu)" in p.reason


def test_the_drivers_cpu_does_not_matter():
    # the decision reads the reports only: an AVX2 executor gets float32 on any driver
    assert resolve("auto", "auto", [host(flags=AVX2)]).precision == "float32"


def test_gpu_executors_get_tensorflow_float32():
    p = resolve("auto", "auto", [host(gpus=1)])
    assert (p.runtime, p.precision) == ("tensorflow", "float32")


def test_without_openvino_auto_falls_back_to_tensorflow_and_says_so(caplog):
    with caplog.at_level(logging.WARNING):
        p = resolve("auto", "float32", [host(openvino=None)])
    assert p.runtime == "tensorflow"
    assert "pip install openvino" in caplog.text


def test_explicit_openvino_without_it_is_refused():
    with pytest.raises(ConfigError, match=r"OpenVINO is not installed on w1.*--runtime tensorflow"):
        resolve("openvino", "float32", [host(openvino=None)])


def test_bfloat16_on_a_cpu_without_it_is_refused():
    with pytest.raises(ConfigError, match=r"no native bfloat16.*--precision auto or float32"):
        resolve("auto", "bfloat16", [host(flags=AVX2)])


def test_int8_runs_on_openvino_only():
    assert resolve("auto", "int8", [host(gpus=1)]).runtime == "openvino"
    with pytest.raises(ConfigError, match="int8 runs on OpenVINO only"):
        resolve("tensorflow", "int8", [host()])


def test_placement_goes_to_the_manifest():
    doc = resolve("auto", "auto", [host()]).manifest()
    assert doc["runtime"] == "openvino" and doc["hosts"][0]["flags"][0] == "avx2"


def test_this_host_reads_real_flags(tmp_path):
    report = this_host()
    assert report.cores >= 1 and report.openvino  # installed by make install
    fake = tmp_path / "cpuinfo"
    fake.write_text("model name\t: X\nflags\t\t: fpu avx2 amx_bf16 sse\n")
    assert cpu_flags(str(fake)) == ("avx2", "amx_bf16")
    assert cpu_flags(str(tmp_path / "missing")) == ()


def test_bfloat16_on_gpu_executors_is_refused():
    with pytest.raises(ConfigError, match="CPU precision"):
        resolve("auto", "bfloat16", [host(gpus=1)])


def test_tensorflow_runtime_without_tensorflow_is_refused():
    no_tf = HostReport("w1", "test cpu", AMX, 16, 1, "2026.4.1", None)
    with pytest.raises(ConfigError, match=r"needs TensorFlow.*w1.*--runtime openvino"):
        resolve("auto", "auto", [no_tf])  # GPU executors pick TensorFlow
