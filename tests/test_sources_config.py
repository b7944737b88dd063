"""`sources:` in relay.yaml: what is accepted, and every mistake named by its key path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from relay.config import load_config, parse_config
from relay.config.sources import SourceConfig
from relay.exceptions import ConfigError
from relay.verification import Refused, build_check

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def config_text(sources: list[dict[str, Any]], listen: str = "127.0.0.1:8787",
                endpoint_sources: list[str] | None = None, extra: str = "") -> str:
    endpoint = {"name": "crm", "url": "https://crm.example/hooks", "secret": SECRET}
    if endpoint_sources is not None:
        endpoint["sources"] = endpoint_sources
    return (f"listen: {listen}\n{extra}sources:\n"
            + "".join(f"  - {json.dumps(s)}\n" for s in sources)
            + f"endpoints:\n  - {json.dumps(endpoint)}\n")


def errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, env={})
    return info.value.errors


BABEL = {"name": "babel", "verify": {"scheme": "babel", "secret": "s3cret"}}


def test_a_source_reads_back_as_written() -> None:
    """Defaults, the default path, and `header:`/`field:` rules; secrets never serialized."""
    config = parse_config(config_text([{**BABEL, "type_from": "header:X-Babel-Event",
                                        "tenant_from": "field:CustomerId"}],
                                      endpoint_sources=["babel", "default"]), env={})
    [source] = config.sources
    assert source.ingest_path == "/v1/sources/babel"
    dumped = source.model_dump(mode="json")
    assert dumped["type_from"] == "header:X-Babel-Event"
    assert dumped["tenant_from"] == "field:CustomerId"
    assert "secret" not in dumped["verify"] and "s3cret" not in json.dumps(dumped)
    assert SourceConfig.model_validate(dumped | {"verify": {**dumped["verify"],
                                                            "secret": "s3cret"}}) == source
    assert config.endpoints[0].sources == ("babel", "default")
    assert "babel: POST /v1/sources/babel, babel verification" in config.summary()


@pytest.mark.parametrize(("source", "path", "message"), [
    ({"name": "a", "verify": {"scheme": "babel"}}, "sources[0].verify", "needs `secret`"),
    ({"name": "a", "verify": {"scheme": "hmac", "secret": "x"}}, "sources[0].verify",
     "needs `header`"),
    ({"name": "a", "verify": {"scheme": "hmac", "secret": "x", "header": "X-Sig",
                              "signed": "timestamp.body"}}, "sources[0].verify",
     "needs `timestamp_header`"),
    ({"name": "a", "verify": {"scheme": "hmac", "secret": "x", "header": "X-Sig",
                              "algorithm": "md5"}}, "sources[0].verify.algorithm", "sha256"),
    ({"name": "a", "verify": {"scheme": "standard", "secret": "not base64!"}},
     "sources[0].verify", "base64"),
    ({"name": "a", "verify": {"scheme": "bearer"}}, "sources[0].verify", "needs `token`"),
    ({"name": "a", "verify": {"scheme": "basic", "password": "p"}}, "sources[0].verify",
     "`username` and `password`"),
    ({"name": "a", "verify": {"scheme": "babel", "secret": "x", "secrets": ["y"]}},
     "sources[0].verify", "not both"),
    ({"name": "a", "verify": {"scheme": "babel", "secret": "x\n"}}, "sources[0].verify",
     "whitespace"),
    ({"name": "a", "verify": {"scheme": "rot13"}}, "sources[0].verify.scheme", "expected one of"),
    ({"name": "default", "verify": {"scheme": "none"}}, "sources[0].name", "/v1/events"),
    ({**BABEL, "path": "/v1/events"}, "sources[0].path", "serves itself"),
    ({**BABEL, "path": "/ui/hooks"}, "sources[0].path", "serves itself"),
    ({**BABEL, "path": "/hooks/babel/"}, "sources[0].path", "expected a path"),
    ({**BABEL, "path": "/hooks/../admin"}, "sources[0].path", "expected a path"),
    ({**BABEL, "path": "/hooks/babel\n"}, "sources[0].path", "expected a path"),
    ({**BABEL, "type_from": "body:type"}, "sources[0].type_from", "header:NAME"),
    ({**BABEL, "id_from": "header:X Id"}, "sources[0].id_from", "header:NAME"),
    ({**BABEL, "verify": {"scheme": "babel", "secret": "x", "sceme": 1}},
     "sources[0].verify.sceme", "unknown key"),
])
def test_mistakes_are_named_by_their_key(source: dict[str, Any], path: str,
                                         message: str) -> None:
    found = errors(config_text([source]))
    assert any(e.startswith(f"{path}: ") and message in e for e in found), found


def test_rules_across_sources_and_endpoints() -> None:
    """Unique names and paths; endpoints name sources that exist."""
    found = errors(config_text([BABEL, {**BABEL, "path": "/hooks/babel"},
                                {"name": "b", "path": "/hooks/babel",
                                 "verify": {"scheme": "none"}}],
                               endpoint_sources=["babel", "babell"]))
    assert any(e.startswith("sources[1].name: ") for e in found), found
    assert any(e.startswith("sources[2].path: ") for e in found), found
    assert any(e.startswith("endpoints[0].sources: ") and "'babell'" in e for e in found), found


def test_none_is_refused_on_a_listener_others_can_reach() -> None:
    tokens = "ingest: {token: t}\nadmin: {token: u}\n"
    found = errors(config_text([{"name": "open", "verify": {"scheme": "none"}}],
                               listen="0.0.0.0:8787", extra=tokens))
    assert any(e.startswith("sources[0].verify.scheme: ") and "loopback" in e
               for e in found), found
    parse_config(config_text([BABEL], listen="0.0.0.0:8787", extra=tokens), env={})


def test_an_unset_secret_variable_is_named() -> None:
    text = config_text([{"name": "babel",
                         "verify": {"scheme": "babel", "secret": "${BABEL_SECRET}"}}])
    assert any("BABEL_SECRET is not set" in e for e in errors(text))


def test_hex_signatures_are_compared_whatever_their_case_and_length() -> None:
    """A short, long, non-hex or non-ASCII signature is refused, never an exception."""
    check = build_check(parse_config(config_text([BABEL]), env={}).sources[0].verify)
    for signature in ("", "ab", "zz" * 32, "é" * 64, "0" * 1000):
        with pytest.raises(Refused):
            check({"x-babel-signature": signature}, b"{}", 0.0)


def test_the_benchmark_s_source_request_verifies(tmp_path: Path) -> None:
    """bench.sources measures accepted requests: its config loads and its signature matches."""
    from bench.sources import EVENT, babel_headers, relay_config

    config = load_config(relay_config(tmp_path, 8787), env={})
    check = build_check(config.sources[0].verify)
    headers = {name.lower(): value for name, value in babel_headers().items()}
    check(headers, json.dumps(EVENT).encode(), 0.0)
    with pytest.raises(Refused):
        check(headers, json.dumps(EVENT).encode() + b" ", 0.0)
