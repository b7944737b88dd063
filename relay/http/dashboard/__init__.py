"""The operator dashboard at `/ui`: the admin API as pages, for people rather than scripts.

Server-rendered (Starlette + Jinja2, autoescaped), with its CSS and a small
script shipped in the package (`relay/http/static/`), nothing loaded from
elsewhere. Mount it with `dashboard_routes()`; `security` holds the session,
CSRF and header rules, `views` the pages and actions, `manage` the endpoint
forms' pages, `forms` how a form becomes an API body, `render` the templates.
The tenant portal (`relay.http.portal`) reuses the forms and templates.
"""

from __future__ import annotations

from starlette.routing import BaseRoute

from relay.http.dashboard.security import Sessions
from relay.http.dashboard.views import Dashboard

__all__ = ["Dashboard", "Sessions", "dashboard_routes"]


def dashboard_routes(sessions: Sessions | None = None) -> list[BaseRoute]:
    """The `/ui` routes, with a session key of their own (one per app, so per process)."""
    return Dashboard(sessions).routes()
