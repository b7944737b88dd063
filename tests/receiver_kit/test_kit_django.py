"""The Django decorator, settings and store through Django's real test clients."""

from __future__ import annotations

import asyncio

import pytest
from kit_http_contract import SECRET, Answer, HTTPContract, delivery

from receiver_kit import ConfigurationError, MemoryStore
from receiver_kit.testing import signed_request


@pytest.fixture(autouse=True)
def _django(django_db):
    """Every test here needs the configured Django of conftest."""
    import kit_django_urls

    kit_django_urls.recorder.reset()
    yield
    from django.db import connections

    connections.close_all()


@pytest.fixture
def recorder():
    import kit_django_urls

    return kit_django_urls.recorder


def _headers(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() != "content-type"}


class TestDjangoSyncView(HTTPContract):
    @pytest.fixture
    def post(self):
        from django.test import Client

        def send(body: bytes, headers: dict[str, str]) -> Answer:
            client = Client(enforce_csrf_checks=True)  # proves the view is csrf-exempt
            try:
                response = client.post(
                    "/webhooks", data=body, content_type="application/json",
                    headers=_headers(headers),
                )
            finally:
                from django.db import connections

                connections.close_all()
            return Answer(response.status_code, response["Content-Type"], response.content)

        return send


class TestDjangoAsyncView(HTTPContract):
    @pytest.fixture
    def post(self):
        from django.test import AsyncClient

        def send(body: bytes, headers: dict[str, str]) -> Answer:
            async def go():
                client = AsyncClient(enforce_csrf_checks=True)
                return await client.post(
                    "/async/webhooks", data=body, content_type="application/json",
                    headers=_headers(headers),
                )

            response = asyncio.run(go())
            return Answer(response.status_code, response["Content-Type"], response.content)

        return send


def test_async_view_is_marked_async():
    """The decorator keeps async views async, so Django does not run them in a thread."""
    import kit_django_urls
    from asgiref.sync import iscoroutinefunction

    assert iscoroutinefunction(kit_django_urls.receive_async)
    assert not iscoroutinefunction(kit_django_urls.receive)
    assert kit_django_urls.receive.csrf_exempt is True


def test_http404_passes_through_and_releases():
    """Http404 from the view is Django's 404, and the claim is released."""
    from django.test import Client

    body, headers = delivery("test.404")
    client = Client()
    for _ in range(2):
        response = client.post("/webhooks", data=body, content_type="application/json",
                               headers=_headers(headers))
        assert response.status_code == 404


def test_explicit_verifier_babel_view_with_url_kwargs():
    """webhook_view(verifier=..., store=None) verifies X-Babel-* and passes URL kwargs."""
    from django.test import Client

    body, headers = signed_request(
        {"Id": 1, "OrderNumber": "SO-1", "EventType": "order.created"}, "babel-secret",
        scheme="babel",
    )
    response = Client().post("/tenants/3/babel", data=body, content_type="application/json",
                             headers=_headers(headers))
    assert response.status_code == 200
    assert response.json() == {"type": "order.created", "tenant": 3}


def test_settings_prefix_overrides_and_errors():
    """RECEIVER_KIT_* settings win over the RECEIVER_KIT dict; errors name the setting."""
    from django.test import override_settings

    from receiver_kit.contrib.django import DjangoStore, kit_settings

    assert isinstance(kit_settings().store, DjangoStore)
    with override_settings(RECEIVER_KIT_SCHEME="babel", RECEIVER_KIT_STORE="memory://"):
        settings = kit_settings()
        assert settings.verifier.scheme == "babel"
        assert isinstance(settings.store, MemoryStore)
    assert kit_settings().verifier.scheme == "standard"
    with override_settings(RECEIVER_KIT={"SCHEME": "standard"}), pytest.raises(
        ConfigurationError, match="RECEIVER_KIT_SECRET is not set"
    ):
        kit_settings()
    with override_settings(RECEIVER_KIT_STORE="django://default"):
        assert kit_settings().store.using == "default"


def test_system_check_reports_bad_configuration():
    """manage.py check reports receiver_kit.E001 for an invalid configuration."""
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError
    from django.test import override_settings

    call_command("check", verbosity=0)
    with override_settings(RECEIVER_KIT={"SECRET": SECRET, "SCHEME": "nope"}), pytest.raises(
        SystemCheckError, match=r"receiver_kit\.E001"
    ):
        call_command("check", verbosity=0)


def test_long_event_ids_are_hashed_into_the_key_column():
    """Event ids longer than the 255-character column still deduplicate."""
    from receiver_kit.contrib.django import DjangoStore

    store = DjangoStore()
    long_id = "evt_" + "x" * 400
    claim = store.claim(long_id)
    assert claim.acquired
    assert store.claim(long_id).status.value == "in_progress"
    assert store.complete(claim)
    assert store.purge() == 0


def test_purge_command():
    """manage.py receiver_kit_purge deletes expired keys."""
    from io import StringIO

    from django.core.management import call_command

    from receiver_kit.contrib.django import DjangoStore

    DjangoStore(clock=lambda: 0.0, lease_s=1).claim("evt_ancient")
    out = StringIO()
    call_command("receiver_kit_purge", stdout=out)
    assert "deleted" in out.getvalue()
    assert DjangoStore().claim("evt_ancient").acquired
