"""`format: slack`: an event as a Slack (or Teams) incoming-webhook message, `{"text": ...}`.

An incoming-webhook URL takes a message, not an arbitrary JSON document, so
an endpoint with this format is sent a sentence about each event instead of
the event: the relay's operational events read as what happened
(`Endpoint *crm* was disabled: ...`), any other event as its type, id and
payload in a code block. Both Slack and Teams' incoming webhooks accept a
body with a `text` field. The text is Slack's mrkdwn, with `&`, `<` and `>`
escaped so that nothing in a payload can become a link or a mention.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["MAX_PAYLOAD_CHARS", "slack_body", "slack_text"]

MAX_PAYLOAD_CHARS = 2500  # of a payload shown in a message (Slack truncates at 40,000)


def _escape(text: object) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _endpoint(data: dict[str, Any]) -> str:
    name = f"*{_escape(data.get('endpoint', '?'))}*"
    tenant = data.get("tenant")
    return f"{name} (tenant {_escape(tenant)})" if tenant else name


def _operational(kind: str, data: dict[str, Any]) -> str | None:
    who = _endpoint(data)
    if kind == "endpoint.disabled":
        text = f":no_entry: Endpoint {who} was disabled: {_escape(data.get('reason', ''))}"
    elif kind == "endpoint.failing":
        text = (f":warning: Endpoint {who} has had no successful delivery since "
                f"{_escape(data.get('failing_since', '?'))}")
        if data.get("last_error"):
            text += f"; last error: {_escape(data['last_error'])}"
    elif kind == "endpoint.recovered":
        text = (f":white_check_mark: Endpoint {who} delivers again (failing since "
                f"{_escape(data.get('failing_since', '?'))})")
    elif kind == "delivery.failed":
        text = (f":x: Delivery {_escape(data.get('delivery_id', '?'))} of "
                f"{_escape(data.get('event_type', '?'))} `{_escape(data.get('event_id', '?'))}` "
                f"to {who} failed after {_escape(data.get('attempts', '?'))} attempts")
        error = data.get("error")
        if error:
            # The stored error ends as the sentence already does ("gave up after 3 attempts").
            error = str(error).removesuffix(f"; gave up after {data.get('attempts')} attempts")
            text += f": {_escape(error)}"
    elif kind in ("endpoint.created", "endpoint.updated", "endpoint.deleted"):
        text = f":gear: Endpoint {who} was {kind.split('.', 1)[1]}"
        if data.get("url"):
            text += f" ({_escape(data['url'])})"
    else:
        return None
    suppressed = data.get("suppressed")
    if isinstance(suppressed, int) and suppressed > 0:
        text += f" (and {suppressed} more like this since the last notice)"
    return text


def slack_text(event_type: str, event_id: str, body: bytes, operational: bool) -> str:
    """The message's text for one event; `operational` when the relay made the event."""
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if operational and isinstance(payload, dict) and isinstance(payload.get("data"), dict):
        text = _operational(event_type, payload["data"])
        if text is not None:
            return text
    shown = body.decode("utf-8", "replace")
    if len(shown) > MAX_PAYLOAD_CHARS:
        shown = shown[:MAX_PAYLOAD_CHARS] + "…"
    return f"*{_escape(event_type)}* `{_escape(event_id)}`\n```{_escape(shown)}```"


def slack_body(event_type: str, event_id: str, body: bytes, operational: bool) -> bytes:
    text = slack_text(event_type, event_id, body, operational)
    return json.dumps({"text": text}, ensure_ascii=False).encode()
