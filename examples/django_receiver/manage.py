#!/usr/bin/env python
"""Django demo receiver: verifies, deduplicates and logs license events.

::

    python examples/django_receiver/manage.py migrate
    python examples/django_receiver/manage.py runserver 127.0.0.1:9000   # POST /webhooks
"""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    sys.path.insert(0, str(HERE))
    try:
        from receiver_kit import Verifier  # noqa: F401
    except ImportError:  # a source checkout without (or with a stale) `pip install -e .`
        sys.modules.pop("receiver_kit", None)
        sys.path.insert(0, str(HERE.parents[1]))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "receiver_project.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
