"""Build the sample mailbox used by `mailflow demo` from samples/spec.toml.

    python samples/make_samples.py [OUT_DIR]        # default: samples/mailbox

Writes OUT_DIR/<NN>-<slug>.eml for every `[[email]]` of the spec and OUT_DIR/labels.jsonl in the
format of the dev corpus. Needs fpdf2 and Pillow (the `test` extra) for the attachments.

Deterministic: dates, Message-IDs, MIME boundaries and PDF metadata are fixed, so the same spec,
fonts and library versions give the same bytes. Text is drawn with Debian's DejaVu Sans when it is
installed; without it PDFs fall back to the core Helvetica font, which only knows latin-1.
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import math
import random
import subprocess
import sys
import tomllib
from datetime import datetime, timedelta, timezone
from email import policy
from email.message import EmailMessage, Message, MIMEPart
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SPEC = HERE / "spec.toml"
COUNTER = "Migratie Gent <migratie@stad.gent>"
AUTHSERV = "mx.stad.gent"
BASE_DATE = datetime(2026, 3, 9, 8, 3, tzinfo=timezone(timedelta(hours=1)))
DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
# 7bit transfer encodings only: the mailbox is loaded over IMAP, where 8bit bodies are not a given.
POLICY = policy.SMTP.clone(cte_type="7bit")
LABEL_KEYS = ("category", "action", "documents", "intents", "language")


def find_font() -> Path | None:
    """Debian's DejaVu Sans, when fontconfig or the usual path knows it."""
    try:
        found = subprocess.run(
            ["fc-match", "-f", "%{file}", "DejaVu Sans"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        found = ""
    for candidate in (Path(found) if found else None, DEJAVU):
        if candidate and candidate.name == DEJAVU.name and candidate.is_file():
            return candidate
    return None


# --- images ----------------------------------------------------------------------------------


def _pil_font(font: Path | None, size: int) -> Any:
    from PIL import ImageFont

    return ImageFont.truetype(str(font), size) if font else ImageFont.load_default(size=size)


def _wrap(text: str, measure: Any, width: float) -> list[str]:
    lines: list[str] = []
    for para in text.splitlines():
        line = ""
        for word in para.split():
            trial = f"{line} {word}".strip()
            if line and measure(trial) > width:
                lines.append(line)
                line = word
            else:
                line = trial
        lines.append(line)
    return lines


def document_image(text: str, font: Path | None, width: int = 1000, min_height: int = 0) -> Any:
    """A white sheet with the text on it; the first line is the document's heading."""
    from PIL import Image, ImageDraw

    head, body = _pil_font(font, 30), _pil_font(font, 22)
    first, _, rest = text.partition("\n")
    lines = [(line, head, 44) for line in _wrap(first, head.getlength, width - 120)]
    lines += [(line, body, 33) for line in _wrap(rest, body.getlength, width - 120)]
    height = max(min_height, 120 + sum(step for _, _, step in lines))
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    y = 60
    for line, face, step in lines:
        draw.text((60, y), line, fill=(25, 25, 35), font=face)
        y += step
    draw.rectangle((30, 30, width - 30, height - 30), outline=(150, 150, 160), width=2)
    return img


def phone_photo(sheet: Any, seed: str) -> Any:
    """The sheet lying on a table, shot a little askew under uneven light, 800 px wide."""
    from PIL import Image, ImageDraw, ImageFilter

    rng = random.Random(seed)
    pad = 90
    table = Image.new("RGB", (sheet.width + 2 * pad, sheet.height + 2 * pad), (120, 92, 66))
    draw = ImageDraw.Draw(table)
    for x in range(0, table.width, 7):  # wood grain
        shade = rng.randint(-14, 14)
        draw.line((x, 0, x + rng.randint(-30, 30), table.height), fill=(120 + shade, 92 + shade, 66 + shade))
    table.paste(sheet, (pad, pad))
    angle = rng.uniform(-3.5, 3.5)
    photo = table.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=(96, 74, 54))
    light = Image.linear_gradient("L").rotate(rng.choice((0, 90, 180, 270))).resize(photo.size)
    shadow = photo.point(lambda v: int(v * 0.78))
    photo = Image.composite(photo, shadow, light.point(lambda v: 80 + v * 2 // 3))
    photo = photo.filter(ImageFilter.GaussianBlur(0.6))
    return photo.resize((800, round(photo.height * 800 / photo.width)), Image.Resampling.LANCZOS)


def scanned_page(sheet: Any, seed: str) -> Any:
    """A grey, slightly rotated and speckled A4 scan of the sheet."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    page = Image.new("L", (sheet.width, math.ceil(sheet.width * 297 / 210)), 255)
    page.paste(sheet.convert("L"), (0, 0))
    page = page.rotate(rng.uniform(-1.2, 1.2), resample=Image.Resampling.BICUBIC, fillcolor=235)
    draw = ImageDraw.Draw(page)
    for _ in range(400):
        x, y = rng.randrange(page.width), rng.randrange(page.height)
        draw.point((x, y), fill=rng.randint(90, 200))
    return page.point(lambda v: min(255, int(v * 0.93 + 12)))


def encode_image(img: Any, fmt: str) -> bytes:
    out = io.BytesIO()
    if fmt == "png":
        img.convert("RGB").quantize(colors=32).save(out, format="PNG", optimize=True)
    else:
        img.save(out, format="JPEG", quality=70 if img.mode == "RGB" else 60)
    return out.getvalue()


# --- PDFs ------------------------------------------------------------------------------------


def _new_pdf() -> Any:
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_creator("mailflow samples")
    pdf.set_producer("mailflow samples")
    pdf.set_creation_date(BASE_DATE)
    pdf.set_auto_page_break(True, margin=15)
    return pdf


def text_pdf(text: str, pages: int, font: Path | None) -> bytes:
    pdf = _new_pdf()
    if font:
        pdf.add_font("DejaVu", "", str(font))
        family = "DejaVu"
    else:
        family = "Helvetica"
        text = text.encode("latin-1", "replace").decode("latin-1")
    first, _, rest = text.partition("\n")
    for page in range(pages):
        pdf.add_page()
        pdf.set_font(family, size=14)
        pdf.multi_cell(0, 8, first, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(4)
        pdf.set_font(family, size=11)
        pdf.multi_cell(0, 6, rest if page == 0 else f"{rest}\n\n({page + 1}/{pages})")
    return bytes(pdf.output())


def scanned_pdf(text: str, pages: int, font: Path | None, seed: str) -> bytes:
    """Image-only pages: no text layer, as a flatbed scanner or a scanning app makes them."""
    pdf = _new_pdf()
    for page in range(pages):
        shown = text if page == 0 else f"{text}\n\n({page + 1}/{pages})"
        sheet = document_image(shown, font, width=900, min_height=1273)  # A4 proportions
        img = scanned_page(sheet, f"{seed}/{page}")
        pdf.add_page()
        pdf.image(io.BytesIO(encode_image(img, "jpg")), x=0, y=0, w=210, h=297)
    return bytes(pdf.output())


def attachment_bytes(att: dict[str, Any], font: Path | None, seed: str) -> tuple[bytes, str, str]:
    fmt, text, pages = att["format"], att["text"].strip(), att.get("pages", 1)
    if fmt == "pdf":
        return text_pdf(text, pages, font), "application", "pdf"
    if fmt == "pdf-image":
        return scanned_pdf(text, pages, font, seed), "application", "pdf"
    if fmt == "jpg":
        sheet = document_image(text, font, min_height=1414 if att.get("portrait") else 0)
        return encode_image(phone_photo(sheet, seed), "jpg"), "image", "jpeg"
    if fmt == "png":
        return encode_image(document_image(text, font, width=800), "png"), "image", "png"
    raise ValueError(f"unknown attachment format {fmt!r}")


# --- messages --------------------------------------------------------------------------------


def body_text(spec: dict[str, Any]) -> str:
    body = spec.get("body", "").strip("\n") + "\n"
    if spec.get("quoted"):
        quoted = "\n".join(f"> {line}".rstrip() for line in spec["quoted"].strip("\n").splitlines())
        body += f"\n{spec['quote_intro']}\n{quoted}\n"
    return body


def as_html(text: str) -> str:
    paras = "".join(
        f"<p>{html.escape(para).replace(chr(10), '<br>')}</p>\n" for para in text.strip().split("\n\n")
    )
    return (
        '<html><head><meta charset="utf-8"><style>p { font-family: Calibri, Arial; }</style></head>\n'
        f"<body>\n{paras}</body></html>\n"
    )


def dsn_parts(spec: dict[str, Any]) -> list[Any]:
    """The machine-readable status and the returned message of a delivery failure report."""
    per_message, per_recipient = Message(), Message()
    per_message["Reporting-MTA"] = f"dns; {spec['reporting_mta']}"
    per_recipient["Final-Recipient"] = f"rfc822; {spec['failed_rcpt']}"
    per_recipient["Action"] = "failed"
    per_recipient["Status"] = "5.1.1"
    per_recipient["Diagnostic-Code"] = "smtp; 550 5.1.1 user unknown"
    status = MIMEPart(policy=POLICY)
    status["Content-Type"] = "message/delivery-status"
    status.set_payload([per_message, per_recipient])
    returned = EmailMessage(policy=POLICY)
    returned["From"] = COUNTER
    returned["To"] = spec["failed_rcpt"]
    returned["Subject"] = spec["returned_subject"]
    returned["Auto-Submitted"] = "auto-replied"
    returned.set_content(spec["returned_body"].strip() + "\n")
    original = MIMEPart(policy=POLICY)
    original.set_content(returned, cte="7bit")
    return [status, original]


def build_message(spec: dict[str, Any], index: int, font: Path | None) -> bytes:
    stem = f"{index + 1:02d}-{spec['slug']}"
    sender = spec["from"]
    domain = parseaddr(sender)[1].rpartition("@")[2]
    text = body_text(spec)
    msg = EmailMessage(policy=POLICY)
    style = spec.get("style", "plain")
    charset = spec.get("charset", "utf-8")
    if style == "html":
        msg.set_content(as_html(text), subtype="html", charset=charset)
    else:
        msg.set_content(text, charset=charset)
        if style == "alternative":
            msg.add_alternative(as_html(text), subtype="html", charset=charset)
    if spec.get("mime") == "dsn":
        msg.make_mixed()
        msg.set_type("multipart/report")
        msg.set_param("report-type", "delivery-status")
        for part in dsn_parts(spec):
            msg.attach(part)
    for n, att in enumerate(spec.get("attachment", [])):
        data, maintype, subtype = attachment_bytes(att, font, f"{stem}/{n}")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=att["filename"])

    # Trace and authentication headers first, as the receiving server adds them on top.
    content_headers = list(msg.items())
    for name in {name for name, _ in content_headers}:
        del msg[name]
    msg["Return-Path"] = spec.get("return_path", f"<{parseaddr(sender)[1]}>")
    auth = spec.get("auth", "pass")
    if auth != "none":
        msg["Authentication-Results"] = (
            f"{AUTHSERV}; dkim={auth} header.d={domain}; spf={auth} smtp.mailfrom={domain}; "
            f"dmarc={auth} header.from={domain}"
        )
    msg["From"] = sender
    msg["To"] = spec.get("to", COUNTER)
    msg["Subject"] = spec["subject"]
    msg["Date"] = format_datetime(BASE_DATE + timedelta(minutes=43 * index))
    msg["Message-ID"] = f"<{hashlib.sha1(stem.encode()).hexdigest()[:20]}@{domain}>"
    if spec.get("in_reply_to"):
        msg["In-Reply-To"] = spec["in_reply_to"]
        msg["References"] = spec["in_reply_to"]
    for name, value in spec.get("headers", {}).items():
        msg[name] = value
    for name, value in content_headers:
        msg[name] = value
    for part in msg.walk():
        if part is not msg:
            del part["MIME-Version"]  # the stdlib adds it to every part it builds
    for n, part in enumerate(p for p in msg.walk() if p.get_content_maintype() == "multipart"):
        part.set_boundary(f"=_mailflow_sample_{index + 1:02d}_{n}")
    return msg.as_bytes(policy=POLICY)


def label(spec: dict[str, Any], stem: str) -> dict[str, Any]:
    expect = dict(spec["expect"])
    documents = [att["kind"] for att in spec.get("attachment", [])]
    if documents:
        expect["documents"] = documents
    row: dict[str, Any] = {"id": stem, "file": f"{stem}.eml"}
    row.update((key, expect[key]) for key in LABEL_KEYS if key in expect)
    return row


def generate(out_dir: Path, spec_path: Path = SPEC) -> list[dict[str, Any]]:
    """Write every email of the spec and labels.jsonl into out_dir; return the labels."""
    font = find_font()
    emails = tomllib.loads(spec_path.read_text(encoding="utf-8"))["email"]
    out_dir.mkdir(parents=True, exist_ok=True)
    labels = []
    for index, spec in enumerate(emails):
        stem = f"{index + 1:02d}-{spec['slug']}"
        (out_dir / f"{stem}.eml").write_bytes(build_message(spec, index, font))
        labels.append(label(spec, stem))
    with open(out_dir / "labels.jsonl", "w", encoding="utf-8", newline="\n") as fh:
        for row in labels:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return labels


def main(argv: list[str]) -> None:
    out_dir = Path(argv[0]) if argv else HERE / "mailbox"
    labels = generate(out_dir)
    print(f"{len(labels)} emails written to {out_dir} (font: {find_font() or 'Helvetica'})")


if __name__ == "__main__":
    main(sys.argv[1:])
