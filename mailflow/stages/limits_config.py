"""The limits of ``Settings`` in the shapes the stages take: parse ``Limits`` and the documents' reader."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from mailflow.stages.documents import DocumentRules
from mailflow.stages.limits import Limits

if TYPE_CHECKING:
    from mailflow.settings import Settings


def limits_of(settings: Settings) -> Limits:
    return Limits(
        message_bytes=settings.max_message_bytes,
        header_bytes=settings.max_header_bytes,
        mime_depth=settings.max_mime_depth,
        attachments=settings.max_attachments,
        attachment_bytes=settings.max_attachment_bytes,
    )


def with_reader_limits(rules: DocumentRules, settings: Settings) -> DocumentRules:
    """``rules`` with the PDF pages, image pixels and reading time set in ``settings`` (when set)."""
    changes = {
        name: value
        for name, value in (
            ("max_pages", settings.pdf_max_pages),
            ("max_pixels", settings.image_max_pixels),
            ("timeout_seconds", settings.ocr_timeout),
            ("email_seconds", settings.documents_time_per_email),
        )
        if value is not None
    }
    return replace(rules, reader=replace(rules.reader, **changes)) if changes else rules
