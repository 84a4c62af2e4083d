"""MkDocs hooks: the pages made from the program itself, so they cannot drift from it.

- configuration.md: every setting, from `config.Settings`, `SETTING_HELP`, `BOUNDS` and `CHOICES`;
- benchmarks.md: charts (SVG) from the figures the benchmarks keep in `bench/results/*.json`, and
  their latest reports (`bench/results/*.md`).
The command-line reference (cli.md) is made by mkdocs-click from the click commands.
"""

from __future__ import annotations

import dataclasses
import html
import json
import math
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def on_page_markdown(markdown: str, page, config, files) -> str:
    if "<!-- settings table:" in markdown:
        markdown = _replace_marker(markdown, "settings table", settings_table())
    if "<!-- benchmark charts:" in markdown:
        markdown = _replace_marker(markdown, "benchmark charts", charts())
    if "<!-- benchmark reports:" in markdown:
        markdown = _replace_marker(markdown, "benchmark reports", reports())
    return markdown


def _replace_marker(markdown: str, name: str, text: str) -> str:
    start = markdown.index(f"<!-- {name}:")
    end = markdown.index("-->", start) + 3
    return markdown[:start] + text + markdown[end:]


def settings_table() -> str:
    from recording_index.config import BOUNDS, CHOICES, ENV_PREFIX, SETTING_HELP, Settings

    rows = ["| setting | default | values | environment variable | meaning |", "|---|---|---|---|---|"]
    for field in dataclasses.fields(Settings):
        default = field.default
        shown = "empty" if default == "" else f"`{json.dumps(default) if isinstance(default, bool) else default}`"
        if field.name in BOUNDS:
            low, high = BOUNDS[field.name]
            values = f"{low:g} to {high:g}"
        elif field.name in CHOICES:
            values = ", ".join(f"`{c}`" for c in CHOICES[field.name])
        else:
            values = {"bool": "`true`, `false`"}.get(getattr(field.type, "__name__", str(field.type)), "text")
        rows.append(f"| `{field.name}` | {shown} | {values} | `{ENV_PREFIX}{field.name.upper()}` | "
                    f"{SETTING_HELP[field.name]} |")
    return "\n".join(rows)


def _points(name: str) -> tuple[str, list[dict]]:
    try:
        data = json.loads((RESULTS / f"{name}.json").read_text())
        return data["key"], data["points"]
    except (OSError, ValueError, KeyError):
        return "", []


def svg_chart(title: str, x_label: str, y_label: str, series: list[tuple[str, list[tuple[float, float]]]],
              log_x: bool = False, target: float | None = None) -> str:
    """A small line chart as inline SVG: points joined, each labelled with its value."""
    width, height, left, bottom, top, right = 560, 300, 60, 40, 30, 20
    xs = [x for _, points in series for x, _ in points]
    ys = [y for _, points in series for _, y in points] + ([target] if target else [])
    if not xs:
        return f"*{html.escape(title)}: no figures yet (run `make bench`).*"
    fx = (lambda v: math.log10(v)) if log_x else (lambda v: v)
    x0, x1 = fx(min(xs)), fx(max(xs))
    x1 = x1 if x1 > x0 else x0 + 1
    y1 = max(ys) * 1.15 or 1

    def px(x: float) -> float:
        return left + (fx(x) - x0) / (x1 - x0) * (width - left - right)

    def py(y: float) -> float:
        return height - bottom - y / y1 * (height - bottom - top)

    colours = ["#0b57d0", "#b3261e", "#1a7f37"]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{html.escape(title)}" style="max-width:100%;font:12px sans-serif">',
             f'<text x="{width / 2}" y="16" text-anchor="middle" font-weight="bold">{html.escape(title)}</text>',
             f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="#555"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#555"/>',
             f'<text x="{width / 2}" y="{height - 6}" text-anchor="middle">{html.escape(x_label)}</text>',
             f'<text x="14" y="{height / 2}" text-anchor="middle" transform="rotate(-90 14 {height / 2})">'
             f'{html.escape(y_label)}</text>']
    if target:
        parts.append(f'<line x1="{left}" y1="{py(target):.1f}" x2="{width - right}" y2="{py(target):.1f}" '
                     f'stroke="#999" stroke-dasharray="4 4"/><text x="{width - right}" y="{py(target) - 4:.1f}" '
                     f'text-anchor="end" fill="#555">target {target:g}</text>')
    for number, (label, points) in enumerate(series):
        colour = colours[number % len(colours)]
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in sorted(points))
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, y in points:
            parts.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3.5" fill="{colour}"/>'
                         f'<text x="{px(x):.1f}" y="{py(y) + (16 if number % 2 else -8):.1f}" text-anchor="middle">{y:g}</text>'
                         f'<text x="{px(x):.1f}" y="{height - bottom + 14}" text-anchor="middle">{x:g}</text>')
        parts.append(f'<text x="{left + 8}" y="{top + 14 + 14 * number}" fill="{colour}">{html.escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def charts() -> str:
    _, search = _points("search")
    _, pipeline = _points("pipeline")
    _, memory = _points("memory")
    return "\n\n".join([
        svg_chart("Search latency against archive size", "archive (hours, log scale)", "ms",
                  [("p95", [(p["hours"], p["p95_ms"]) for p in search]),
                   ("p50", [(p["hours"], p["p50_ms"]) for p in search])], log_x=True, target=50),
        svg_chart("Pipeline speed against recording length", "recording (minutes)", "× real time",
                  [("whole pipeline, English included", [(p["minutes"], p["real_time"]) for p in pipeline])],
                  target=15),
        svg_chart("Peak memory against recording length", "recording (minutes)", "MiB",
                  [("faster-whisper int8", [(p["minutes"], p["peak_mib"]) for p in memory])], target=1024),
        "Each point's commit, date and machine are in `bench/results/*.json`.",
    ])


def reports() -> str:
    found = sorted(RESULTS.glob("*.md"))
    if not found:
        return "No report kept yet: `make bench` writes them."
    return "\n\n".join(path.read_text().replace("\n## ", "\n### ").replace("## ", "### ", 1) for path in found)
