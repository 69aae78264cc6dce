"""The XSS vector catalogue the desk is tested against: PyPI ``brs-kb`` and the payloadbox list.

- brs-kb 4.0.2 (MIT, EasyProTech LLC), a test dependency: 4,931 payloads for many contexts.
- payloadbox/xss-payload-list (MIT, İsmail Taşdelen), ``Intruder/xss-payload-list.txt`` at commit
  d473925ebc9aaec0ac8bdb9aa9d26be8d163af04, kept as ``data/xss-payload-list.txt`` with its licence
  beside it (``data/xss-payload-list.LICENSE``): 6,613 lines, one vector each.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

PAYLOADBOX = Path(__file__).resolve().parent / "data" / "xss-payload-list.txt"
BRS_KB_VERSION = "4.0.2"


@dataclass(frozen=True)
class Catalogue:
    entries: int  # as the two sources list them, duplicates included
    vectors: tuple[str, ...]  # each distinct vector once, in the sources' order


def brs_kb_payloads() -> list[str]:
    brs_kb = pytest.importorskip("brs_kb", reason="brs-kb is not installed (pip install -e '.[test]')")
    return [entry["payload"] for entry in brs_kb.get_all_payloads().values()]


def payloadbox_payloads() -> list[str]:
    return [line for line in PAYLOADBOX.read_text(encoding="utf-8").splitlines() if line.strip()]


def catalogue() -> Catalogue:
    entries = brs_kb_payloads() + payloadbox_payloads()
    return Catalogue(entries=len(entries), vectors=tuple(dict.fromkeys(v for v in entries if v.strip())))
