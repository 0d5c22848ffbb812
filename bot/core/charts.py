"""Small SVG charts drawn on the server: no script, no library, nothing fetched; the page
works offline and under the dashboard's Content-Security-Policy."""

from collections.abc import Callable, Mapping, Sequence
from html import escape

WIDTH, HEIGHT = 380, 190
TOP, BOTTOM, LEFT = 28, 34, 12
COLOURS = {
    "bar": "#0969da",
    "bad": "#cf222e",
    "lock": "#bf8700",
    "approval": "#8250df",
    "soak": "#1a7f37",
    "queued": "#8c959f",
}


def _frame(title: str, body: list[str], height: int = HEIGHT) -> str:
    label = escape(title)
    return "\n".join(
        [
            f'<svg class="chart" role="img" aria-label="{label}" viewBox="0 0 {WIDTH} {height}"'
            f' width="{WIDTH}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
            f"<title>{label}</title>",
            f'<text x="{LEFT}" y="16" font-size="13" font-weight="600" fill="#1f2328">'
            f"{label}</text>",
            *body,
            "</svg>",
        ]
    )


def bars(
    title: str,
    labels: Sequence[str],
    values: Sequence[float | None],
    show: Callable[[float], str],
    colour: str = COLOURS["bar"],
) -> str:
    """Draw one bar per label, its value written above it (None: a dash, no bar)."""
    plot = HEIGHT - TOP - BOTTOM - 14  # room for the tallest bar's value under the title
    top = max((v for v in values if v is not None), default=0.0) or 1.0
    step = (WIDTH - 2 * LEFT) / max(len(labels), 1)
    body = [
        f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - LEFT}" y2="{HEIGHT - BOTTOM}"'
        ' stroke="#d0d7de"/>'
    ]
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        x = LEFT + i * step
        middle = x + step / 2
        high = 0.0 if value is None else plot * value / top
        y = HEIGHT - BOTTOM - high
        if high:
            body.append(
                f'<rect x="{x + step * 0.15:.1f}" y="{y:.1f}" width="{step * 0.7:.1f}"'
                f' height="{high:.1f}" fill="{colour}"><title>{escape(label)}: '
                f"{escape(show(value or 0))}</title></rect>"
            )
        text = "n/a" if value is None else show(value)
        body.append(_text(middle, y - 4, text, 11, "#1f2328"))
        body.append(_text(middle, HEIGHT - BOTTOM + 14, label, 10, "#656d76"))
    return _frame(title, body)


def stacked(
    title: str, rows: Sequence[tuple[str, Mapping[str, float]]], show: Callable[[float], str]
) -> str:
    """Draw one horizontal bar per row, split by reason, with a legend."""
    height = TOP + 26 * len(rows) + 34
    span = WIDTH - 2 * LEFT - 150
    top = max((sum(parts.values()) for _, parts in rows), default=0.0) or 1.0
    body: list[str] = []
    for i, (label, parts) in enumerate(rows):
        y, x = TOP + 6 + 26 * i, LEFT + 70.0
        body.append(_text(LEFT, y + 13, label, 11, "#1f2328", anchor="start"))
        for reason, seconds in parts.items():
            width = span * seconds / top
            if width > 0:
                body.append(
                    f'<rect x="{x:.1f}" y="{y}" width="{width:.1f}" height="18"'
                    f' fill="{COLOURS.get(reason, "#0969da")}"><title>{escape(reason)}:'
                    f" {escape(show(seconds))}</title></rect>"
                )
                x += width
        total = sum(parts.values())
        said = "no wait" if parts else "no build entered"
        body.append(_text(x + 6, y + 13, show(total) if total else said, 11, "#1f2328", "start"))
    legend_y = height - 12
    for i, reason in enumerate(("lock", "approval", "soak", "queued")):
        x = LEFT + i * 90
        body.append(
            f'<rect x="{x}" y="{legend_y - 9}" width="10" height="10" fill="{COLOURS[reason]}"/>'
        )
        body.append(_text(x + 14, legend_y, reason, 10, "#656d76", anchor="start"))
    return _frame(title, body, height)


def _text(x: float, y: float, text: str, size: int, colour: str, anchor: str = "middle") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" fill="{colour}"'
        f' text-anchor="{anchor}">{escape(text)}</text>'
    )
