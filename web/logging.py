"""Structured logs: one JSON object a line when WARDEN_LOG_FORMAT=json.

Log records never carry never-persist values: Warden logs ids, kinds and outcomes, and the
same scrubbing as the audit trail runs over any `extra` mapping passed to a log call.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

_STANDARD = set(vars(logging.LogRecord("x", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        extra = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        if extra:
            try:
                from audit.redaction import never_persist_keys, scrub

                extra = scrub(extra, never_persist_keys())
            except Exception:  # noqa: BLE001 - before apps are ready: keep keys, drop values
                extra = {k: "[unavailable]" for k in extra}
            entry["extra"] = extra
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)
