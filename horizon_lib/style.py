"""The book's one figure style: sizes, fonts and a colour-blind-safe palette (Okabe–Ito).

Every chapter calls :func:`use_book_style` once; the five cells keep the same colour everywhere.
"""

from __future__ import annotations

import matplotlib as mpl

__all__ = ["PALETTE", "CELL_COLORS", "use_book_style"]

#: Okabe & Ito (2008) colour-blind-safe palette, black first.
PALETTE = ["#000000", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7"]

#: Fixed colour of each gated cell across all chapters.
CELL_COLORS = {
    "ConstGate": "#000000",
    "SharedGate": "#E69F00",
    "DiagGate": "#56B4E9",
    "GRU": "#009E73",
    "LSTM": "#D55E00",
}


def use_book_style() -> None:
    """Apply the book's matplotlib settings (figure size, fonts, grid, palette, dpi)."""
    mpl.rcParams.update({
        "figure.figsize": (7.0, 4.2),
        "figure.dpi": 110,
        "savefig.dpi": 110,
        "font.size": 10,
        "axes.titlesize": 11,
        "axes.labelsize": 10,
        "legend.fontsize": 9,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.prop_cycle": mpl.cycler(color=[PALETTE[i] for i in (1, 2, 3, 5, 6, 7, 0, 4)]),
        "lines.linewidth": 1.6,
        "lines.markersize": 5,
    })

