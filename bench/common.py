"""What every benchmark needs: a fresh PostgreSQL database, Django on it, and percentiles."""

from __future__ import annotations

import logging
import os
from typing import Any


def bench_url() -> str:
    return os.environ.get("WARDEN_BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/warden_bench")


def fresh_database(url: str) -> None:
    import dj_database_url
    import psycopg

    cfg = dj_database_url.parse(url)
    with psycopg.connect(
        host=cfg["HOST"], port=cfg["PORT"] or 5432, user=cfg["USER"], dbname="postgres", autocommit=True
    ) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{cfg["NAME"]}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{cfg["NAME"]}"')


def django_on_fresh_database(url: str, **env: str) -> None:
    """Drop and re-create the bench database, point Django at it, migrate."""
    fresh_database(url)
    os.environ.update(
        DATABASE_URL=url, DJANGO_SETTINGS_MODULE="config.test_settings", WARDEN_DATA_DIR="/tmp/warden-bench", **env
    )
    import django

    django.setup()
    logging.disable(logging.WARNING)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


__all__: list[Any] = ["bench_url", "django_on_fresh_database", "fresh_database", "percentile"]
