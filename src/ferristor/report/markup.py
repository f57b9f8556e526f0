"""HTML building blocks of the report: escaping, tables, sections, number formats, the page shell."""
from __future__ import annotations

import math
import numbers
from html import escape

from ..config_base import flatten as dotted


class Raw(str):
    """Markup that must not be escaped again."""


def esc(value) -> str:
    return value if isinstance(value, Raw) else escape(str(value))


def slug(text: str) -> str:
    s = "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")
    return "-".join(p for p in s.split("-") if p) or "x"


NA = "n/a"  # a number the results do not record: null in results.json (how a strict writer stores nan)


def known(x) -> bool:
    """Whether ``x`` is a number the page can show (not None, not nan; infinity is one)."""
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and not math.isnan(x)


def fmt(x, spec: str) -> str:
    """``x`` formatted by ``spec`` (e.g. ',.1f'); n/a for a number not recorded, ∞ for infinity."""
    if not known(x):
        return NA
    return "∞" if math.isinf(x) else format(x, spec)


def num(x, digits: int = 4) -> str:
    """A number for a table: whole with thousands separators from 1,000 up, else ``digits`` significant
    digits; n/a for a number not recorded (None or nan)."""
    if not known(x):
        return NA
    if math.isinf(x):
        return "∞"
    if abs(x) >= 1000 or isinstance(x, numbers.Integral) or float(x).is_integer():
        return f"{x:,.0f}"
    return f"{float(x):.{digits}g}"


def shown(value) -> str:
    """A field's value for a reader, not Python's repr: an object as 'rounding=nearest', a list as
    '0, 1', none as '–'."""
    if value is None:
        return "–"
    if isinstance(value, dict):
        return ", ".join(f"{k}={shown(v)}" for k, v in value.items()) or "–"
    if isinstance(value, (list, tuple)):
        return ", ".join(shown(v) for v in value)
    return str(value)


def count(n, word: str) -> str:
    """'1 seed', '2 seeds', '1,200 samples' ('n/a samples' for an unknown count)."""
    return f"{num(n)} {word if n == 1 else word + 's'}"


def pct(values: list[float]) -> str:
    """'mean ± std' of accuracies in percent (std over seeds, ddof 1), over the seeds that record one;
    n/a when none does."""
    m, s = mean_std(values)
    if not known(m):
        return NA
    return f"{m:.2f} ± {s:.2f}" if sum(map(known, values)) > 1 else f"{m:.2f}"


def mean_std(values: list[float]) -> tuple[float, float]:
    vals = [v for v in values if known(v)]
    if not vals:
        return math.nan, math.nan
    m = sum(vals) / len(vals)
    s = math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
    return m, s


def worst(values: list[float], pick=max) -> float:
    """The worst chip's value (``pick``: max for operations, min for margins); nan, shown n/a, when
    any chip does not record it: the worst of the others need not be the worst."""
    return pick(values) if values and all(known(v) for v in values) else math.nan


def table(head: list, rows: list[list], id: str | None = None, row_classes: list[str] | None = None,
          cell_attrs: dict[tuple[int, int], str] | None = None) -> str:
    """``cell_attrs[(row, col)]`` adds raw attributes to one cell (e.g. data for a script)."""
    h = "".join(f"<th>{esc(c)}</th>" for c in head)
    body = []
    for i, r in enumerate(rows):
        cls = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        cells = "".join(f"<td{(' ' + cell_attrs[(i, j)]) if cell_attrs and (i, j) in cell_attrs else ''}>{esc(c)}</td>"
                        for j, c in enumerate(r))
        body.append(f"<tr{cls}>{cells}</tr>")
    ident = f' id="{esc(id)}"' if id else ""
    return f'<div class="table-wrap"><table{ident}><thead><tr>{h}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def kv_table(pairs: list[tuple[str, object]], id: str | None = None) -> str:
    ident = f' id="{esc(id)}"' if id else ""
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in pairs)
    return f'<div class="table-wrap"><table class="kv"{ident}><tbody>{rows}</tbody></table></div>'



def section(id: str, title: str, body: str, level: int = 2) -> str:
    return f'<section id="{esc(id)}"><h{level}>{esc(title)}</h{level}>{body}</section>'


def para(text: str, cls: str = "note") -> str:
    return f'<p class="{cls}">{esc(text)}</p>'


def flatten(d: dict, prefix: str = "") -> dict:
    """Nested config → {'rule.k': 100, ...}; lists as compact text."""
    return {k: ",".join(map(str, v)) if isinstance(v, (list, tuple)) else v for k, v in dotted(d, prefix).items()}


CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#1f3b57;color:#fff;padding:18px 28px}header h1{margin:0 0 4px;font-size:22px}
header p{margin:2px 0;color:#d5e2ee}nav{padding:8px 28px;background:#eef2f6;border-bottom:1px solid #d8dee6}
nav a{margin-right:14px;color:#1f3b57;text-decoration:none}main{padding:8px 28px 40px;max-width:1250px}
section{background:#fff;border:1px solid #e2e6ea;border-radius:6px;padding:6px 18px 14px;margin:16px 0}
section section{border:none;padding:0;margin:12px 0}h2{font-size:19px;color:#1f3b57}h3{font-size:16px;margin-bottom:6px}
.table-wrap{overflow-x:auto}table{border-collapse:collapse;margin:6px 0;font-size:13px}
th,td{border-bottom:1px solid #e5e8eb;padding:3px 10px;text-align:right;white-space:nowrap}
th{background:#f3f5f7;font-weight:600;white-space:normal;vertical-align:bottom;min-width:4em}td:first-child,th:first-child{text-align:left}
table.kv th{text-align:left;background:none}table.kv td{text-align:left;white-space:normal}
tr.diff td{background:#fff6dc}tr.measured td{font-weight:600}tr.total td{font-weight:600;border-top:2px solid #cfd6dd}
.note{color:#555;font-size:12.5px;margin:4px 0 10px}figure.plot{margin:8px 0 14px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:8px}
.paper{color:#7a4a00}.rate{float:right}.rate input{width:7em}.rate input.invalid{border:2px solid #b00020;background:#fff0f0}
.rate-error{color:#b00020;font-weight:600}details summary{cursor:pointer;color:#1f3b57}
"""

# Draws every plot from its JSON, and rescales lifetimes (∝ 1/rate) when a rate box changes.
SCRIPT = """
(function () {
  function fmtSci(x) {  // Python's '{:.3g}' for x >= 1e7: 4e+12, 1.1e+10
    return x.toExponential(2).replace(/\\.?0+e/, 'e').replace(/e\\+?(-?)(\\d)$/, 'e+$1' + '0$2').replace('e+-', 'e-');
  }
  function fmtDays(d) {
    if (d !== d) return 'n/a';  // NaN: the results do not record the worst device's operations
    if (d === null || !isFinite(d)) return 'never';
    if (d >= 1e7) return fmtSci(d) + ' d (' + fmtSci(d / 365.25) + ' y)';  // as report.lifetime.format_days
    if (d >= 365.25) return Math.round(d).toLocaleString('en-US') + ' d (' + (d / 365.25).toLocaleString('en-US', {minimumFractionDigits: 1, maximumFractionDigits: 1}) + ' y)';
    return d < 10 ? Number(d.toPrecision(3)) + ' d' : Math.round(d).toLocaleString('en-US') + ' d';
  }
  var current = null;  // the rate every lifetime on the page is shown at
  function setRate(rate) {
    current = rate;
    document.querySelectorAll('input.rate-input').forEach(function (i) { if (Number(i.value) !== rate) i.value = rate; });
    document.querySelectorAll('[data-days-at-1]').forEach(function (td) {
      var v = td.getAttribute('data-days-at-1');
      td.textContent = (td.getAttribute('data-mark') || '') + fmtDays(v === 'inf' ? Infinity : v === 'nan' ? NaN : Number(v) / rate);
    });
    document.querySelectorAll('[data-lifetime]').forEach(function (el) {
      var base = JSON.parse(el.getAttribute('data-lifetime'));
      Plotly.restyle(el, {y: base.map(function (ys) { return ys.map(function (v) { return v === null ? null : v / rate; }); })});
      var title = el.getAttribute('data-title');
      if (title) Plotly.relayout(el, {'title.text': title.replace('{rate}', String(rate))});
    });
  }
  document.addEventListener('DOMContentLoaded', function () {
    var targets = document.querySelectorAll('.plotly-target');
    targets.forEach(function (el) {
      var spec = JSON.parse(document.getElementById(el.id + '-data').textContent);
      Plotly.newPlot(el, spec.data, spec.layout, spec.config);
    });
    document.body.setAttribute('data-plots-drawn', String(targets.length));
    // 0, a negative, an empty or a garbled rate is shown invalid, and the lifetimes stay at (and say) the last valid one
    function onRate(i) {
      var v = i.value.trim() === '' || i.validity.badInput ? NaN : Number(i.value);
      var ok = isFinite(v) && v > 0;
      document.querySelectorAll('input.rate-input').forEach(function (el) {
        el.classList.toggle('invalid', !ok); el.setAttribute('aria-invalid', String(!ok));
      });
      document.querySelectorAll('.rate-error').forEach(function (m) {
        m.textContent = ok ? '' : 'needs a number > 0: lifetimes are still at ' + current + ' samples per second';
      });
      if (ok) setRate(v);
    }
    document.querySelectorAll('input.rate-input').forEach(function (i) {
      if (current === null) current = Number(i.value);
      i.addEventListener('input', function () { onRate(i); });
    });
  });
})();
"""


def rate_box(rate: float) -> str:
    """The sample rate of every lifetime on the page; the script rescales them as it changes."""
    return (f'<label class="rate">lifetimes at <input class="rate-input" id="rate" type="number" min="0" step="any" '
            f'value="{rate:g}"> samples per second <span class="rate-error" role="alert"></span></label>')


def page(title: str, subtitle: list[str], nav: list[tuple[str, str]], body: str, plotly_js: str, rate: float) -> str:
    links = "".join(f'<a href="#{esc(i)}">{esc(t)}</a>' for i, t in nav) + rate_box(rate)
    sub = "".join(f"<p>{esc(s)}</p>" for s in subtitle)
    js = plotly_js.replace("</script", "<\\/script")
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{esc(title)}</title>'
            f"<style>{CSS}</style><script>{js}</script><script>{SCRIPT}</script></head>"
            f"<body><header><h1>{esc(title)}</h1>{sub}</header><nav>{links}</nav><main>{body}</main></body></html>")
