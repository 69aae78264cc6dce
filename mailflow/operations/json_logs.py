"""Log set-up: coloured-free text lines (the default) or one JSON object per line for log collectors.

Either way the ``MaskingFilter`` sits on the handler, so national register numbers and the like are
masked before the formatter sees the record. Fields passed with ``extra=`` are masked here too, except
the ones that identify a message, reply or worker: those are what lines are correlated by.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from mailflow.identifiers import mask
from mailflow.logging_filter import install_masking

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Identifiers we made ourselves (database keys, our Message-IDs, worker names): never personal data.
KEPT_FIELDS = frozenset({"message_id", "message_pk", "reply_id", "rfc_message_id", "case_id", "worker_id"})
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, extras, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key in _STANDARD or key.startswith("_"):
                continue
            if key not in KEPT_FIELDS and isinstance(value, str):
                value = mask(value)
            entry[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = mask(self.formatException(record.exc_info))
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: int, *, json_lines: bool = False) -> None:
    """Like ``logging.basicConfig``: a stderr handler on the root logger unless one is there already
    (a host application's or pytest's, which are kept), text or JSON; every root handler masked."""
    root = logging.getLogger()
    for old in [handler for handler in root.handlers if getattr(handler, "_mailflow", False)]:
        root.removeHandler(old)
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(TEXT_FORMAT))
        handler._mailflow = True  # type: ignore[attr-defined]
        root.addHandler(handler)
        root.setLevel(level)
    # imapclient's debug lines quote the commands sent: SEARCH by Message-ID, the start of an APPEND.
    logging.getLogger("imapclient").setLevel(max(level, logging.INFO))
    install_masking(root)
