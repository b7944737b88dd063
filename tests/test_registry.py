"""The registry: relay.yaml's endpoints and the API's as one set, secrets opened, expiry kept."""

from __future__ import annotations

import json

import pytest

from relay.config import parse_config
from relay.registry import Registry, SecretVersion, open_secrets, seal_secrets
from relay.secrets_at_rest import SecretBox, SecretsUnreadable, generate_key, key_from_text
from relay.storage.base import StoredEndpoint
from tests.conftest import SECRET

NEW = "whsec_dGhpcyBpcyBhIHNlY29uZCBzZWNyZXQ="


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def box() -> SecretBox:
    return SecretBox(key_from_text(generate_key()))


def row(box: SecretBox, name: str, spec: dict[str, object],
        secrets: list[SecretVersion], tenant: str | None = None) -> StoredEndpoint:
    return StoredEndpoint(name, tenant, json.dumps(spec), seal_secrets(box, name, secrets),
                          1.0, 1.0)


CONFIG = f"""
delivery: {{timeout: 3s}}
endpoints:
  - {{name: declared, url: "https://declared.example", secret: {SECRET}}}
"""


def test_both_sources_one_set_and_inherited_defaults() -> None:
    sealing = box()
    registry = Registry(parse_config(CONFIG, env={}), sealing)
    changed = registry.load([row(sealing, "ep_1", {"name": "ep_1", "url": "https://a.example",
                                                   "tenant": "acme"}, [SecretVersion(SECRET)],
                                 "acme")])
    assert changed == {"ep_1"}
    assert [e.name for e in registry] == ["declared", "ep_1"]
    assert registry.source("declared") == "config" and registry.source("ep_1") == "api"
    api = registry.get("ep_1")
    assert api is not None and api.timeout_s == 3.0 and api.tenant == "acme"
    assert api.secrets == (SECRET,)
    assert registry.tenant_count("acme") == 1
    reloaded = registry.with_config(parse_config(CONFIG.replace("3s", "7s"), env={}))
    again = reloaded.get("ep_1")
    assert again is not None and again.timeout_s == 7.0  # follows relay.yaml's delivery


def test_rotated_out_secrets_sign_until_they_expire() -> None:
    sealing, clock = box(), Clock(1_000.0)
    registry = Registry(parse_config("", env={}), sealing, clock)
    versions = [SecretVersion(NEW), SecretVersion(SECRET, expires_at=2_000.0)]
    registry.load([row(sealing, "ep_1", {"name": "ep_1", "url": "https://a.example"},
                       versions)])
    endpoint = registry.get("ep_1")
    assert endpoint is not None and endpoint.secrets == (NEW, SECRET)
    assert registry.next_expiry(clock.now) == 2_000.0
    clock.now = 2_000.0
    registry.load([registry.api("ep_1").row])  # type: ignore[union-attr]
    endpoint = registry.get("ep_1")
    assert endpoint is not None and endpoint.secrets == (NEW,)
    assert registry.next_expiry(clock.now) is None


def test_rows_that_cannot_run_are_skipped_not_fatal() -> None:
    sealing = box()
    registry = Registry(parse_config("", env={}), box())  # another key
    registry.load([row(sealing, "ep_1", {"name": "ep_1", "url": "https://a.example"},
                       [SecretVersion(SECRET)])])
    assert registry.get("ep_1") is None
    registry = Registry(parse_config("", env={}), sealing)
    registry.load([row(sealing, "ep_2", {"name": "ep_2", "url": "http://plain.example"},
                       [SecretVersion(SECRET)])])
    assert registry.get("ep_2") is None


def test_a_sealed_secret_opens_only_for_its_endpoint() -> None:
    sealing = box()
    sealed = seal_secrets(sealing, "ep_1", [SecretVersion(SECRET)])
    assert SECRET not in sealed and "whsec" not in sealed
    assert open_secrets(sealing, "ep_1", sealed) == (SecretVersion(SECRET),)
    with pytest.raises(SecretsUnreadable, match="does not open"):
        open_secrets(sealing, "ep_2", sealed)
    assert SECRET not in repr(SecretVersion(SECRET))
