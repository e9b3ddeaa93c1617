"""Street-graph sources: synthetic city, OpenStreetMap (osmnx, offline files) and pickles."""
import collections
import logging
import math
import pickle

import numpy as np
import pytest

from nextlat.benchmarks.manhattan import streets
from nextlat.benchmarks.manhattan.streets import (DIR_INDEX, DIRECTIONS, MANHATTAN_BBOX, NO_EDGE, bearing_to_direction,
                                  compass_bearing, from_osm, from_pickle, load_street_graph,
                                  resolve_conflicts, synthetic_city, synthetic_n_nodes)


def edge_set(g):
    src, k, dst = g.edges()
    return {(int(g.node_ids[i]), DIRECTIONS[kk], int(g.node_ids[j])) for i, kk, j in zip(src, k, dst)}


def offset(lat, lon, bearing_deg, metres):
    """The point ``metres`` away from (lat, lon) along ``bearing_deg`` (flat-earth; fine at 100 m)."""
    b = math.radians(bearing_deg)
    return (lat + metres * math.cos(b) / 111_320.0,
            lon + metres * math.sin(b) / (111_320.0 * math.cos(math.radians(lat))))


# --- synthetic city -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def city():
    return synthetic_city()


def test_synthetic_size_matches_config(city):
    assert city.n_nodes == 12 * 60 == synthetic_n_nodes({"source": "synthetic", "synthetic": {}})
    # Isolated nodes are kept, so the count holds however many segments go missing.
    cfg = {"avenues": 5, "streets": 7, "missing_fraction": 0.6, "dead_end_fraction": 0.3}
    g = synthetic_city(**cfg)
    assert g.n_nodes == 35 == synthetic_n_nodes(cfg)
    assert ((g.succ == NO_EDGE).all(axis=1)).any()
    assert g.node_ids.min() >= 42_400_000


def test_synthetic_labels_follow_coordinates(city):
    src, k, dst = city.edges()
    assert city.has_coords
    assert (src != dst).all()
    bearing = compass_bearing(city.lat[src], city.lon[src], city.lat[dst], city.lon[dst])
    np.testing.assert_array_equal(k, bearing_to_direction(bearing))
    # One edge per (node, direction) is structural; also no node reaches one neighbour twice.
    assert len({(i, j) for i, j in zip(src.tolist(), dst.tolist())}) == len(src)


@pytest.mark.parametrize("size", [(12, 60), (12, 400), (3, 3)])
def test_synthetic_inside_manhattan(size):
    g = synthetic_city(*size)
    lat_min, lat_max, lon_min, lon_max = MANHATTAN_BBOX
    assert lat_min <= g.lat.min() and g.lat.max() <= lat_max
    assert lon_min <= g.lon.min() and g.lon.max() <= lon_max


def test_synthetic_direction_histogram(city):
    counts = np.bincount(city.edges()[1], minlength=8)
    grid = counts[[DIR_INDEX[d] for d in ("NE", "SW", "NW", "SE")]]
    other = counts[[DIR_INDEX[d] for d in ("N", "S", "E", "W")]]
    assert grid.min() > other.max()  # the rotated grid dominates, as in Manhattan
    assert counts.sum() == city.n_edges > city.n_nodes


def test_synthetic_one_way_and_two_way(city):
    edges = {(a, b) for a, _, b in edge_set(city)}
    reverse = sum((b, a) in edges for a, b in edges)
    assert 0.2 * len(edges) < reverse < 0.8 * len(edges)


def test_synthetic_diagonal_adds_north_south():
    # Without jitter the rotated grid alone yields only NE/SW/NW/SE.
    plain = np.bincount(synthetic_city(jitter_m=0, diagonal=False).edges()[1], minlength=8)
    diag = np.bincount(synthetic_city(jitter_m=0, diagonal=True).edges()[1], minlength=8)
    ns_ew = [DIR_INDEX[d] for d in ("N", "S", "E", "W")]
    assert plain[ns_ew].sum() == 0
    assert diag[DIR_INDEX["N"]] > 0 and diag[DIR_INDEX["S"]] > 0


def test_synthetic_mostly_strongly_connected(city):
    assert len(city.largest_scc()) > 0.9 * city.n_nodes


def test_synthetic_seeded(city):
    again = synthetic_city(seed=0)
    np.testing.assert_array_equal(again.succ, city.succ)
    np.testing.assert_array_equal(again.lat, city.lat)
    np.testing.assert_array_equal(again.lon, city.lon)
    # Without jitter only the removed segments can tell two seeds apart.
    base, other = synthetic_city(seed=0, jitter_m=0), synthetic_city(seed=1, jitter_m=0)
    np.testing.assert_array_equal(base.lat, other.lat)
    assert edge_set(base) != edge_set(other)


def test_synthetic_rejects_origin_outside_manhattan():
    with pytest.raises(ValueError, match="bounding box"):
        synthetic_city(origin=(40.6, -74.0))


# --- bearings and conflicts ---------------------------------------------------------------
def test_bearing_binning_on_hand_made_coordinates():
    lat0, lon0 = 40.75, -73.99
    targets = {0.0: "N", 90.0: "E", 30.0: "NE", 200.0: "S"}
    for bearing, name in targets.items():
        lat, lon = offset(lat0, lon0, bearing, 100.0)
        b = compass_bearing(lat0, lon0, lat, lon)
        assert abs((b - bearing + 180) % 360 - 180) < 0.1
        assert DIRECTIONS[int(bearing_to_direction(b))] == name
    # Bins are half-open [45k - 22.5, 45k + 22.5), negative bearings wrap.
    np.testing.assert_array_equal(bearing_to_direction([22.5, 67.5, 337.5, -10.0, 359.9]), [1, 2, 0, 0, 0])


def test_resolve_conflicts_hand_made():
    src = [1, 1, 1, 1, 1, 2, 2]
    dst = [10, 11, 12, 13, 14, 20, 21]
    bearing = [50.0, 44.0, 80.0, 100.0, 180.0, 270.0, 270.0]
    length = [1.0, 9.0, 5.0, 3.0, 1.0, 4.0, 4.0]
    kept = {(u, DIRECTIONS[k], v) for u, k, v in zip(*(a.tolist() for a in resolve_conflicts(src, dst, bearing, length)))}
    # NE: 44 deg is closer to the centre than 50 deg despite being longer; E: 80 and 100 are
    # equally off-centre, the shorter wins; W: a full tie goes to the smaller destination id.
    assert kept == {(1, "NE", 11), (1, "E", 13), (1, "S", 14), (2, "W", 20)}
    # The result does not depend on input order.
    perm = np.random.default_rng(0).permutation(len(src))
    again = resolve_conflicts(np.array(src)[perm], np.array(dst)[perm], np.array(bearing)[perm], np.array(length)[perm])
    assert {(u, DIRECTIONS[k], v) for u, k, v in zip(*(a.tolist() for a in again))} == kept


# --- OpenStreetMap -----------------------------------------------------------------------
def write_osm(path):
    """A tiny Midtown map: a hub with roads N, E, nearly N (a conflict) and a one-way from S."""
    hub = (40.7500, -73.9900)
    pts = {1: hub, 2: offset(*hub, 0.0, 110), 3: offset(*hub, 90.0, 150),
           4: offset(*hub, 12.0, 120), 5: offset(*hub, 180.0, 100)}
    ways = [(10, [1, 2], False), (11, [1, 3], False), (12, [1, 4], False), (13, [5, 1], True)]
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="test">',
             '  <bounds minlat="40.748" minlon="-73.992" maxlat="40.752" maxlon="-73.987"/>']
    lines += [f'  <node id="{i}" lat="{lat:.7f}" lon="{lon:.7f}" version="1"/>' for i, (lat, lon) in pts.items()]
    for wid, refs, oneway in ways:
        lines.append(f'  <way id="{wid}" version="1">' + "".join(f'<nd ref="{r}"/>' for r in refs)
                     + '<tag k="highway" v="residential"/>'
                     + ('<tag k="oneway" v="yes"/>' if oneway else "") + "</way>")
    lines.append("</osm>")
    path.write_text("\n".join(lines))
    return path


OSM_EDGES = {(1, "N", 2), (2, "S", 1), (1, "E", 3), (3, "W", 1), (4, "S", 1), (5, "N", 1)}


@pytest.fixture
def osm_files(tmp_path):
    pytest.importorskip("osmnx")
    return write_osm(tmp_path / "tiny.osm"), tmp_path / "cache" / "graph.graphml"


def test_osm_from_xml_and_cache(osm_files, monkeypatch):
    import osmnx as ox

    xml, cache = osm_files
    g = from_osm(xml=xml, cache=cache)
    assert g.node_ids.tolist() == [1, 2, 3, 4, 5] and g.has_coords
    # 1 -> 4 (12 deg) loses the N bin to 1 -> 2 (0 deg); 1 -> 5 would go against the one-way.
    assert edge_set(g) == OSM_EDGES
    assert cache.exists()

    def offline(*args, **kwargs):
        raise AssertionError("osmnx must not download or re-read the xml when the cache exists")

    monkeypatch.setattr(ox, "graph_from_place", offline)
    monkeypatch.setattr(ox, "graph_from_xml", offline)
    cached = from_osm(cache=cache)
    np.testing.assert_array_equal(cached.succ, g.succ)
    np.testing.assert_array_equal(cached.node_ids, g.node_ids)
    np.testing.assert_allclose(cached.lat, g.lat)
    np.testing.assert_allclose(cached.lon, g.lon)


def test_osm_unreachable_is_a_clear_error(osm_files, monkeypatch):
    import osmnx as ox
    import requests

    def no_network(*args, **kwargs):
        raise requests.ConnectionError("name resolution failed")

    monkeypatch.setattr(ox, "graph_from_place", no_network)
    with pytest.raises(RuntimeError, match="OpenStreetMap is unreachable.*xml.*cache"):
        from_osm(place="Manhattan, New York, USA")


# --- the original pickles ------------------------------------------------------------------
def write_pickles(tmp_path):
    neighbors = {(1, "N"): 2, (2, "S"): 1, (2, "E"): 3, (3, "W"): 2, (3, "N"): 3, (1, "NE"): 4}
    turns = collections.defaultdict(list)
    turns.update({1: ["N", "NE"], 2: ["S", "E"], 3: ["W"]})  # node 3 forgets its self-loop
    paths = tmp_path / "neighbors.pkl", tmp_path / "turns.pkl"
    for path, obj in zip(paths, (neighbors, turns)):
        path.write_bytes(pickle.dumps(obj))
    return paths, neighbors


def test_pickle_graph_and_turn_check(tmp_path, caplog):
    (nb, tu), neighbors = write_pickles(tmp_path)
    with caplog.at_level(logging.WARNING, logger="nextlat.benchmarks.manhattan.streets"):
        g = from_pickle(nb, turns=tu)
    assert g.node_ids.tolist() == [1, 2, 3, 4]  # 4 only appears as a neighbour (a sink)
    assert edge_set(g) == {(u, d, v) for (u, d), v in neighbors.items()}
    assert g.follow(g.index_of(3), ["N", "N", "W"]) is not None  # the self-loop is a legal move
    assert not g.has_coords and g.lat is None
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and " 1 node(s)" in warnings[0] and "node 3" in warnings[0]


def test_pickle_consistent_turns_do_not_warn(tmp_path, caplog):
    (nb, tu), neighbors = write_pickles(tmp_path)
    turns = collections.defaultdict(list)
    for u, d in neighbors:
        turns[u].append(d)
    tu.write_bytes(pickle.dumps(turns))
    with caplog.at_level(logging.WARNING, logger="nextlat.benchmarks.manhattan.streets"):
        from_pickle(nb, turns=tu)
    assert not caplog.records


def test_pickle_with_coords(tmp_path):
    (nb, _), _ = write_pickles(tmp_path)
    coords = tmp_path / "coords.csv"
    coords.write_text("node,lat,lon\n" + "".join(f"{u},{40.7 + u / 100},{-74.0 + u / 100}\n" for u in range(1, 6)))
    g = from_pickle(nb, coords=coords)
    assert g.has_coords
    np.testing.assert_allclose(g.lat, [40.71, 40.72, 40.73, 40.74])
    coords.write_text("node,lat,lon\n1,40.7,-74.0\n")
    with pytest.raises(ValueError, match="no coordinates for 3 node"):
        from_pickle(nb, coords=coords)


# --- dispatcher ---------------------------------------------------------------------------
def test_load_street_graph_dispatch(tmp_path, osm_files):
    g = load_street_graph({"source": "synthetic", "max_nodes": 99, "synthetic": {"avenues": 3, "streets": 4}})
    assert g.n_nodes == 12 == synthetic_n_nodes({"avenues": 3, "streets": 4})
    (nb, tu), neighbors = write_pickles(tmp_path)
    g = load_street_graph({"source": "pickle", "pickle": {"neighbors": str(nb), "turns": None, "coords": None}})
    assert g.n_edges == len(neighbors)
    xml, cache = osm_files
    g = load_street_graph({"source": "osm", "osm": {"place": None, "xml": str(xml), "cache": str(cache)}})
    assert edge_set(g) == OSM_EDGES and cache.exists()


def test_load_street_graph_errors(tmp_path):
    with pytest.raises(ValueError, match="graph.source"):
        load_street_graph({"source": "atlas"})
    with pytest.raises(ValueError, match="graph.synthetic.*colour"):
        load_street_graph({"source": "synthetic", "synthetic": {"colour": "red"}})
    missing = tmp_path / "nope.pkl"
    with pytest.raises(FileNotFoundError, match=f"graph.pickle.neighbors.*{missing.name}"):
        load_street_graph({"source": "pickle", "pickle": {"neighbors": str(missing)}})
    with pytest.raises(ValueError, match="graph.pickle.neighbors"):
        load_street_graph({"source": "pickle", "pickle": {"neighbors": None}})
    with pytest.raises(FileNotFoundError, match="graph.osm.xml.*nope.osm"):
        load_street_graph({"source": "osm", "osm": {"xml": str(tmp_path / "nope.osm")}})
    with pytest.raises(FileNotFoundError, match="graph.osm.cache"):
        load_street_graph({"source": "osm", "osm": {"cache": str(tmp_path / "nope.graphml")}})
    with pytest.raises(ValueError, match="only a synthetic"):
        synthetic_n_nodes({"source": "osm"})


def test_missing_osmnx_names_the_extra(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "osmnx":
            raise ImportError("No module named 'osmnx'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ImportError, match="osm.*pip install osmnx"):
        streets.from_osm(place="anywhere")
