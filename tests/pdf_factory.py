"""Small PDFs written on the fly for tests (reportlab), with optional encryption (pypdf)."""

from __future__ import annotations

import io
from pathlib import Path

import pypdf
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas


def write_pdf(path: Path, pages: list[str | None]) -> Path:
    """One page per entry: its text, or None for a page with only a drawing (like a scan)."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, invariant=True)
    for text in pages:
        if text is None:
            pdf.rect(100, 100, 300, 500, fill=1)
        else:
            y = 780
            for line in text.split("\n"):
                pdf.setFont("Times-Roman", 11)
                pdf.drawString(72, y, line)
                y -= 14
        pdf.showPage()
    pdf.save()
    path.write_bytes(buffer.getvalue())
    return path


def encrypt(source: Path, target: Path, user_password: str) -> Path:
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(source))
    writer.encrypt(user_password=user_password, owner_password="owner-secret", algorithm="AES-256")
    with target.open("wb") as handle:
        writer.write(handle)
    return target
