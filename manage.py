#!/usr/bin/env python
"""Warden's command-line entry point."""

import importlib
import os
import sys


def _unmigrated(exc: Exception) -> bool:
    text = str(exc)
    return "no such table" in text or ("relation" in text and "does not exist" in text)


def _offline_verification(argv: list[str]) -> None:
    """`audit_verify --offline` reads no database and needs no secret: an auditor runs it on their
    own machine, so it runs before (and without) Warden's settings, which demand the keys."""
    import argparse

    from audit.offline import OfflineUsage, verify_files

    parser = argparse.ArgumentParser(prog="manage.py audit_verify")
    parser.add_argument("--offline", metavar="EXPORT", required=True)
    parser.add_argument("--checkpoint", metavar="FILE")
    parser.add_argument("--public-key", metavar="KEY")
    args = parser.parse_args(argv)
    try:
        ok, line = verify_files(args.offline, args.checkpoint, args.public_key)
    except OfflineUsage as exc:
        print(f"CommandError: {exc}", file=sys.stderr)
        sys.exit(2)
    print(line, file=sys.stdout if ok else sys.stderr)
    sys.exit(0 if ok else 1)


def main() -> None:
    if sys.argv[1:2] == ["audit_verify"] and any(a == "--offline" or a.startswith("--offline=") for a in sys.argv):
        _offline_verification(sys.argv[2:])
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
