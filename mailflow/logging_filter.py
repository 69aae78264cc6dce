"""Keeps personal identifiers out of every log line: national register numbers, card numbers, MRZ
lines, PIN/PUK codes and dates of birth are masked before any handler formats the record.

The filter sits on handlers, not on loggers: a logger's own filters never see records that propagate up
from its children, a handler's see them all.
"""

from __future__ import annotations

import logging
import traceback

from mailflow.identifiers import mask


class MaskingFilter(logging.Filter):
    """Replaces the record's message by its masked, fully formatted text and clears its arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # arguments that do not fit the format: never let the raw ones through
            message = f"{record.msg} (unformattable arguments)"
        record.msg = mask(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            # formatters reuse exc_text when set, so the traceback is masked once for every handler
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        return True


def install_masking(logger: logging.Logger | None = None) -> MaskingFilter:
    """Attach one shared ``MaskingFilter`` to every handler of ``logger`` (the root logger by default).

    Handlers added later need ``handler.addFilter(filter)`` themselves; calling this again is harmless:
    a handler never gets a second masking filter."""
    target = logger if logger is not None else logging.getLogger()
    masking = MaskingFilter()
    for handler in target.handlers:
        if not any(isinstance(f, MaskingFilter) for f in handler.filters):
            handler.addFilter(masking)
    return masking
