"""Shared figure style: one colour per method in every figure, and saving PNG + PDF."""
from __future__ import annotations

import zlib
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on cluster nodes
import matplotlib.pyplot as plt  # noqa: E402

from ..io import atomic_path  # noqa: E402

# Fixed colours so a method looks the same in every panel and every figure.
METHOD_COLORS = {
    "gpt": "#7f7f7f",
    "mtp": "#1f77b4",
    "jtp": "#2ca02c",
    "bst": "#9467bd",
    "nextlat": "#d62728",
}
_EXTRA_COLORS = ["#ff7f0e", "#8c564b", "#e377c2", "#bcbd22", "#17becf", "#393b79"]


def method_color(method: str) -> str:
    """Palette colour, or a stable pick (by name hash, not order) for unlisted methods."""
    if method in METHOD_COLORS:
        return METHOD_COLORS[method]
    return _EXTRA_COLORS[zlib.crc32(method.encode()) % len(_EXTRA_COLORS)]




def save(fig, png_path, pdf_path) -> list[Path]:
    """Write the figure as PNG (dpi 150) and PDF, keeping wide legends, then close it."""
    paths = [Path(png_path), Path(pdf_path)]
    try:  # each file atomically; the temp name keeps the suffix matplotlib takes the format from
        for path, kw in zip(paths, ({"dpi": 150}, {})):
            with atomic_path(path, suffix=path.suffix) as tmp:
                fig.savefig(tmp, bbox_inches="tight", **kw)
    finally:
        plt.close(fig)
    return paths


__all__ = ["METHOD_COLORS", "method_color", "plt", "save"]
