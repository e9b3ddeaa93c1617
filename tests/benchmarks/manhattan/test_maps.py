"""Folium maps of reconstructions (nextlat.benchmarks.manhattan.maps): offline HTML, geometry, PNG."""
from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import numpy as np
import pytest
from matplotlib.colors import to_rgb

from nextlat.benchmarks.manhattan.streets import DIR_STEPS, StreetGraph
from nextlat.benchmarks.manhattan.reconstruction import Reconstruction, reconstruct
from nextlat.benchmarks.manhattan import maps
from test_reconstruction import grid_graph

N, NE, E, SE, S, SW, W, NW = range(8)
LINES = re.compile(r"var lines = (\[.*?\]);\s*var style = (\{.*?\});", re.S)


def edge_lines(text: str) -> dict[str, list]:
    """{kind: [line, ...]} from the EdgeLines blocks of a map's HTML."""
    out: dict[str, list] = {}
    for lines, style in LINES.findall(text):
        kind = json.loads(style)["className"].removeprefix("nextlat-")
        out.setdefault(kind, []).extend(json.loads(lines))
    return out


class _Tags(HTMLParser):
    """Start tags with attributes; script and style bodies are not parsed as tags."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


@pytest.fixture(scope="module")
def grid():
    return grid_graph(4, 6)


@pytest.fixture(scope="module")
def recon(grid):
    seqs = [(0, 2 * 6 + 2, [E, NE, N]), (0, 1 * 6 + 3, [E, E, NE]), (6, 11, [E] * 5), (0, 18, [N] * 3)]
    rec = reconstruct(grid, seqs)
    assert rec.counts["n_new_edges"] == 2 and rec.counts["n_failed"] == 0
    return rec


def hand_made(graph: StreetGraph, new_edges) -> Reconstruction:
    """A reconstruction with no used streets and the given new (src, dir, dst) edges."""
    return Reconstruction(graph.name, graph.node_ids, np.zeros((0, 3), dtype=np.int64),
                          np.array(new_edges, dtype=np.int64).reshape(-1, 3), {}, {})


def test_html_is_self_contained(grid, recon, tmp_path):
    text = maps.draw_map(grid, recon, tmp_path / "m.html").read_text()
    parser = _Tags()
    parser.feed(text)
    for tag, attrs in parser.tags:
        assert "src" not in attrs, f"<{tag}> loads {attrs['src']}"
        href = attrs.get("href", "")
        assert not re.match(r"(https?:)?//", href), f"<{tag}> links {href}"
    assert not any(tag == "link" for tag, _ in parser.tags)
    assert not re.search(r"cdn\.|jsdelivr|cloudflare|code\.jquery", text)
    assert 't.version="1.9.3"' in text and ".leaflet-container" in text  # Leaflet inlined
    assert "sourceMappingURL" not in text
    assert not list(tmp_path.glob("*.tmp"))


def test_html_holds_one_line_per_edge(grid, recon, tmp_path):
    far = edge_lines(maps.draw_map(grid, recon, tmp_path / "far.html", "far").read_text())
    assert len(far["used"]) == len(recon.used) == recon.counts["true_used"]
    assert len(far["unused"]) == recon.counts["true_unused"] == grid.n_edges - len(recon.used)
    assert len(far["new"]) == len(recon.new)
    u, v = recon.used[0, 0], recon.used[0, 2]
    assert [[grid.lat[u], grid.lon[u]], [grid.lat[v], grid.lon[v]]] in far["used"]
    bare = edge_lines(maps.draw_map(grid, recon, tmp_path / "bare.html", show_unused=False).read_text())
    assert "unused" not in bare and len(bare["used"]) == len(recon.used)


def test_new_edges_are_50_point_curves_bending_towards_their_label(grid, tmp_path):
    # (0 -> 1) lies due east but is labelled N; (7 -> 8) lies east, labelled S
    rec = hand_made(grid, [(0, N, 1), (7, S, 8)])
    curves = edge_lines(maps.draw_map(grid, rec, tmp_path / "m.html").read_text())["new"]
    assert [len(c) for c in curves] == [50, 50]
    for curve, (u, k, v) in zip(np.array(curves), rec.new):
        assert np.allclose(curve[0], [grid.lat[u], grid.lon[u]], atol=1e-6)
        assert np.allclose(curve[-1], [grid.lat[v], grid.lon[v]], atol=1e-6)
        bulge = (curve[:, 0] - grid.lat[u]) * DIR_STEPS[k][0]  # latitude gained towards the label
        assert bulge.max() == pytest.approx(0.001, rel=0.01)  # half the 0.002 deg control offset


def test_bezier_control_point_is_the_start_moved_towards_the_label():
    p0, p2 = np.array([40.0, -74.0]), np.array([40.003, -73.999])
    for k in range(8):
        curve = maps.bezier_edge(*p0, *p2, k, n_points=3)
        # B(1/2) = p0/4 + p1/2 + p2/4 with p1 = p0 + 0.002 * step
        assert np.allclose(curve[1], 0.75 * p0 + 0.25 * p2 + 0.001 * DIR_STEPS[k])
        assert np.allclose(curve[[0, 2]], [p0, p2])


def test_close_view_ramps_colour_along_each_curve(grid, recon, tmp_path):
    text = maps.draw_map(grid, recon, tmp_path / "close.html", "close").read_text()
    styles = [json.loads(s) for _, s in LINES.findall(text)]
    new_colors = [s["color"] for s in styles if s["className"] == "nextlat-new"]
    assert len(new_colors) == maps.RAMP_PIECES and new_colors[0] != new_colors[-1]
    # the ramp runs from lightsalmon at the start node to firebrick at the end node
    salmon, brick = np.array(to_rgb("lightsalmon")), np.array(to_rgb("firebrick"))
    first, last = np.array(to_rgb(new_colors[0])), np.array(to_rgb(new_colors[-1]))
    assert np.linalg.norm(first - salmon) < np.linalg.norm(first - brick)
    assert np.linalg.norm(last - brick) < np.linalg.norm(last - salmon)
    pieces = [json.loads(lines) for lines, s in LINES.findall(text) if "nextlat-new" in s]
    for e in range(len(recon.new)):  # the pieces of one curve join up into 50 points
        runs = [piece[e] for piece in pieces]
        assert all(a[-1] == b[0] for a, b in zip(runs, runs[1:]))
        assert sum(len(r) for r in runs) - (len(runs) - 1) == 50


def test_close_window_sits_on_the_dense_part():
    rng = np.random.default_rng(0)
    lat = np.concatenate([rng.uniform(40.70, 40.80, 600), rng.normal(40.785, 0.002, 400)])
    lon = np.concatenate([rng.uniform(-74.02, -73.93, 600), rng.normal(-73.945, 0.002, 400)])
    g = StreetGraph(np.arange(1000), np.full((1000, 8), -1), lat, lon)
    (south, west), (north, east) = maps.close_window(g)
    assert south < 40.785 < north and west < -73.945 < east
    assert (north - south) < 0.5 * (lat.max() - lat.min())


def test_refusals(grid, recon, tmp_path):
    with pytest.raises(ValueError, match="no node coordinates"):
        maps.draw_map(grid_graph(4, 6, coords=False), recon, tmp_path / "m.html")
    with pytest.raises(ValueError, match="does not index"):
        maps.draw_map(grid_graph(3, 3), recon, tmp_path / "m.html")
    with pytest.raises(ValueError, match="view"):
        maps.draw_map(grid, recon, tmp_path / "m.html", view="sideways")


def test_title_is_escaped(grid, recon, tmp_path):
    text = maps.draw_map(grid, recon, tmp_path / "m.html", title="GPT <d=8>").read_text()
    assert "GPT &lt;d=8&gt;" in text


def test_map_without_usable_sequences_says_so(grid, recon, tmp_path):
    empty = reconstruct(grid, [], n_ill_formed=4)
    text = maps.draw_map(grid, empty, tmp_path / "e.html", title="gpt").read_text()
    assert "gpt<br>" in text and "no usable sequences: 4 generated, 4 ill-formed" in text
    assert "no usable sequences" in maps.draw_map(grid, empty, tmp_path / "untitled.html").read_text()
    assert "nextlat-note" not in maps.draw_map(grid, recon, tmp_path / "r.html", title="gpt").read_text()


def test_fig3_table_shows_sequences_mode_and_empty_maps(grid, recon, tmp_path):
    import pandas as pd

    from nextlat.benchmarks.manhattan.maps import fig3

    grid.save(tmp_path / "graph.graphml")
    recons = {"true_rw": recon, "gpt": reconstruct(grid, [], n_ill_formed=6),
              "original": reconstruct(grid, [(0, 2 * 6 + 2, [E, NE, N])], atomic=False, candidate_order="node")}
    paths = {label: tmp_path / f"{label}.json" for label in recons}
    for label, rec in recons.items():
        rec.save(paths[label])
    outputs = {"csv": tmp_path / "t.csv", "md": tmp_path / "t.md",
               **{f"{label}_far_html": tmp_path / f"{label}_far.html" for label in recons}}
    opts = {"views": ["far"], "png": False, "show_unused": True}
    fig3({"graph": tmp_path / "graph.graphml"}, outputs, {"maps": {k: str(v) for k, v in paths.items()}, "opts": opts})
    rows = pd.read_csv(tmp_path / "t.csv", keep_default_na=False).set_index("map")
    assert list(rows.index) == list(recons)
    assert rows.loc["gpt", ["n_generated", "n_ill_formed", "n_used", "n_failed", "n_new_edges"]].tolist() == [6, 6, 0, 0, 0]
    assert rows.loc["gpt", "note"] == "no usable sequences: 6 generated, 6 ill-formed"
    assert rows.loc["true_rw", ["n_used", "n_new_edges", "note"]].tolist() == [4, 2, ""]
    assert rows.loc["true_rw", "mode"] == "atomic, nearest first"
    assert rows.loc["original", "mode"] == "non-atomic, node order (original)"
    assert "no usable sequences" in (tmp_path / "t.md").read_text()
    assert "no usable sequences" in (tmp_path / "gpt_far.html").read_text()


def test_reconstruction_table_leaves_counts_it_lacks_blank(grid):
    from nextlat.benchmarks.manhattan.report import reconstruction_table

    table = reconstruction_table({"old": hand_made(grid, [(0, N, 1)])})
    assert table["n_used"].isna().all() and table["mode"].isna().all() and table["note"].tolist() == [""]


def test_write_maps_names_files(grid, recon, tmp_path):
    out = maps.write_maps(grid, recon, tmp_path, png=False, stem="true_rw")
    assert {v: files["html"].name for v, files in out.items()} == {
        "far": "true_rw_far.html", "close": "true_rw_close.html"}
    out = maps.write_maps(grid, recon, {"close": tmp_path / "x" / "c.html"}, views=("close",), png=False)
    assert out["close"]["html"].exists() and "png" not in out["close"]


def test_missing_browser_says_how_to_get_one(grid, recon, tmp_path, monkeypatch):
    monkeypatch.setenv(maps.BROWSER_ENV, "no-such-browser-here")
    html = maps.draw_map(grid, recon, tmp_path / "m.html")
    with pytest.raises(RuntimeError, match="apt-get install chromium"):
        maps.screenshot(html, tmp_path / "m.png")


@pytest.mark.skipif(maps.find_browser() is None, reason="no chromium for screenshots")
def test_screenshot_shows_the_streets(tmp_path):
    from PIL import Image

    g = grid_graph(6, 8)
    rec = reconstruct(g, [(0, 47, [E] * 7 + [N] * 5), (0, 9, [NE])])
    files = maps.write_maps(g, rec, tmp_path, views=("far",), size=(600, 450))
    gray = np.asarray(Image.open(files["far"]["png"]).convert("L"), dtype=float)
    assert gray.shape == (450, 600)
    assert gray.mean() > 200  # mostly white background, not a black or failed page
    assert 0.01 < (gray < 250).mean() < 0.3  # the street grid is drawn
    assert (gray < 215).sum() > 300  # used streets (bottom row, right column) stand out


def test_map_panel_tiles_the_screenshots(tmp_path):
    from PIL import Image

    pngs = {}
    for i, label in enumerate(["true_rw", "gpt", "nextlat", "mtp"]):
        pngs[label] = tmp_path / f"{label}.png"
        Image.new("RGB", (120, 90), (40 * i, 0, 0)).save(pngs[label])
    out = maps.map_panel(pngs, tmp_path / "panel" / "fig3.png", ncols=2)
    width, height = Image.open(out).size
    assert width > 1.5 * 120 and height > 1.5 * 90 and not list(out.parent.glob("*.tmp.png"))
    with pytest.raises(ValueError, match="no map"):
        maps.map_panel({}, tmp_path / "empty.png")
