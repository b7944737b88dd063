"""The tenant portal at `/portal`: each customer's own webhooks page, embeddable.

A platform gives it to a customer without building one: its backend asks the
admin API for a single-use link (`access.issue_link`), the customer's browser
opens it, and sees and manages that tenant's endpoints only (`views`). Pages
are the dashboard's templates and forms (`relay.http.dashboard`), with the
platform's title and colour, and may be framed by the origins
`portal.frame_ancestors` lists; everything else stays unframeable.
"""

from __future__ import annotations

from starlette.routing import BaseRoute

from relay.http.portal.views import Portal

__all__ = ["Portal", "portal_routes"]


def portal_routes() -> list[BaseRoute]:
    return Portal().routes()
