"""The webhook view: one decorator verifies the signature and deduplicates by event id."""

import logging

from django.http import JsonResponse

from receiver_kit.contrib.django import webhook_view

log = logging.getLogger("license_events")


@webhook_view
def receive(request, event):
    data = event.data if isinstance(event.data, dict) else {}
    keys = ("licenseKey", "license_code", "LicenseId", "license_id")
    license_ref = next((data[k] for k in keys if k in data), "-")
    log.info("%s %s license=%s", event.type, event.id, license_ref)
    return JsonResponse({"received": event.id})
