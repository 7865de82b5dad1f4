"""Serving settings and URLs for bench/api_load.py: the app as deployed, plus two DRF endpoints
to compare the decision API with, served by the same gunicorn in the same run.

- POST /bench/noop: a DRF view that parses the JSON body and answers (no database);
- POST /bench/insert: the same, plus one durable single-row INSERT (autocommit, synchronous
  commit): the least durable work a decision with an audit record can do.

Served with DJANGO_SETTINGS_MODULE=bench.serving_settings.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import connection
from django.urls import include, path
from rest_framework.decorators import api_view, authentication_classes, permission_classes, throttle_classes
from rest_framework.request import Request
from rest_framework.response import Response

TABLE_SQL = "CREATE TABLE IF NOT EXISTS bench_insert (id bigserial PRIMARY KEY, at timestamptz NOT NULL, body jsonb)"


@api_view(["POST"])
@authentication_classes([])
@permission_classes([])
@throttle_classes([])
def noop(request: Request) -> Response:
    return Response({"ok": True, "keys": sorted(request.data)})


@api_view(["POST"])
@authentication_classes([])
@permission_classes([])
@throttle_classes([])
def insert(request: Request) -> Response:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO bench_insert (at, body) VALUES (now(), %s) RETURNING id", [json.dumps(request.data)]
        )
        row: Any = cursor.fetchone()
    return Response({"ok": True, "id": row[0]})


urlpatterns = [path("bench/noop", noop), path("bench/insert", insert), path("", include("config.urls"))]
