"""One line of ``mailflow check``: what was checked, how it went, and what to do about it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Level = Literal["OK", "WARN", "FAIL"]
OK: Level = "OK"
WARN: Level = "WARN"
FAIL: Level = "FAIL"


@dataclass(frozen=True)
class Result:
    name: str
    level: Level
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"{self.level:<4}  {self.name}: {self.detail}"
        if self.fix and self.level != OK:
            text += f" -- fix: {self.fix}"
        return text
