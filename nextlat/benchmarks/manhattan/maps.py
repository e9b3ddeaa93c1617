"""Maps of reconstructed street graphs (NextLat Figure 3), after Vafa et al.'s make_maps.py.

Each reconstruction (:mod:`nextlat.evaluation.reconstruction`) is drawn with folium on a
blank background: true streets the traversals used as straight black lines, and the new
edges the traversals needed (streets the city lacks) as curves bent towards their
direction label, so a wrong "NE" visibly leaves heading north-east. In the "close" view
the curves fade from lightsalmon (start) to firebrick (end), showing which way they run.

Deviations from the original:

* Unused true streets, which the original skips, are drawn in very light grey (turn off
  with ``show_unused=False``) so the real grid shows through sparse reconstructions.
* The original's fixed Manhattan windows become ``fit_bounds`` windows computed from the
  graph ("far": the whole graph; "close": a window 1/6 of the extent, widened on small
  graphs, where intersections are densest), so any city works and every method's map of
  a graph shows the same window.
* The HTML is self-contained: Leaflet is inlined from ``plots/vendor`` instead of being
  linked from CDNs, so the maps (and their PNG screenshots) render with no network.

PNGs come from a headless Chromium screenshot of the HTML (:func:`screenshot`).
"""
from __future__ import annotations

import html
import os
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import folium
import numpy as np
from branca.element import Element, MacroElement
from jinja2 import Template
from matplotlib.colors import to_hex, to_rgb

from ...io import atomic_path
from .streets import DIR_STEPS, StreetGraph
from .reconstruction import Reconstruction, require_coords

VIEWS = ("far", "close")
VENDOR = Path(__file__).with_name("vendor")
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
BROWSER_ENV = "NEXTLAT_CHROMIUM"

CURVE_POINTS = 50  # points per new-edge curve, as the original
BEND_DEG = 0.002  # control point offset from the start node towards the label
RAMP_PIECES = 7  # colour steps along a "close" curve (49 segments = 7 x 7)
CLOSE_FRACTION = 1 / 6  # close window size relative to the graph's extent...
CLOSE_MIN_NODES = 100  # ...but large enough to hold about this many intersections

UNUSED_STYLE = {"color": "#e0e0e0", "weight": 1, "opacity": 1.0}
USED_STYLE = {"color": "black", "weight": 1.5, "opacity": 0.45}  # original: 1 / 0.3, too faint in a PNG
NEW_STYLE = {
    "far": {"colors": ("black", "black"), "weight": 0.75, "opacity": 0.3},
    "close": {"colors": ("lightsalmon", "firebrick"), "weight": 1.5, "opacity": 0.7},
}
# Leaflet's default #ddd container would swallow the light-grey unused streets.
PAGE_CSS = ".leaflet-container { background: #fff; }"


# --- geometry ----------------------------------------------------------------------------
def bezier_edge(lat1: float, lon1: float, lat2: float, lon2: float, direction: int,
                n_points: int = CURVE_POINTS) -> np.ndarray:
    """(n_points, 2) lat/lon of a quadratic Bezier from node 1 to node 2.

    The control point is node 1 moved ``BEND_DEG`` along the label's unit step (N = +lat,
    E = +lon; diagonals move both), so the curve leaves in the labelled direction.
    """
    p0, p2 = np.array([lat1, lon1]), np.array([lat2, lon2])
    p1 = p0 + BEND_DEG * DIR_STEPS[direction]
    t = np.linspace(0.0, 1.0, n_points)[:, None]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t ** 2 * p2


def _extent(graph: StreetGraph) -> tuple[np.ndarray, np.ndarray]:
    """(south-west, north-east) corners, padded so a one-street graph still has area."""
    lo = np.array([graph.lat.min(), graph.lon.min()])
    hi = np.array([graph.lat.max(), graph.lon.max()])
    pad = np.maximum(0.0, 0.002 - (hi - lo)) / 2
    return lo - pad, hi + pad


def close_window(graph: StreetGraph, fraction: float = CLOSE_FRACTION,
                 min_nodes: int = CLOSE_MIN_NODES, bins: int = 60) -> list:
    """[[south, west], [north, east]] of the "close" view.

    A window ``fraction`` of the extent on each side (Manhattan's 4.6k intersections: about
    130 in view), widened on small graphs to hold about ``min_nodes`` intersections on
    average, so a small synthetic city still shows a few blocks. It is placed (on a
    ``bins`` x ``bins`` grid) where it holds the most intersections; ties go to the window
    nearest the middle. It depends on the graph only, so every reconstruction of a graph
    gets the same window.
    """
    fraction = min(1.0, max(fraction, np.sqrt(min_nodes / graph.n_nodes)))
    lo, hi = _extent(graph)
    counts, _, _ = np.histogram2d(graph.lat, graph.lon, bins=bins, range=list(zip(lo, hi)))
    win = max(1, round(bins * fraction))
    csum = np.pad(counts.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    sums = csum[win:, win:] - csum[:-win, win:] - csum[win:, :-win] + csum[:-win, :-win]
    rows, cols = np.nonzero(sums == sums.max())
    middle = (bins - win) / 2
    best = np.argmin((rows - middle) ** 2 + (cols - middle) ** 2)
    cell = (hi - lo) / bins
    south_west = lo + cell * np.array([rows[best], cols[best]])
    return [south_west.tolist(), (south_west + cell * win).tolist()]


def far_window(graph: StreetGraph) -> list:
    lo, hi = _extent(graph)
    return [lo.tolist(), hi.tolist()]


def _ramp(colors: tuple[str, str], n: int) -> list[str]:
    """``n`` hex colours from ``colors[0]`` to ``colors[1]`` (midpoints of n equal steps)."""
    a, b = np.array(to_rgb(colors[0])), np.array(to_rgb(colors[1]))
    return [to_hex(a + (b - a) * (i + 0.5) / n) for i in range(n)]


# --- drawing -----------------------------------------------------------------------------
def _base_map(graph: StreetGraph) -> folium.Map:
    lo, hi = _extent(graph)
    m = folium.Map(location=((lo + hi) / 2).tolist(), zoom_start=13, tiles=None, zoom_control=False,
                   attribution_control=False, prefer_canvas=True, zoom_snap=0.1,
                   zoom_animation=False, fade_animation=False)  # a screenshot shows the final frame
    # Nothing from CDNs: Leaflet is inlined by _inline_leaflet, nothing else is needed.
    m.default_js, m.default_css = [], []
    return m


def _inline_leaflet(m) -> None:
    js = (VENDOR / "leaflet.js").read_text(encoding="utf-8")
    js = re.sub(r"^//# sourceMappingURL=.*$", "", js, flags=re.M)  # no .map lookups offline
    css = (VENDOR / "leaflet.css").read_text(encoding="utf-8")
    header = m.get_root().header
    header.add_child(Element(f"<style>{css}</style>"), name="leaflet_css")
    header.add_child(Element(f"<style>{PAGE_CSS}</style>"), name="nextlat_css")
    header.add_child(Element(f"<script>{js}</script>"), name="leaflet")


def _add_title(m, title: str | None, note: str | None = None) -> None:
    """The caption at the top of the map: ``title``, and under it ``note`` in red (e.g. "no
    usable sequences", so that an empty map is not read as a perfect one)."""
    lines = [html.escape(title)] if title else []
    if note:
        lines.append(f'<span class="nextlat-note" style="color:firebrick">{html.escape(note)}</span>')
    if not lines:
        return
    style = ("position:absolute;top:8px;left:50%;transform:translateX(-50%);z-index:1000;"
             "font:16px sans-serif;background:rgba(255,255,255,0.8);padding:2px 8px;text-align:center")
    m.get_root().html.add_child(Element(f'<div style="{style}">{"<br>".join(lines)}</div>'))


class EdgeLines(MacroElement):
    """Lines sharing one style, written as a compact data array.

    Each line still becomes its own Leaflet layer, so overlapping translucent lines darken
    as in the original; but the HTML holds just the coordinates of each line (about 50
    bytes per street) instead of a ~500-byte folium PolyLine block per street.
    """

    _template = Template("""
        {% macro script(this, kwargs) %}
        (function () {
            var lines = {{ this.lines|tojson }};
            var style = {{ this.style|tojson }};
            for (var i = 0; i < lines.length; i++) {
                L.polyline(lines[i], style).addTo({{ this._parent.get_name() }});
            }
        })();
        {% endmacro %}
    """)

    def __init__(self, lines: list, style: dict, kind: str):
        super().__init__()
        self._name = "EdgeLines"
        self.lines = lines
        # className only labels the lines (tests and readers of the HTML count them by it)
        self.style = {**style, "className": f"nextlat-{kind}", "interactive": False}


def _latlon(graph: StreetGraph, nodes) -> np.ndarray:
    return np.stack([graph.lat[nodes], graph.lon[nodes]], axis=-1)


def _straight_lines(graph: StreetGraph, edges: np.ndarray) -> list:
    """One two-point line per edge (6 decimals: 0.1 m)."""
    return np.round(np.stack([_latlon(graph, edges[:, 0]), _latlon(graph, edges[:, 2])], 1), 6).tolist()


def _curve_pieces(graph: StreetGraph, edges: np.ndarray, pieces: int) -> list[list]:
    """Bezier curve of every edge cut into ``pieces`` consecutive runs: [piece][edge] -> points."""
    step = (CURVE_POINTS - 1) // pieces
    cuts = [(i * step, CURVE_POINTS if i == pieces - 1 else (i + 1) * step + 1) for i in range(pieces)]
    out = [[] for _ in range(pieces)]
    for u, k, v in edges.tolist():
        curve = np.round(bezier_edge(graph.lat[u], graph.lon[u], graph.lat[v], graph.lon[v], k), 6)
        for piece, (a, b) in zip(out, cuts):
            piece.append(curve[a:b].tolist())
    return out


def _add_new_edges(m, graph: StreetGraph, edges: np.ndarray, view: str) -> None:
    """New edges as curves; a colour ramp along them becomes ``RAMP_PIECES`` runs of one colour."""
    style = NEW_STYLE[view]
    colors = style["colors"]
    pieces = 1 if colors[0] == colors[1] else RAMP_PIECES
    # butt caps where runs meet: round ones would overlap and darken the joints
    base = {"weight": style["weight"], "opacity": style["opacity"],
            "lineCap": "round" if pieces == 1 else "butt"}
    for lines, color in zip(_curve_pieces(graph, edges, pieces), _ramp(colors, pieces)):
        EdgeLines(lines, {**base, "color": color}, "new").add_to(m)


def _check_pair(graph: StreetGraph, recon: Reconstruction) -> None:
    if not np.array_equal(graph.node_ids, recon.node_ids):
        raise ValueError(f"reconstruction of graph {recon.graph_name!r} does not index street "
                         f"graph {graph.name!r}; load it with Reconstruction.load(path, graph)")


def draw_map(graph: StreetGraph, recon: Reconstruction, html_path, view: str = "far",
             show_unused: bool = True, title: str | None = None) -> Path:
    """Write one self-contained HTML map of ``recon`` (view "far" or "close"), captioned
    with ``title`` and the reconstruction's warning note, if any."""
    require_coords(graph)
    _check_pair(graph, recon)
    if view not in VIEWS:
        raise ValueError(f"unknown map view {view!r}; choose from {VIEWS}")
    m = _base_map(graph)
    if show_unused:  # first, so that everything else is drawn over it
        EdgeLines(_straight_lines(graph, recon.unused(graph)), UNUSED_STYLE, "unused").add_to(m)
    EdgeLines(_straight_lines(graph, recon.used), USED_STYLE, "used").add_to(m)
    _add_new_edges(m, graph, recon.new, view)
    m.fit_bounds(far_window(graph) if view == "far" else close_window(graph), padding=(8, 8))
    _add_title(m, title, recon.note)
    _inline_leaflet(m)
    html_path = Path(html_path)
    with atomic_path(html_path) as tmp:
        m.save(str(tmp))
    return html_path


# --- screenshots -------------------------------------------------------------------------
def find_browser() -> str | None:
    """Headless-capable browser: $NEXTLAT_CHROMIUM, else the first of BROWSERS on PATH."""
    names = [os.environ[BROWSER_ENV]] if os.environ.get(BROWSER_ENV) else list(BROWSERS)
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


def _browser_command(browser: str, url: str, png: Path, size: tuple[int, int], profile: str) -> list:
    return [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
        # no network chatter: the page needs nothing, and the machine may have no network
        "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}",
        # let Leaflet finish laying out and drawing before the shot
        "--virtual-time-budget=5000", f"--screenshot={png}", url,
    ]


def _run_browser(cmd: list, timeout: float) -> subprocess.CompletedProcess:
    """Run in its own process group, so a hung browser and its helpers can all be killed."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise RuntimeError(f"{cmd[0]} did not finish the screenshot within {timeout} s") from None
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def screenshot(html_path, png_path, size: tuple[int, int] = (1200, 900), timeout: float = 60) -> Path:
    """PNG of an HTML page via headless Chromium (written atomically)."""
    browser = find_browser()
    if browser is None:
        raise RuntimeError(
            f"no headless browser for map PNGs: looked for ${BROWSER_ENV} and {', '.join(BROWSERS)} "
            "on PATH. Install one (`apt-get install chromium`), point $NEXTLAT_CHROMIUM at one, or "
            "turn PNGs off (manhattan.maps.png: false) to write only the HTML maps")
    png_path = Path(png_path)
    with atomic_path(png_path, suffix=".png") as tmp:  # Chromium writes PNG only to *.png
        with tempfile.TemporaryDirectory(prefix="nextlat-chromium-") as profile:
            cmd = _browser_command(browser, Path(html_path).resolve().as_uri(), tmp.resolve(), size, profile)
            proc = _run_browser(cmd, timeout)
        if proc.returncode != 0 or not tmp.exists() or tmp.stat().st_size == 0:
            raise RuntimeError(f"{browser} could not screenshot {html_path} (exit {proc.returncode}):\n"
                               f"{proc.stderr[-2000:]}")
    return png_path


def write_maps(graph: StreetGraph, recon: Reconstruction, out, views=VIEWS, png: bool = True,
               show_unused: bool = True, title: str | None = None, stem: str | None = None,
               size: tuple[int, int] = (1200, 900)) -> dict[str, dict[str, Path]]:
    """Write every view's HTML (and PNG next to it); returns {view: {"html": .., "png": ..}}.

    ``out`` is either a directory, holding ``<stem>_<view>.html`` (``<view>.html`` without a
    stem), or a mapping {view: html path}.
    """
    if isinstance(out, dict):
        html_paths = {view: Path(out[view]) for view in views}
    else:
        html_paths = {view: Path(out) / (f"{stem}_{view}.html" if stem else f"{view}.html")
                      for view in views}
    written = {}
    for view, html_path in html_paths.items():
        files = {"html": draw_map(graph, recon, html_path, view, show_unused, title)}
        if png:
            files["png"] = screenshot(html_path, html_path.with_suffix(".png"), size)
        written[view] = files
    return written


def _crop_to_content(img, margin: int = 12):
    """The screenshot cut to its drawn part (plus a margin): maps of small cities leave
    most of the browser window white, which would shrink them to nothing in a panel."""
    import numpy as np

    ink = (img[..., :3] < 0.97).any(axis=-1)
    rows, cols = np.nonzero(ink.any(axis=1))[0], np.nonzero(ink.any(axis=0))[0]
    if not len(rows):
        return img
    r0, r1 = max(rows[0] - margin, 0), min(rows[-1] + margin + 1, img.shape[0])
    c0, c1 = max(cols[0] - margin, 0), min(cols[-1] + margin + 1, img.shape[1])
    return img[r0:r1, c0:c1]


def map_panel(pngs: dict, out_png, ncols: int = 3) -> Path:
    """One figure of map screenshots, {label: png path}, in rows of ``ncols`` (Figure 3)."""
    from ...report.style import plt

    if not pngs:
        raise ValueError("no map screenshots to put in a panel")
    ncols = min(ncols, len(pngs))
    nrows = -(-len(pngs) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5 * ncols, 3.9 * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (label, png) in zip(axes.flat, pngs.items()):
        ax.imshow(_crop_to_content(plt.imread(png)))
        ax.set_title(label)
    out_png = Path(out_png)
    try:
        with atomic_path(out_png, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=150, bbox_inches="tight", format="png")
    finally:
        plt.close(fig)
    return out_png


# --- report target (its own module, so editing the maps redraws Figure 3 only) ---------
def fig3(inputs: dict, outputs: dict, params: dict) -> None:
    """Figure 3: a folium map (HTML, optionally a PNG screenshot) per reconstruction and view,
    a table of reconstruction counts (:func:`report.reconstruction_table`), and a panel of the far
    views. A map that warrants a note (no usable sequences) carries it on the map and in the
    panel title.

    ``params["maps"]`` maps a label (run id, or ``true_<task>``) to its reconstruction JSON;
    ``outputs`` holds the paths named as in rules/manhattan.smk (``<label>_<view>_<ext>``).
    """
    from ...report.tables import write_table
    from .report import reconstruction_table

    opts = params["opts"]
    graph = StreetGraph.load(inputs["graph"])
    recons = {label: Reconstruction.load(path, graph) for label, path in params["maps"].items()}
    pngs = {}
    for label, recon in recons.items():
        html = {view: outputs[f"{label}_{view}_html"] for view in opts["views"]}
        files = write_maps(graph, recon, html, views=opts["views"], png=opts["png"],
                           show_unused=opts["show_unused"], title=f"{label}")
        if opts["png"]:
            pngs[f"{label}\n({recon.note})" if recon.note else label] = files[opts["views"][0]]["png"]
    write_table(reconstruction_table(recons), outputs["csv"], outputs["md"], drop=())
    if opts["png"]:
        map_panel(pngs, outputs["panel"])
