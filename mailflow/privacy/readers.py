"""How a person's national number is looked for in what residents sent: each stored email's subject and
text, and the text layer of its PDFs, read again in the sandboxed workers the pipeline uses (a hostile
email or PDF costs a child process). Scans and photos are not OCR'd again: hours on a full archive."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from mailflow.stages.parse_sandbox import ParseSandbox
from mailflow.stages.text_sandbox import TextSandbox


@dataclass(frozen=True)
class Readers:
    parse_sandbox: ParseSandbox
    text_sandbox: TextSandbox

    def email_text(self, raw: bytes) -> str:
        parsed = self.parse_sandbox.parse(raw)
        return f"{parsed.subject}\n{parsed.text}"

    def pdf_text(self, data: bytes) -> str:
        return self.text_sandbox.read(data, "application/pdf", ocr=False).text


@contextmanager
def sandboxed_readers(parse_sandbox: ParseSandbox) -> Iterator[Readers]:
    """Readers over the application's parse worker and a text worker of their own, closed after."""
    text_sandbox = TextSandbox()
    try:
        yield Readers(parse_sandbox, text_sandbox)
    finally:
        text_sandbox.close()
