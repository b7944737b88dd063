"""Framework integrations; each needs its extra and imports the core, never the reverse.

* `receiver_kit.contrib.starlette`: an ASGI middleware verifying and
  deduplicating requests under path prefixes (Starlette, FastAPI, any ASGI app).
* `receiver_kit.contrib.fastapi`: a dependency yielding the verified event
  (``pip install 'license-webhook-relay[fastapi]'``).
* `receiver_kit.contrib.flask`: a view decorator and an extension reading
  ``app.config`` (``[flask]``).
* `receiver_kit.contrib.django`: a csrf-exempt view decorator for sync and async
  views, settings, and a database idempotency store (``[django]``).
"""

__all__: list[str] = []
