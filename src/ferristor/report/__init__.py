"""Reports people open in a browser: runs and sweeps as one self-contained HTML page.

``runs`` and ``sweeps`` read results (the only modules that know the files' fields); ``lifetime``
projects device lifetimes from a ledger; ``paper`` finds the paper's value for a run or point;
``run_page``, ``sweep_page`` and ``build`` lay out the page; ``figures`` describes plots once and
draws them with Plotly, ``static`` with matplotlib (SVG/PNG for papers).
"""
from .build import build_report, write_report

__all__ = ["build_report", "write_report"]
