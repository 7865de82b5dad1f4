#!/usr/bin/env python
"""Warden's command-line entry point."""

import importlib
import os
import sys


def _unmigrated(exc: Exception) -> bool:
    text = str(exc)
    return "no such table" in text or ("relation" in text and "does not exist" in text)


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.exceptions import ImproperlyConfigured

    # Load settings first so that a configuration mistake is one clear line, not a traceback.
    try:
        importlib.import_module(os.environ["DJANGO_SETTINGS_MODULE"])
    except ImproperlyConfigured as exc:
        print(f"warden: configuration error: {exc}", file=sys.stderr)
        sys.exit(2)

    from django.core.management import execute_from_command_line
    from django.db import DatabaseError

    try:
        execute_from_command_line(sys.argv)
    except DatabaseError as exc:
        if not _unmigrated(exc):
            raise
        from django.conf import settings

        name = settings.DATABASES["default"]["NAME"]
        print(
            f"warden: the database {name} has not been migrated: run `manage.py migrate` first "
            "(for the demo: bin/demo, then bin/warden COMMAND)",
            file=sys.stderr,
        )
        sys.exit(2)


if __name__ == "__main__":
    main()
