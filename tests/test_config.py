"""relay.yaml parsing: typed values, environment expansion, key-path errors."""

from __future__ import annotations

import ipaddress
import textwrap
from pathlib import Path

import pytest

from relay.cli import main
from relay.config import load_config, parse_config
from relay.exceptions import ConfigError
from relay.units import parse_duration, parse_rate, parse_size
from tests.support import TEST_SECRETS_KEY

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
ROOT = Path(__file__).resolve().parent.parent


def errors_of(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(textwrap.dedent(text), env=env or {})
    return info.value.errors


@pytest.mark.parametrize(("text", "seconds"), [
    ("500ms", 0.5), ("5s", 5), ("5m", 300), ("2h", 7200), ("30d", 2592000), ("1w", 604800),
    (10, 10), ("1.5s", 1.5),
])
def test_durations(text: object, seconds: float) -> None:
    """Durations accept the units the SPEC lists, and bare numbers as seconds."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["5 parsecs", "-1s", "", "s", True, None, [1]])
def test_bad_durations(bad: object) -> None:
    """A bad duration is a ValueError naming the value."""
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


def test_sizes_and_rates() -> None:
    """Sizes take binary and decimal units; rates take per-second, minute, hour."""
    assert parse_size("1MiB") == 1048576
    assert parse_size("512KiB") == 524288
    assert parse_size("1MB") == 1000000
    assert parse_size(4096) == 4096
    assert parse_rate("50/s") == 50
    assert parse_rate("1200/m") == 20
    with pytest.raises(ValueError, match="rate"):
        parse_rate("fast")


def test_bundled_config_is_valid() -> None:
    """The relay.yaml shipped at the top of the repository loads as it is."""
    config = load_config(ROOT / "relay.yaml", env={})
    assert config.listen_host == "127.0.0.1" and config.listen_port == 8787
    assert config.endpoints[0].url == "http://127.0.0.1:9000/webhooks"
    assert config.events is not None and "license.supportexpiring" in config.events
    assert config.sqlite_path == ROOT / "relay.db"


def test_full_config_is_typed_and_frozen() -> None:
    """Every SPEC key becomes a typed field; config objects cannot be mutated."""
    config = parse_config(textwrap.dedent(f"""
        listen: 127.0.0.1:9999
        storage: sqlite:////var/lib/relay/relay.db
        ingest: {{token: in, max_body_bytes: 64KiB, id_field: eventId}}
        admin: {{token: ad}}
        delivery:
          timeout: 2s
          retry_schedule: [1s, 1m]
          jitter: 0
          concurrency: 8
          allow_networks: [10.0.0.0/8, "fd00::/8"]
        retention: 7d
        events: [license.created]
        events_strict: true
        endpoints:
          - name: crm
            url: https://crm.example.com/hooks
            events: ["license.*", order.created]
            secret: [{SECRET}, whsec_dGhpcyBpcyBhIHNlY29uZCBzZWNyZXQ=]
            headers: {{X-Team: licensing}}
            rate_limit: 50/s
            ordering: fifo
            max_in_flight: 3
            retry_client_errors: false
            disable_after: 1d
    """), env={})
    assert config.ingest.max_body_bytes == 65536
    assert config.ingest.id_field == "eventId"
    assert config.delivery.retry_schedule_s == (1.0, 60.0)
    assert config.delivery.allow_networks[0] == ipaddress.ip_network("10.0.0.0/8")
    assert config.retention_s == 7 * 86400
    crm = config.endpoints[0]
    assert crm.secrets == (SECRET, "whsec_dGhpcyBpcyBhIHNlY29uZCBzZWNyZXQ=")
    assert crm.headers == (("X-Team", "licensing"),)
    assert crm.rate_limit_per_s == 50 and crm.ordering == "fifo"
    assert crm.retry_schedule_s == (1.0, 60.0)  # inherited from delivery
    assert crm.timeout_s == 2.0
    assert SECRET not in repr(config)
    with pytest.raises(ValueError, match="frozen"):
        config.retention_s = 1  # type: ignore[misc]


def test_environment_expansion() -> None:
    """${VAR} and ${VAR:-default} expand in strings; $$ is a literal dollar."""
    config = parse_config(textwrap.dedent("""
        ingest: {token: "${TOKEN}", max_body_bytes: "${MAX:-2048}"}
        admin: {token: "pa$$word"}
        endpoints:
          - {name: a, url: "https://${HOST:-x.example}/h", secret: "${S}"}
    """), env={"TOKEN": "t0k", "S": SECRET})
    assert config.ingest.token == "t0k"
    assert config.ingest.max_body_bytes == 2048
    assert config.admin.token == "pa$word"
    assert config.endpoints[0].url == "https://x.example/h"


def test_every_error_names_its_key_path() -> None:
    """All problems are reported at once, each with the key path that has it."""
    errors = errors_of("""
        listen: nowhere
        retry_shedule: [1s]
        delivery: {timeout: 5 parsecs, retry_schedule: [1s, soon], jitter: 2}
        endpoints:
          - name: ok
            url: ftp://example.com
            secret: ${MISSING}
          - name: "bad name"
            url: http://plain.example.com
            events: ["bad type!"]
            signature: md5
            body: pretty
          - url: https://example.com
            colour: blue
    """)
    text = "\n".join(errors)
    for expected in [
        "listen: expected HOST:PORT",
        "retry_shedule: unknown key",
        "delivery.timeout:",
        "delivery.retry_schedule: item 1",
        "delivery.jitter:",
        "endpoints[0].url: expected an http:// or https:// URL",
        "endpoints[0].secret: environment variable MISSING is not set",
        "endpoints[1].name:",
        "endpoints[1].url: plain http:// needs `allow_http: true`",
        "endpoints[1].events:",
        "endpoints[1].signature: expected one of standard, x-webhook, babel",
        "endpoints[1].body: expected one of exact, compact; got 'pretty'",
        "endpoints[2].name: is required",
        "endpoints[2].colour: unknown key",
    ]:
        assert expected in text, f"missing {expected!r} in:\n{text}"


def test_unknown_key_suggests_the_right_one() -> None:
    """A near-miss key names the key the user probably meant."""
    assert errors_of("delivery: {retry_shedule: [1s]}") == [
        "delivery.retry_shedule: unknown key (did you mean 'retry_schedule'?)"
    ]


def test_non_loopback_listen_needs_both_tokens() -> None:
    """Binding beyond loopback without both tokens would let anyone post events."""
    errors = errors_of("listen: 0.0.0.0:8787\ningest: {token: x}\n")
    assert errors == [
        "listen: 0.0.0.0 is not a loopback address, so admin.token must be set "
        "(anyone who can reach it could post events)"
    ]
    parse_config("listen: 0.0.0.0:8787\ningest: {token: x}\nadmin: {token: y}\n", env={})
    parse_config("listen: '[::1]:8787'\n", env={})


def test_secrets_are_checked_per_scheme() -> None:
    """standard needs a base64 secret; hex schemes take any string or none."""
    errors = errors_of("""
        endpoints:
          - {name: a, url: "https://a.example", secret: plain}
          - {name: b, url: "https://b.example", secret: "whsec_!!!"}
          - {name: c, url: "https://c.example"}
    """)
    assert errors[0].startswith("endpoints[0].secret: is not valid")
    assert errors[1].startswith("endpoints[1].secret: is not valid")
    assert errors[2].startswith("endpoints[2].secret: the standard signature scheme needs")
    assert all("plain" not in e for e in errors), "a secret value leaked into an error"
    config = parse_config(textwrap.dedent("""
        endpoints:
          - {name: a, url: "https://a.example", secret: plain, signature: x-webhook}
          - {name: b, url: "https://b.example", signature: babel}
    """), env={})
    assert config.endpoints[0].secrets == ("plain",)
    assert config.endpoints[1].secrets == ()


def test_standard_secret_with_or_without_whsec_prefix() -> None:
    """standard takes base64 after an optional whsec_, padding optional, as Standard Webhooks."""
    bare = SECRET.removeprefix("whsec_")
    padded = "dGhpcyBpcyBhIHNlY29uZCBzZWNyZXQ="
    config = parse_config(textwrap.dedent(f"""
        endpoints:
          - {{name: a, url: "https://a.example", secret: {bare}}}
          - {{name: b, url: "https://b.example", secret: "{padded.rstrip("=")}"}}
          - {{name: c, url: "https://c.example", secret: [{SECRET}, "${{OLD}}"]}}
    """), env={"OLD": padded})
    assert [e.secrets for e in config.endpoints] == [
        (bare,), (padded.rstrip("="),), (SECRET, padded)
    ]


def test_unusable_standard_secrets_name_their_key_path() -> None:
    """Bad base64, a short key or stray whitespace: an error per key path, no secret echoed."""
    dropped = "my_webhook-secret_for_the_crm"  # standardwebhooks would drop the - and _
    errors = errors_of(f"""
        endpoints:
          - {{name: a, url: "https://a.example", secret: "{dropped}"}}
          - {{name: b, url: "https://b.example", secret: c2hvcnQta2V5}}
          - {{name: c, url: "https://c.example", secret: [{SECRET}, whsec_]}}
          - {{name: d, url: "https://d.example", secret: "${{S}}"}}
    """, env={"S": SECRET + "\n"})
    assert errors[0].startswith("endpoints[0].secret: is not valid: the standard scheme needs "
                                "base64, optionally prefixed with whsec_")
    assert errors[1].startswith("endpoints[1].secret: is too short: the key decodes to 9 bytes")
    assert errors[2].startswith("endpoints[2].secret[1]: is too short: the key decodes to 0")
    assert errors[3].startswith("endpoints[3].secret: has leading or trailing whitespace")
    assert len(errors) == 4
    for secret in (dropped, "c2hvcnQta2V5", SECRET.removeprefix("whsec_")):
        assert all(secret not in e for e in errors), "a secret value leaked into an error"


def test_duplicate_endpoint_names_and_yaml_errors() -> None:
    """Names must be unique; broken YAML reports its line."""
    errors = errors_of(f"""
        endpoints:
          - {{name: a, url: "https://a.example", secret: {SECRET}}}
          - {{name: a, url: "https://b.example", secret: {SECRET}}}
    """)
    assert errors == ["endpoints[1].name: 'a' is used by another endpoint; names must be unique"]
    assert errors_of("endpoints: [")[0].startswith("line 1, column 13: invalid YAML")
    assert errors_of("- just\n- a list\n") == ["top level: expected a mapping, got a list"]


def test_relay_check_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`relay check` prints a summary (exit 0) or every error (exit 2)."""
    good = tmp_path / "good.yaml"
    good.write_text(f"endpoints:\n  - {{name: crm, url: 'https://crm.example', "
                    f"secret: {SECRET}}}\n  - {{name: js, url: 'https://js.example', "
                    "signature: x-webhook, secret: s3cret, body: compact}\n")
    assert main(["check", "-c", str(good)]) == 0
    out = capsys.readouterr().out
    assert "endpoints  2" in out and "crm: https://crm.example" in out
    assert "events *; standard signature, 1 secret\n" in out
    assert "events *; x-webhook signature, 1 secret, compact body" in out
    assert SECRET not in out
    bad = tmp_path / "bad.yaml"
    bad.write_text("listen: 1.2.3.4:80\nendpoints: {}\n")
    assert main(["check", "-c", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "endpoints: expected a list of endpoints" in err
    assert "listen: 1.2.3.4 is not a loopback address" in err
    assert main(["check", "-c", str(tmp_path / "missing.yaml")]) == 2
    assert "no such file" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["relay.yaml", "relay.postgres.yaml"])
def test_container_configs_are_valid(name: str) -> None:
    """The configs the Dockerfile and docker-compose.yml ship load once the tokens are set."""
    env = {"RELAY_INGEST_TOKEN": "in", "RELAY_ADMIN_TOKEN": "ad",
           "RELAY_SECRETS_KEY": TEST_SECRETS_KEY}
    config = load_config(ROOT / "docker" / name, env=env)
    assert config.listen_host == "0.0.0.0"
    assert config.ingest.token == "in" and config.admin.token == "ad"
    with pytest.raises(ConfigError, match="RELAY_INGEST_TOKEN is not set"):
        load_config(ROOT / "docker" / name, env={})


def test_operations_and_format_errors_name_their_key() -> None:
    text = textwrap.dedent("""\
        operations:
          notify: [ops, pager, acme]
          events: [endpoint.*, endpoint.disable]
        endpoints:
          - {name: ops, url: https://hooks.slack.example/T/B, signature: x-webhook,
             format: html, events: []}
          - {name: acme, url: https://acme.example/hooks, signature: x-webhook, tenant: acme}
    """)
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert sorted(caught.value.errors) == [
        "endpoints[0].format: expected one of raw, slack; got 'html'",
        "operations.events[1]: 'endpoint.disable' matches no operational event (they are "
        "endpoint.disabled, endpoint.failing, endpoint.recovered, delivery.failed, "
        "endpoint.created, endpoint.updated, endpoint.deleted)",
        "operations.notify[1]: no endpoint named 'pager' in `endpoints` (operational events "
        "go to endpoints of relay.yaml, not to the API's)",
        "operations.notify[2]: 'acme' belongs to tenant 'acme'; operational events tell of "
        "every tenant's endpoints, so they go only to endpoints without a tenant",
    ]
    with pytest.raises(ConfigError) as caught:
        parse_config("endpoints:\n  - {name: chat, url: https://hooks.slack.example/T/B, "
                     "signature: x-webhook, format: slack, body: compact}\n")
    assert caught.value.errors == ["endpoints[0].body: compact re-serialises the event, and "
                                   "`format: slack` sends a message about it instead; use one "
                                   "or the other"]
    with pytest.raises(ConfigError) as caught:
        parse_config("operations: {failing_after: soon}\n")
    assert caught.value.errors == ["operations.failing_after: expected a duration such as "
                                   "500ms, 5s, 10m, 2h or 30d, got 'soon'"]
