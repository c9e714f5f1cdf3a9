"""A report as a PDF to hand in: A4 landscape, the stamp, the lineage picture drawn to fit the page width
(cut into parts of a few columns when it would be too small to read), and every table with wrapped cells
that keep all their columns on the page. Drawn with fpdf2 (pure Python, from PyPI); no browser or other
tool runs on the server. Text uses DejaVu Sans where the system has it (every script); elsewhere the PDF
core font, with characters it cannot show replaced by "?".
"""

from __future__ import annotations

from pathlib import Path

from fpdf import FPDF
from fpdf.fonts import FontFace

from provenance.api.layout import BOX_H, BOX_W, COL_W, MARGIN
from provenance.api.picture import TYPE_COLOURS, Drawn, fit
from provenance.api.reportdoc import Cell, Doc

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"),
             Path("/usr/local/share/fonts"), Path("/Library/Fonts"))
PAGE_W, PAGE_H, M = 297.0, 210.0, 10.0  # A4 landscape, margins (mm)
MIN_SCALE = 0.22  # mm per picture pixel below which a picture is cut into parts (~9 pt text at 0.22)


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    h = hex_colour.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


class _Pdf(FPDF):
    def __init__(self) -> None:
        super().__init__(orientation="L", unit="mm", format="A4")
        self.set_margins(M, M, M)
        self.set_auto_page_break(True, M)
        self.family = "helvetica"
        self.unicode = False
        for d in FONT_DIRS:
            regular, bold, mono = d / "DejaVuSans.ttf", d / "DejaVuSans-Bold.ttf", d / "DejaVuSansMono.ttf"
            if regular.is_file() and bold.is_file():
                self.add_font("dejavu", "", str(regular))
                self.add_font("dejavu", "B", str(bold))
                self.family, self.unicode = "dejavu", True
                if mono.is_file():
                    self.add_font("dejavumono", "", str(mono))
                break
        self.footer_text = ""

    def t(self, text: str) -> str:
        return text if self.unicode else text.encode("latin-1", "replace").decode("latin-1")

    def footer(self) -> None:
        self.set_y(-8)
        self.set_font(self.family, "", 7)
        self.set_text_color(120, 120, 120)
        self.cell(0, 4, self.t(f"{self.footer_text} · page {self.page_no()}"), align="R")
        self.set_text_color(0, 0, 0)


def render(doc: Doc, drawn: Drawn | None) -> bytes:
    pdf = _Pdf()
    root = doc.permalink.split("/ui/", 1)[0]
    pdf.footer_text = doc.title[:80]
    pdf.set_title(doc.title)
    pdf.set_creator("provenance")
    pdf.add_page()
    pdf.set_font(pdf.family, "B", 15)
    pdf.multi_cell(0, 7, pdf.t(doc.title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(pdf.family, "", 8)
    for c in doc.subtitle:
        _line(pdf, [c], root)
    pdf.ln(2)
    _facts(pdf, doc.stamp, root)
    if drawn is not None and drawn.nodes:
        _picture(pdf, drawn)
    for s in doc.sections:
        pdf.ln(3)
        pdf.set_font(pdf.family, "B", 11)
        pdf.multi_cell(0, 6, pdf.t(s.heading), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font(pdf.family, "", 8)
        if s.facts:
            _facts(pdf, s.facts, root)
        if s.table is not None:
            _table(pdf, s.table.columns, s.table.rows, s.table.widths, s.table.empty, root)
        for st in s.steps:
            pdf.ln(1)
            pdf.set_font(pdf.family, "B", 8)
            _line(pdf, st.title, root)
            pdf.set_font(pdf.family, "", 8)
            for i, step in enumerate(st.steps, 1):
                _line(pdf, [Cell(f"{i}."), *step], root, indent=4)
        if s.note:
            pdf.multi_cell(0, 4, pdf.t(s.note), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def _text(cells: list[Cell]) -> str:
    return " ".join(c.text for c in cells)


def _line(pdf: _Pdf, cells: list[Cell], root: str, indent: float = 0) -> None:
    """One line of cells (wrapped), linked to the first cell's page when it has one."""
    href = next((c.href for c in cells if c.href), None)
    pdf.set_x(M + indent)
    pdf.multi_cell(PAGE_W - 2 * M - indent, 4, pdf.t(_text(cells)), new_x="LMARGIN", new_y="NEXT",
                   link=_abs(root, href) if href else "")


def _abs(root: str, href: str | None) -> str:
    if not href:
        return ""
    return href if href.startswith("http") else root + href


def _facts(pdf: _Pdf, facts: list[tuple[str, list[Cell]]], root: str) -> None:
    _table(pdf, ["", ""], [[[Cell(k)], v] for (k, v) in facts], [18, 82], "", root, heading=False)


def _table(pdf: _Pdf, columns: list[str], rows: list[list[list[Cell]]], widths: list[int], empty: str, root: str,
           heading: bool = True) -> None:
    if not rows:
        if empty:
            pdf.multi_cell(0, 4, pdf.t(empty), new_x="LMARGIN", new_y="NEXT")
        return
    widths = widths if len(widths) == len(columns) else [1] * len(columns)
    head = FontFace(emphasis="BOLD", fill_color=(233, 236, 239))
    with pdf.table(col_widths=tuple(widths), width=PAGE_W - 2 * M, text_align="LEFT", line_height=3.6,
                   first_row_as_headings=heading, headings_style=head, borders_layout="HORIZONTAL_LINES",
                   padding=0.8) as table:
        if heading:
            r = table.row()
            for name in columns:
                r.cell(pdf.t(name))
        usable = PAGE_W - 2 * M
        for row in rows:
            r = table.row()
            for k, cs in enumerate(row):
                href = next((c.href for c in cs if c.href), None)
                text = "; ".join(c.text for c in cs) if all(c.href for c in cs) else _text(cs)
                width = usable * widths[k] / sum(widths) - 2 * 0.8 - 0.6
                r.cell(pdf.t(_wrap(pdf, text, width)), link=_abs(root, href) if href else None)


#: where a long path or id may wrap: after these (no character is added to the text, so that a copy or a
#: search of the PDF finds the id; a line break is what pdftotext gives where a cell wraps)
_BREAK_AFTER = "/_@-.:?&=,"


def _wrap(pdf: _Pdf, text: str, width: float) -> str:
    """``text`` with line breaks where a word is wider than ``width`` (mm): after a '/', '_' and the like
    when there is one, else where the line is full. Words that fit are left to fpdf2, which wraps at spaces."""
    if width <= 2 or pdf.get_string_width(text) <= width:
        return text
    out = []
    for word in text.split(" "):
        while pdf.get_string_width(word) > width:
            fits = 1
            while fits < len(word) and pdf.get_string_width(word[:fits + 1]) <= width:
                fits += 1
            cut = max((i + 1 for i in range(fits) if word[i] in _BREAK_AFTER and i + 1 < len(word)), default=0)
            cut = cut if cut > fits // 3 else fits
            out.append(word[:cut] + "\n")
            word = word[cut:]
        out.append(word + " ")
    return "".join(out).rstrip(" ").replace("\n ", "\n")


def _picture(pdf: _Pdf, drawn: Drawn) -> None:
    """The picture scaled to the page width; cut into parts of whole columns when that scale is too small."""
    placed = drawn.placed
    ncols = max(placed.columns.values()) + 1 if placed.columns else 1
    avail_w = PAGE_W - 2 * M
    scale = min(avail_w / placed.width, 0.35)
    per = ncols
    if scale < MIN_SCALE:
        per = max(1, int((avail_w / MIN_SCALE - 2 * MARGIN + (COL_W - BOX_W)) // COL_W))
        scale = min(avail_w / (2 * MARGIN + per * COL_W - (COL_W - BOX_W)), 0.35)
    parts = [(s, min(ncols, s + per)) for s in range(0, ncols, per)]
    for i, (c0, c1) in enumerate(parts, 1):
        x0 = MARGIN + c0 * COL_W - MARGIN
        x1 = MARGIN + c1 * COL_W - (COL_W - BOX_W) + MARGIN
        inside = [b for n, b in placed.boxes.items() if c0 <= placed.columns.get(n, 0) < c1]
        y0 = max(0.0, min(b.y for b in inside) - MARGIN) if inside else 0.0
        y1 = min(placed.height, max(b.y + b.h for b in inside) + MARGIN) if inside else placed.height
        h = (y1 - y0) * scale
        if pdf.get_y() + h + 8 > PAGE_H - M:
            pdf.add_page()
        pdf.set_font(pdf.family, "B", 9)
        label = "Lineage" + (f" (part {i} of {len(parts)})" if len(parts) > 1 else "")
        pdf.multi_cell(0, 5, pdf.t(label), new_x="LMARGIN", new_y="NEXT")
        top = pdf.get_y()

        def at(x: float, y: float, x0: float = x0, y0: float = y0, top: float = top) -> tuple[float, float]:
            return M + (x - x0) * scale, top + (y - y0) * scale

        with pdf.rect_clip(M, top, (x1 - x0) * scale, h):
            pdf.set_line_width(0.2)
            for _a, _b, pts in placed.routes:
                pdf.set_draw_color(134, 142, 150)
                poly = _sampled(pts)
                pdf.polyline([at(x, y) for x, y in poly])
                (xa, ya), (xb, yb) = poly[-2], poly[-1]
                _arrow(pdf, at(xa, ya), at(xb, yb))
            for n in drawn.nodes:
                colour = _rgb(TYPE_COLOURS.get(n["type"], "#495057"))
                x, y = at(n["x"], n["y"])
                pdf.set_draw_color(*colour)
                pdf.set_fill_color(*[int(255 - (255 - c) * 0.16) for c in colour])
                pdf.set_line_width(0.6 if n["start"] else 0.25)
                pdf.rect(x, y, BOX_W * scale, BOX_H * scale, style="DF",
                         round_corners=n["kind"] == "app", corner_radius=min(3.0, BOX_H * scale / 2))
                pdf.set_font(pdf.family, "B", max(4.0, 12 * scale * 2.4))
                pdf.text(x + 2.2 * scale * 4, y + 18 * scale, pdf.t(fit(n["label"])))
                pdf.set_font(pdf.family, "", max(3.5, 11 * scale * 2.4))
                pdf.text(x + 2.2 * scale * 4, y + 34 * scale, pdf.t(fit(n["sub"], 34)))
        pdf.set_y(top + h + 2)
    pdf.set_line_width(0.2)
    pdf.set_draw_color(0, 0, 0)
    pdf.set_fill_color(255, 255, 255)


def _sampled(pts: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The drawn route (curves between columns, straight through dummy rows) as a polyline."""
    out = [pts[0]]
    for i, (x, y) in enumerate(pts[1:]):
        px, py = out[-1]
        if (i % 2 == 1 and y == py and i < len(pts) - 2) or abs(x - px) < 1:
            out.append((x, y))
            continue
        mx = (px + x) / 2
        for k in range(1, 13):
            t = k / 12
            bx = (1 - t) ** 3 * px + 3 * (1 - t) ** 2 * t * mx + 3 * (1 - t) * t ** 2 * mx + t ** 3 * x
            by = (1 - t) ** 3 * py + 3 * (1 - t) ** 2 * t * py + 3 * (1 - t) * t ** 2 * y + t ** 3 * y
            out.append((bx, by))
    return out


def _arrow(pdf: _Pdf, a: tuple[float, float], b: tuple[float, float]) -> None:
    import math

    ang = math.atan2(b[1] - a[1], b[0] - a[0])
    size = 1.2
    left = (b[0] - size * math.cos(ang - 0.45), b[1] - size * math.sin(ang - 0.45))
    right = (b[0] - size * math.cos(ang + 0.45), b[1] - size * math.sin(ang + 0.45))
    pdf.set_fill_color(134, 142, 150)
    pdf.polygon([b, left, right], style="F")
