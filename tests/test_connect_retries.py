"""The retry policy pool3 gives a Spark Connect client (pool3.session.bound_retries): Spark's
default policy bounded per outage, so a dead server fails the run within
``spark.remote_timeout_seconds`` and the abort's calls after it fail at once. Real gRPC errors
from a port nothing listens on; no JVM, no server."""

from __future__ import annotations

import time

import grpc
import pytest

from mlflowserver import free_port
from pool3.session import _outage_policy


@pytest.fixture(scope="module")
def unavailable() -> grpc.RpcError:
    """A real gRPC UNAVAILABLE: a call to a port nothing listens on."""
    with grpc.insecure_channel(f"127.0.0.1:{free_port()}") as channel:
        call = channel.unary_unary("/spark.connect.SparkConnectService/Config")
        with pytest.raises(grpc.RpcError) as caught:
            call(b"", timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    return caught.value


def test_an_outage_is_retried_for_the_bound_then_no_call_is(unavailable):
    policy = _outage_policy(0.5)
    assert policy.can_retry(unavailable)  # the outage starts
    time.sleep(0.3)
    assert policy.can_retry(unavailable)
    time.sleep(0.3)
    assert not policy.can_retry(unavailable)  # 0.6 s into it: the failing call gives up
    assert not policy.can_retry(unavailable)  # and the next call (the abort's) at once


def test_a_new_outage_after_a_quiet_spell_gets_the_whole_bound(unavailable):
    policy = _outage_policy(0.5)
    policy.QUIET_S = 0.2
    assert policy.can_retry(unavailable)
    time.sleep(0.6)  # longer than the bound, but quiet: that outage is over
    assert policy.can_retry(unavailable)


def test_what_spark_does_not_retry_is_not_retried():
    policy = _outage_policy(60)
    assert not policy.can_retry(ValueError("not a gRPC error"))
    assert policy.max_retries is None and policy.max_backoff == 5000
