"""API sources on two replicas: one made, replaced or deleted on one is heard on the other."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

import httpx
import pytest

from tests.postgres.conftest import Cluster
from tests.support import wait_until

pytestmark = pytest.mark.postgres

BODY = b'{"type":"license.created","data":{"licenseKey":"AB-12"}}'


def post(url: str, secret: str) -> int:
    signature = hmac.new(secret.encode(), BODY, hashlib.sha256).hexdigest()
    return httpx.post(url + "/hooks/chain", content=BODY, timeout=10, headers={
        "Content-Type": "application/json", "X-Webhook-Signature": signature}).status_code


def test_a_source_made_on_one_replica_takes_requests_on_the_other(
        make_cluster: Callable[..., Cluster]) -> None:
    one, two = make_cluster(2, "  []\n")
    source = {"name": "chain", "path": "/hooks/chain",
              "verify": {"scheme": "x-webhook", "secret": "first"}}
    assert httpx.post(f"{one.url}/v1/sources", json=source, timeout=10).status_code == 201
    wait_until(lambda: post(two.url, "first") == 202, timeout=5, interval=0.05,
               message="the source on the other replica")
    replaced = {**source, "verify": {"scheme": "x-webhook", "secret": "second"}}
    assert httpx.put(f"{one.url}/v1/sources/chain", json=replaced, timeout=10).status_code == 200
    wait_until(lambda: post(two.url, "second") == 202, timeout=5, interval=0.05,
               message="the new secret on the other replica")
    assert post(two.url, "first") == 401
    assert httpx.delete(f"{one.url}/v1/sources/chain", timeout=10).status_code == 204
    wait_until(lambda: post(two.url, "second") == 404, timeout=5, interval=0.05,
               message="the source gone on the other replica")
