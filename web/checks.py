"""Warden's own deploy checks, run with `manage.py check --deploy` beside Django's."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register


@register(Tags.security, deploy=True)
def warden_deploy_checks(app_configs: Any, **kwargs: Any) -> list[Any]:
    problems: list[Any] = []
    if settings.DEBUG:
        problems.append(Error("DEBUG is on", hint="unset DEBUG in production", id="warden.E001"))
    if settings.WARDEN_DEV_LOGIN:
        problems.append(Error("WARDEN_DEV_LOGIN is on: password logins bypass the identity provider", id="warden.E002"))
    if not (settings.OIDC_RP_CLIENT_ID and settings.OIDC_OP_ISSUER and settings.OIDC_OP_AUTHORIZATION_ENDPOINT):
        problems.append(
            Error(
                "OpenID Connect is not configured: nobody can sign in",
                hint="set OIDC_OP_ISSUER, OIDC_RP_CLIENT_ID and the OIDC_OP_* endpoints",
                id="warden.E003",
            )
        )
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        problems.append(
            Warning(
                "SQLite is for the quickstart; the audit trail's append-only trigger needs PostgreSQL", id="warden.W001"
            )
        )
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        problems.append(Warning("the filesystem broker is for the quickstart; use Redis", id="warden.W002"))
    if len(set(settings.WARDEN_AUDIT_KEY)) < 8 or len(settings.WARDEN_AUDIT_KEY) < 32:
        problems.append(
            Error("WARDEN_AUDIT_KEY is short or repetitive", hint="use 32+ random characters", id="warden.E004")
        )
    if settings.WARDEN_AUDIT_KEY == settings.SECRET_KEY:
        problems.append(Error("WARDEN_AUDIT_KEY equals SECRET_KEY", id="warden.E005"))
    if not settings.CACHE_URL:
        problems.append(Warning("rate limits use a per-process cache; set WARDEN_CACHE_URL to Redis", id="warden.W003"))
    if settings.ANTHROPIC_BASE_URL.startswith("http://") and settings.ANTHROPIC_API_KEY:
        problems.append(Warning("the model API is reached over plain HTTP", id="warden.W004"))
    return problems


@register(Tags.security, deploy=True)
def warden_database_role_checks(app_configs: Any, **kwargs: Any) -> list[Any]:
    """The runtime role (DATABASE_URL) must not be able to alter or rewrite the audit tables."""
    from django.db import DatabaseError, connection

    from audit.db_roles import runtime_problems

    if connection.vendor != "postgresql":
        return []  # SQLite has no roles; warden.W001 already says it is not for production
    try:
        with connection.cursor() as cursor:
            owns, rewrites = runtime_problems(cursor)
    except DatabaseError as exc:
        return [Warning(f"could not read the database's roles ({type(exc).__name__})", id="warden.W005")]
    problems: list[Any] = []
    if owns:
        problems.append(
            Error(
                "the runtime database role can alter the audit tables: " + "; ".join(owns),
                hint="run migrations as an owner role (MIGRATE_DATABASE_URL) and the app as a role that owns "
                "nothing; `manage.py db_roles` prints the grants (see README, Deployment roles)",
                id="warden.E010",
            )
        )
    if rewrites:
        problems.append(
            Error(
                "the runtime database role can rewrite the audit tables: " + "; ".join(rewrites),
                hint="the app needs only SELECT and INSERT on audit_* tables: run `manage.py db_roles --apply`",
                id="warden.E011",
            )
        )
    return problems
