"""``pool3 setup``: fill this machine's caches so that the first run starts as fast as later ones.

Three things a run otherwise makes on first use, each once per machine (under
``$POOL3_HOME``): the converted 2015 weights (~1 s), their OpenVINO IR (~6 s), and the class
data archive of the driver JVM (:mod:`pool3.jvm`, ~30-50 s to write, ~4 s saved on every
later ``local[*]`` start). Each is skipped when present; nothing here changes a result.
"""

from __future__ import annotations

import importlib.util
import logging
import time
from typing import Any

from pool3.config import Config
from pool3.errors import ConfigError

log = logging.getLogger(__name__)


def run_setup(config: Config, *, jvm: bool = True) -> dict[str, Any]:
    """Make the caches; returns what was made or found, with seconds."""
    from pool3.jvm import archive_path, build_archive
    from pool3.model import load_bundle
    from pool3.session import check_java

    home = config.model.home or None
    out: dict[str, Any] = {}
    started = time.perf_counter()
    bundle = load_bundle(config.model.source, home=home)
    out["model"] = bundle.fingerprint
    if importlib.util.find_spec("openvino") is None:
        out["openvino_ir"] = "skipped (openvino is not installed)"
    else:
        from pool3.model.openvino_ir import to_openvino

        to_openvino(bundle, home=home)
        out["openvino_ir"] = "ready"
    out["model_seconds"] = round(time.perf_counter() - started, 1)
    if not jvm:
        return out
    java = check_java()
    path = archive_path(java, home=home)
    if path.is_file():
        out["jvm_archive"] = f"{path} (present)"
        return out
    log.info("writing the JVM class-data archive %s (once per Java and Spark version) ...", path)
    try:
        path, seconds = build_archive(java, home=home)
    except ConfigError as err:  # a cache: runs work without it, a few seconds slower
        log.warning("%s", err)
        out["jvm_archive"] = f"not written: {str(err).splitlines()[0]}"
        return out
    out["jvm_archive"] = str(path)
    out["jvm_archive_seconds"] = round(seconds, 1)
    return out
