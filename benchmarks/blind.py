"""The blind evaluation corpus, split into its open and frozen halves and built into .eml files.

    python -m benchmarks.blind [OUTPUT_DIR]     # default storage/corpora

writes ``blind-open/`` and ``blind-frozen/`` (each an ``.eml`` per email plus ``labels.jsonl``) from
``benchmarks/corpus/blind/spec/*.jsonl``. An email belongs to the frozen half when the SHA-256 of its
id is even: a split nobody chose, stable as the corpus grows. The frozen half is read only in
aggregate figures (``mailflow bench classify``), never email by email, and never trained on.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC_DIR = ROOT / "benchmarks" / "corpus" / "blind" / "spec"
MKCORPUS = ROOT.parent / "shared" / "corpus" / "mkcorpus.py"


def frozen(email_id: str) -> bool:
    return int(hashlib.sha256(email_id.encode()).hexdigest(), 16) % 2 == 0


def split(spec_dir: Path = SPEC_DIR) -> tuple[list[str], list[str]]:
    """(open lines, frozen lines) of every spec file, in file order."""
    halves: tuple[list[str], list[str]] = ([], [])
    for path in sorted(spec_dir.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                halves[frozen(json.loads(line)["id"])].append(line)
    return halves


def build(output: Path) -> dict[str, int]:
    output.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name, lines in zip(("blind-open", "blind-frozen"), split(), strict=True):
        spec = output / f"{name}.jsonl"
        spec.write_text("\n".join(lines) + "\n", encoding="utf-8")
        subprocess.run([sys.executable, str(MKCORPUS), str(spec), str(output / name)], check=True)
        counts[name] = len(lines)
    return counts


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "storage" / "corpora"
    for half, count in build(target).items():
        print(f"{count} emails in {target / half}")
