"""URLconf and views of the Django test project (ROOT_URLCONF in conftest's settings)."""

from __future__ import annotations

import asyncio

from django.http import Http404, JsonResponse
from django.urls import path
from kit_http_contract import Recorder

from receiver_kit import Verifier
from receiver_kit.contrib.django import webhook_view

recorder = Recorder()


@webhook_view
def receive(request, event):
    assert request.webhook_event is event
    if event.type == "test.404":
        raise Http404("no such license")
    status, document = recorder.handle(event)
    return JsonResponse(document, status=status)


@webhook_view
async def receive_async(request, event):
    if event.type == "test.block":
        recorder.entered.set()
        await asyncio.to_thread(recorder.gate.wait, 10)
        recorder.calls.append(event.id)
        return JsonResponse({"handled": event.id, "type": event.type})
    status, document = recorder.handle(event)
    return JsonResponse(document, status=status)


@webhook_view(verifier=Verifier("babel-secret", scheme="babel"), store=None)
def receive_babel(request, event, tenant):
    return JsonResponse({"type": event.type, "tenant": tenant})


urlpatterns = [
    path("webhooks", receive),
    path("async/webhooks", receive_async),
    path("tenants/<int:tenant>/babel", receive_babel),
]
