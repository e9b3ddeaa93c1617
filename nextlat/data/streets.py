"""Street graphs for the Manhattan world-model benchmark (Table 1, Figure 3).

Every source (``synthetic``, ``osm``, ``pickle``; see :func:`load_street_graph`) produces a
:class:`StreetGraph`: a directed graph whose edges are labelled with one of eight compass
directions, at most one edge per (node, direction), and node coordinates when known.

The graph is stored densely as a ``(n_nodes, 8)`` successor table, so a random walk or a
legality check is an array lookup and walks can be vectorised over millions of rows.
"""
from __future__ import annotations

import csv
import inspect
import logging
import math
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# Compass directions in clockwise order from north; index k has bearing 45*k degrees.
DIRECTIONS = ("N", "NE", "E", "SE", "S", "SW", "W", "NW")
DIR_INDEX = {d: i for i, d in enumerate(DIRECTIONS)}
# (d_lat, d_lon) unit steps per direction, e.g. for drawing: N = +lat, E = +lon.
DIR_STEPS = np.array([(1, 0), (1, 1), (0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1)], dtype=float)
NO_EDGE = -1
UNREACHABLE = np.iinfo(np.int16).max
EARTH_RADIUS_MILES = 3958.8
METRES_PER_DEG_LAT = 111_320.0
# Manhattan's bounding box (lat_min, lat_max, lon_min, lon_max); the synthetic city stays inside.
MANHATTAN_BBOX = (40.70, 40.88, -74.02, -73.91)

log = logging.getLogger(__name__)


def bearing_to_direction(bearing_deg) -> np.ndarray:
    """Compass bearing(s) in degrees (0 = north, clockwise) -> direction index 0..7.

    Bin k is the half-open interval [45k - 22.5, 45k + 22.5); floor rather than np.round,
    whose round-half-to-even would put some boundaries in the lower bin and others in the upper.
    """
    return np.floor(np.asarray(bearing_deg, dtype=float) / 45.0 + 0.5).astype(np.int64) % 8


def compass_bearing(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Initial great-circle bearing in degrees [0, 360) from point 1 to point 2 (vectorised)."""
    lat1, lon1, lat2, lon2 = (np.radians(np.asarray(a, dtype=float)) for a in (lat1, lon1, lat2, lon2))
    dlon = lon2 - lon1
    y = np.sin(dlon) * np.cos(lat2)
    x = np.cos(lat1) * np.sin(lat2) - np.sin(lat1) * np.cos(lat2) * np.cos(dlon)
    return np.degrees(np.arctan2(y, x)) % 360.0


def haversine_miles(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Great-circle distance in miles (vectorised; arguments broadcast)."""
    lat1, lon1, lat2, lon2 = (np.radians(np.asarray(a, dtype=float)) for a in (lat1, lon1, lat2, lon2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_MILES * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


@dataclass
class StreetGraph:
    """Direction-labelled street graph.

    ``node_ids`` are the external ids (OSM ids for real maps) used as tokens; everything
    else addresses nodes by their *index* ``0..n_nodes-1``. ``succ[i, k]`` is the index of
    the node reached from node ``i`` by moving in ``DIRECTIONS[k]``, or ``NO_EDGE``.
    """

    node_ids: np.ndarray  # (n,) int64, distinct
    succ: np.ndarray  # (n, 8) int32
    lat: np.ndarray | None = None  # (n,) float degrees, or None when unknown
    lon: np.ndarray | None = None
    name: str = ""
    _hops: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self):
        self.node_ids = np.asarray(self.node_ids, dtype=np.int64)
        self.succ = np.asarray(self.succ, dtype=np.int32)
        n = len(self.node_ids)
        if self.succ.shape != (n, 8):
            raise ValueError(f"succ must have shape ({n}, 8), got {self.succ.shape}")
        if len(np.unique(self.node_ids)) != n:
            raise ValueError("node ids must be distinct")
        if ((self.succ < NO_EDGE) | (self.succ >= n)).any():
            raise ValueError("succ holds node indices outside 0..n_nodes-1")
        if (self.lat is None) != (self.lon is None):
            raise ValueError("give both lat and lon, or neither")
        if self.lat is not None:
            self.lat = np.asarray(self.lat, dtype=float)
            self.lon = np.asarray(self.lon, dtype=float)
            if self.lat.shape != (n,) or self.lon.shape != (n,):
                raise ValueError("lat/lon must have one value per node")

    # --- construction ----------------------------------------------------------------
    @classmethod
    def from_edges(cls, node_ids, edges, lat=None, lon=None, name: str = "") -> "StreetGraph":
        """Build from external ids and ``(u_id, direction, v_id)`` triples.

        ``direction`` is a name (``"NE"``) or an index 0..7. Two edges leaving the same node
        in the same direction are an error (resolve such conflicts before calling).
        """
        node_ids = np.asarray(node_ids, dtype=np.int64)
        index = {int(u): i for i, u in enumerate(node_ids)}
        succ = np.full((len(node_ids), 8), NO_EDGE, dtype=np.int32)
        for u, d, v in edges:
            k = DIR_INDEX[d] if isinstance(d, str) else int(d)
            try:
                i, j = index[int(u)], index[int(v)]
            except KeyError as err:
                raise ValueError(f"edge ({u}, {d}, {v}) names unknown node {err.args[0]}") from None
            if succ[i, k] != NO_EDGE and succ[i, k] != j:
                raise ValueError(f"node {u} has two edges heading {DIRECTIONS[k]} "
                                 f"(to {node_ids[succ[i, k]]} and {v})")
            succ[i, k] = j
        return cls(node_ids, succ, lat, lon, name)

    # --- basic queries ----------------------------------------------------------------
    @property
    def n_nodes(self) -> int:
        return len(self.node_ids)

    @property
    def n_edges(self) -> int:
        return int((self.succ != NO_EDGE).sum())

    @property
    def has_coords(self) -> bool:
        return self.lat is not None

    def index_of(self, ids) -> np.ndarray:
        """External id(s) -> node index(es); unknown ids raise KeyError."""
        ids = np.asarray(ids, dtype=np.int64)
        order = np.argsort(self.node_ids)
        pos = np.searchsorted(self.node_ids, ids, sorter=order)
        pos = np.clip(pos, 0, self.n_nodes - 1)
        found = order[pos]
        bad = self.node_ids[found] != ids
        if np.any(bad):
            raise KeyError(f"unknown node id(s): {np.atleast_1d(ids[bad])[:5].tolist()}")
        return found

    def legal(self, i: int) -> list[str]:
        """Direction names with an edge out of node index ``i``."""
        return [DIRECTIONS[k] for k in range(8) if self.succ[i, k] != NO_EDGE]

    def edges(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All edges as index arrays (src, direction index, dst)."""
        src, k = np.nonzero(self.succ != NO_EDGE)
        return src, k, self.succ[src, k]

    def follow(self, start: int, dirs) -> list[int] | None:
        """Node indices visited from ``start`` along direction names/indices; None if illegal."""
        path = [int(start)]
        for d in dirs:
            k = DIR_INDEX[d] if isinstance(d, str) else int(d)
            nxt = int(self.succ[path[-1], k])
            if nxt == NO_EDGE:
                return None
            path.append(nxt)
        return path

    def hop_distances(self) -> np.ndarray:
        """(n, n) int16 matrix of directed hop distances; ``UNREACHABLE`` when no path.

        Breadth-first search from every node (scipy's csgraph); cached. 4.6k nodes (the
        real Manhattan graph) take about 40 MB.
        """
        if self._hops is None:
            from scipy.sparse import csr_matrix
            from scipy.sparse.csgraph import shortest_path

            src, _, dst = self.edges()
            keep = src != dst  # self-loops never shorten a path
            adj = csr_matrix((np.ones(keep.sum()), (src[keep], dst[keep])), shape=(self.n_nodes,) * 2)
            dist = shortest_path(adj, method="D", directed=True, unweighted=True)
            dist[~np.isfinite(dist)] = UNREACHABLE
            self._hops = np.minimum(dist, UNREACHABLE).astype(np.int16)
        return self._hops

    def largest_scc(self) -> np.ndarray:
        """Indices of the largest strongly connected component (where trips can start and end)."""
        from scipy.sparse import csr_matrix
        from scipy.sparse.csgraph import connected_components

        src, _, dst = self.edges()
        adj = csr_matrix((np.ones(len(src)), (src, dst)), shape=(self.n_nodes,) * 2)
        _, labels = connected_components(adj, directed=True, connection="strong")
        biggest = np.bincount(labels).argmax()
        return np.nonzero(labels == biggest)[0]

    # --- interchange ------------------------------------------------------------------
    def to_networkx(self):
        """``nx.MultiDiGraph`` with ``direction`` on edges and osmnx-style ``x``/``y`` (lon/lat)."""
        import networkx as nx

        g = nx.MultiDiGraph(name=self.name, crs="epsg:4326")
        for i, u in enumerate(self.node_ids.tolist()):
            attrs = {"x": float(self.lon[i]), "y": float(self.lat[i])} if self.has_coords else {}
            g.add_node(u, **attrs)
        src, k, dst = self.edges()
        for i, kk, j in zip(src.tolist(), k.tolist(), dst.tolist()):
            g.add_edge(int(self.node_ids[i]), int(self.node_ids[j]), direction=DIRECTIONS[kk])
        return g

    @classmethod
    def from_networkx(cls, g, name: str = "") -> "StreetGraph":
        """Inverse of :meth:`to_networkx` (edges need a ``direction`` attribute)."""
        nodes = sorted(int(u) for u in g.nodes)
        has_xy = nodes and all("x" in g.nodes[u] and "y" in g.nodes[u] for u in g.nodes)
        lat = np.array([float(g.nodes[u]["y"]) for u in nodes]) if has_xy else None
        lon = np.array([float(g.nodes[u]["x"]) for u in nodes]) if has_xy else None
        edges = [(u, d["direction"], v) for u, v, d in g.edges(data=True)]
        return cls.from_edges(nodes, edges, lat, lon, name or g.graph.get("name", ""))

    def save(self, path: str | Path) -> None:
        """Write GraphML atomically (readable by networkx, osmnx and Gephi)."""
        import os

        import networkx as nx

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        nx.write_graphml(self.to_networkx(), tmp)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | Path) -> "StreetGraph":
        import networkx as nx

        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"street graph {path} does not exist")
        return cls.from_networkx(nx.read_graphml(path, node_type=int), name=path.stem)


# =====================================================================================
# Conflicts: at most one edge per (node, direction)
# =====================================================================================
def resolve_conflicts(src, dst, bearing, length=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bin edges into compass directions and keep one edge per (source, direction).

    Real streets can leave an intersection twice within the same 45-degree bin (a fork, a
    slip road), but a walk token names only a direction, so one of them has to go. The kept
    edge is the one whose bearing is closest to the bin centre (the move that best deserves
    the label); ties go to the shorter edge (``length``, e.g. metres; all equal if None),
    then to the smaller destination id, so the result never depends on input order.

    Returns ``(src, direction index, dst)`` arrays sorted by (src, direction). Self-loops
    are not treated specially: callers that do not want them drop them first.
    """
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    bearing = np.asarray(bearing, dtype=float)
    length = np.zeros(len(src)) if length is None else np.asarray(length, dtype=float)
    if not (len(src) == len(dst) == len(bearing) == len(length)):
        raise ValueError("src, dst, bearing and length must have the same length")
    k = bearing_to_direction(bearing)
    off_centre = np.abs((bearing - 45.0 * k + 180.0) % 360.0 - 180.0)
    off_centre = np.round(off_centre, 9)  # float noise must not decide a tie
    order = np.lexsort((dst, length, off_centre, k, src))  # last key = primary
    src, k, dst = src[order], k[order], dst[order]
    first = np.ones(len(src), dtype=bool)
    first[1:] = (src[1:] != src[:-1]) | (k[1:] != k[:-1])
    return src[first], k[first], dst[first]


def _graph_from_geometry(node_ids, lat, lon, src, dst, name: str) -> StreetGraph:
    """StreetGraph from node coordinates and directed edges given as node *indices*.

    The one code path that turns geometry into direction labels (synthetic and OSM alike):
    bearing from the end-point coordinates, binned, conflicts resolved.
    """
    node_ids = np.asarray(node_ids, dtype=np.int64)
    src, dst = np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)
    bearing = compass_bearing(lat[src], lon[src], lat[dst], lon[dst])
    length = haversine_miles(lat[src], lon[src], lat[dst], lon[dst])
    u, k, v = resolve_conflicts(node_ids[src], node_ids[dst], bearing, length)
    return StreetGraph.from_edges(node_ids, zip(u.tolist(), k.tolist(), v.tolist()), lat, lon, name)


# =====================================================================================
# Source 1: a synthetic Manhattan-like city (offline default)
# =====================================================================================
SYNTHETIC_ID_BASE = 42_400_000  # OSM-like node ids, same magnitude as Manhattan's (4242xxxx)


def _one_way_modes(n_lines: int, two_way_every: int | None) -> np.ndarray:
    """Traffic mode per avenue/street: 0 = two-way, +1 / -1 = one-way up / down the grid.

    Every ``two_way_every``-th line (1-based) is two-way; the others alternate, counted
    among the one-way lines only so that both senses stay balanced.
    """
    modes = np.zeros(n_lines, dtype=np.int64)
    one_way = [i for i in range(n_lines) if not (two_way_every and (i + 1) % two_way_every == 0)]
    modes[one_way] = np.where(np.arange(len(one_way)) % 2 == 0, 1, -1)
    return modes


def _diagonal_step(rotation_deg: float, avenue_spacing_m: float, street_spacing_m: float,
                   streets: int) -> tuple[int, int]:
    """(avenue step, street step) of the Broadway-like diagonal.

    It moves one avenue against the grid's tilt every ``k`` streets, ``k`` chosen so that the
    step's bearing is as close to due north as the grid allows; its edges then fall in the N/S
    bins that the rotated grid alone never produces.
    """
    tilt = math.tan(math.radians(rotation_deg))
    if abs(tilt) < 1e-9:
        return 1, max(1, streets - 1)
    k = round(avenue_spacing_m / (street_spacing_m * abs(tilt)))
    return (-1 if tilt > 0 else 1), int(min(max(k, 1), max(1, streets - 1)))


def _city_segments(avenues, streets, two_way_avenue_every, two_way_street_every, diagonal,
                   diag_step) -> np.ndarray:
    """(m, 3) array of segments ``(i, j, mode)`` between node indices ``a * streets + s``.

    ``mode`` +1 = traffic i -> j only, -1 = j -> i only, 0 = both ways.
    """
    idx = np.arange(avenues * streets).reshape(avenues, streets)
    parts = []
    # Avenues run up the grid (street index s -> s + 1).
    av_modes = _one_way_modes(avenues, two_way_avenue_every)
    parts.append(np.stack([idx[:, :-1].ravel(), idx[:, 1:].ravel(),
                           np.repeat(av_modes, streets - 1)], axis=1))
    # Streets run across it (avenue index a -> a + 1).
    st_modes = _one_way_modes(streets, two_way_street_every)
    parts.append(np.stack([idx[:-1, :].ravel(), idx[1:, :].ravel(),
                           np.tile(st_modes, avenues - 1)], axis=1))
    if diagonal and avenues > 1 and streets > 1:
        da, ds = diag_step
        a, s, diag = (avenues - 1 if da < 0 else 0), 0, []
        while 0 <= a + da < avenues and s + ds < streets:
            diag.append((idx[a, s], idx[a + da, s + ds], 0))  # two-way, like upper Broadway
            a, s = a + da, s + ds
        if diag:
            parts.append(np.array(diag, dtype=np.int64))
    return np.concatenate(parts).astype(np.int64)


def _remove_segments(segments: np.ndarray, n_nodes: int, missing_fraction: float,
                     dead_end_fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Drop a seeded random set of segments, then turn some nodes into dead ends.

    A dead-end node keeps a single one of its segments: a cul-de-sac if that segment is
    two-way, otherwise a pure sink or source (the real graph has 17 sinks).
    """
    keep = np.ones(len(segments), dtype=bool)
    n_missing = int(round(missing_fraction * len(segments)))
    keep[rng.choice(len(segments), size=n_missing, replace=False)] = False
    n_dead = int(round(dead_end_fraction * n_nodes))
    for node in rng.choice(n_nodes, size=n_dead, replace=False):
        touching = np.nonzero(keep & ((segments[:, 0] == node) | (segments[:, 1] == node)))[0]
        if len(touching) > 1:
            keep[rng.permutation(touching)[1:]] = False
    return segments[keep]


def _fit_to_bbox(east_m: np.ndarray, north_m: np.ndarray, origin) -> tuple[np.ndarray, np.ndarray]:
    """Place a layout in metres with its south-west bounding corner at ``origin`` (lat, lon).

    When the layout is larger than the room left in Manhattan's bounding box north and east
    of ``origin``, the whole layout is scaled down uniformly (spacings compress, angles and
    therefore direction labels stay the same). Degrees: 1 deg lat = 111,320 m, 1 deg lon =
    111,320 m * cos(lat) at each node's own latitude.
    """
    lat_min, lat_max, lon_min, lon_max = MANHATTAN_BBOX
    lat0, lon0 = (float(x) for x in origin)
    if not (lat_min <= lat0 < lat_max and lon_min <= lon0 < lon_max):
        raise ValueError(f"origin {origin} lies outside Manhattan's bounding box {MANHATTAN_BBOX}")
    east_m, north_m = east_m - east_m.min(), north_m - north_m.min()
    room_north = (lat_max - lat0) * METRES_PER_DEG_LAT
    # A degree of longitude is shortest at the box's northern edge: the conservative bound.
    room_east = (lon_max - lon0) * METRES_PER_DEG_LAT * math.cos(math.radians(lat_max))
    scale = 1.0
    for room, extent in ((room_north, north_m.max()), (room_east, east_m.max())):
        if extent > room:
            scale = min(scale, 0.999 * room / extent)  # 0.999: stay strictly inside
    lat = lat0 + scale * north_m / METRES_PER_DEG_LAT
    lon = lon0 + scale * east_m / (METRES_PER_DEG_LAT * np.cos(np.radians(lat)))
    return lat, lon


def synthetic_city(avenues: int = 12, streets: int = 60, seed: int = 0, rotation_deg: float = 29.0,
                   avenue_spacing_m: float = 260.0, street_spacing_m: float = 80.0,
                   two_way_avenue_every: int | None = 4, two_way_street_every: int | None = 5,
                   missing_fraction: float = 0.03, dead_end_fraction: float = 0.02,
                   diagonal: bool = True, origin=(40.705, -74.012), jitter_m: float = 10.0) -> StreetGraph:
    """A Manhattan-like street grid, direction-labelled exactly like an OSM graph.

    Node ``(a, s)`` (avenue ``a``, street ``s``) has index ``a * streets + s`` and id
    ``42_400_000 + index``; there are always ``avenues * streets`` nodes (isolated ones are
    kept) so the vocabulary can be sized before the graph exists (:func:`synthetic_n_nodes`).

    Layout: avenues ``avenue_spacing_m`` apart and cross streets ``street_spacing_m`` apart,
    the grid rotated clockwise by ``rotation_deg`` (Manhattan's 29 degrees: avenues bin to
    NE/SW, streets to NW/SE), each node nudged by up to 2 * ``jitter_m`` metres (as real
    intersections are; it moves some avenue edges into N/S), then placed inside Manhattan's
    bounding box by :func:`_fit_to_bbox`, which compresses the spacings if the grid is too
    big (12 x 400 compresses to about half).

    Traffic: one-way avenues and streets alternate, every ``two_way_*_every``-th is two-way
    (None = no two-way lines). ``diagonal`` adds a two-way Broadway-like avenue through grid
    nodes heading about due north. A seeded ``missing_fraction`` of segments is removed and
    ``dead_end_fraction`` of the nodes keep only one of their segments.
    """
    if avenues < 1 or streets < 1:
        raise ValueError(f"need at least one avenue and one street, got {avenues} x {streets}")
    rng = np.random.default_rng(seed)
    n = avenues * streets
    a, s = np.divmod(np.arange(n), streets)
    jitter = np.clip(rng.normal(0.0, jitter_m, size=(2, n)), -2 * jitter_m, 2 * jitter_m) if jitter_m > 0 \
        else np.zeros((2, n))
    x = a * avenue_spacing_m + jitter[0]  # across the grid (grid "east")
    y = s * street_spacing_m + jitter[1]  # up the avenues (grid "north")
    theta = math.radians(rotation_deg)  # clockwise: grid north points to bearing rotation_deg
    east = x * math.cos(theta) + y * math.sin(theta)
    north = -x * math.sin(theta) + y * math.cos(theta)
    lat, lon = _fit_to_bbox(east, north, origin)

    step = _diagonal_step(rotation_deg, avenue_spacing_m, street_spacing_m, streets)
    segments = _city_segments(avenues, streets, two_way_avenue_every, two_way_street_every, diagonal, step)
    segments = _remove_segments(segments, n, missing_fraction, dead_end_fraction, rng)
    i, j, mode = segments.T
    src = np.concatenate([i[mode >= 0], j[mode <= 0]])
    dst = np.concatenate([j[mode >= 0], i[mode <= 0]])
    name = f"synthetic-{avenues}x{streets}-seed{seed}"
    return _graph_from_geometry(SYNTHETIC_ID_BASE + np.arange(n), lat, lon, src, dst, name)


def _synthetic_kwargs(sub: dict | None) -> dict:
    """Validated keyword arguments for :func:`synthetic_city` from ``graph.synthetic``."""
    sub = dict(sub or {})
    allowed = inspect.signature(synthetic_city).parameters
    unknown = sorted(set(sub) - set(allowed))
    if unknown:
        raise ValueError(f"unknown key(s) in graph.synthetic: {unknown}; allowed: {sorted(allowed)}")
    if "origin" in sub:
        sub["origin"] = tuple(sub["origin"])  # YAML gives a list
    return sub


def synthetic_n_nodes(cfg: dict) -> int:
    """Node count of the synthetic city ``cfg`` describes, without building it.

    ``cfg`` is either the whole graph config (``source: synthetic``) or its ``synthetic``
    sub-dict.
    """
    if "source" in cfg:
        if cfg["source"] != "synthetic":
            raise ValueError(f"graph.source is {cfg['source']!r}: only a synthetic city's size is known "
                             "before it is built")
        cfg = cfg.get("synthetic") or {}
    params = inspect.signature(synthetic_city).parameters
    kw = _synthetic_kwargs(cfg)
    return int(kw.get("avenues", params["avenues"].default)) * int(kw.get("streets", params["streets"].default))


# =====================================================================================
# Source 2: OpenStreetMap through osmnx
# =====================================================================================
def _import_osmnx():
    try:
        import osmnx as ox
    except ImportError as err:
        raise ImportError("graph.source 'osm' needs osmnx: install the `osm` extra "
                          "(pip install 'nextlat[osm]') or `pip install osmnx`") from err
    return ox


def _download_osm(ox, place: str):
    """``ox.graph_from_place(place, drive)``; a network failure becomes a clear RuntimeError."""
    import requests

    network_errors = (requests.RequestException, ConnectionError, TimeoutError,
                      ox._errors.InsufficientResponseError, ox._errors.ResponseStatusCodeError)
    try:
        return ox.graph_from_place(place, network_type="drive")
    except network_errors as err:
        raise RuntimeError(f"could not download {place!r}: OpenStreetMap is unreachable ({err}). "
                           "Offline, point graph.osm.xml to a local .osm file or graph.osm.cache "
                           "to an osmnx GraphML file") from err


def streets_from_osmnx(g, name: str = "") -> StreetGraph:
    """Direction-labelled :class:`StreetGraph` from an osmnx ``MultiDiGraph`` (lat/lon nodes).

    Every edge (u, v) is labelled by the bearing from u's to v's coordinates (a curved road
    counts by its end points, as a walk token does); self-loops are dropped and same-bin
    conflicts resolved by :func:`resolve_conflicts` (ties by the edge's ``length``).
    """
    node_ids = np.array(sorted(int(u) for u in g.nodes), dtype=np.int64)
    lat = np.array([float(g.nodes[u]["y"]) for u in node_ids.tolist()])
    lon = np.array([float(g.nodes[u]["x"]) for u in node_ids.tolist()])
    index = {u: i for i, u in enumerate(node_ids.tolist())}
    edges = [(index[int(u)], index[int(v)]) for u, v in g.edges() if u != v]
    src = np.array([e[0] for e in edges], dtype=np.int64)
    dst = np.array([e[1] for e in edges], dtype=np.int64)
    return _graph_from_geometry(node_ids, lat, lon, src, dst, name)


def from_osm(place: str | None = None, xml: str | Path | None = None,
             cache: str | Path | None = None) -> StreetGraph:
    """Street graph of an OpenStreetMap area.

    The raw osmnx graph comes from ``cache`` if that file exists (no network), else from
    the local ``xml`` (.osm) file, else it is downloaded with
    ``ox.graph_from_place(place, network_type="drive")`` (osmnx defaults otherwise, as in
    the original study); a freshly built graph is saved to ``cache`` when one is given.
    """
    ox = _import_osmnx()
    if cache is not None and Path(cache).exists():
        g = ox.load_graphml(cache)
    else:
        if xml is not None:
            g = ox.graph_from_xml(xml)
        elif place is not None:
            g = _download_osm(ox, place)
        else:
            raise ValueError("from_osm needs a place, an xml file or an existing cache file"
                             + (f" ({cache} does not exist)" if cache is not None else ""))
        if cache is not None:
            Path(cache).parent.mkdir(parents=True, exist_ok=True)
            ox.save_graphml(g, cache)
    if ox.projection.is_projected(g.graph.get("crs", "epsg:4326")):
        g = ox.projection.project_graph(g, to_latlong=True)  # bearings need lat/lon
    name = place or Path(xml or cache).stem
    return streets_from_osmnx(g, name)


# =====================================================================================
# Source 3: the original study's pickles
# =====================================================================================
def _load_pickle(path: str | Path):
    with open(path, "rb") as f:
        return pickle.load(f)


def _check_turns(neighbors: dict, turns: dict, path) -> int:
    """Count ``valid_turns`` entries that disagree with ``neighbors`` and log a warning."""
    legal: dict[int, set] = {}
    for u, d in neighbors:
        legal.setdefault(int(u), set()).add(d)
    bad = []
    for u in sorted(set(legal) | {int(u) for u in turns}):
        listed = set(turns.get(u, ()))
        if listed != legal.get(u, set()):
            bad.append((u, sorted(listed), sorted(legal.get(u, set()))))
    if bad:
        examples = "; ".join(f"node {u}: turns {t} vs neighbors {n}" for u, t, n in bad[:3])
        log.warning("%s: %d node(s) have valid turns that disagree with the neighbor table "
                    "(the neighbor table wins), e.g. %s", path, len(bad), examples)
    return len(bad)


def _read_coords(path: str | Path, node_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """lat/lon per node from a CSV with columns node,lat,lon (extra rows are ignored)."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing_cols = {"node", "lat", "lon"} - set(reader.fieldnames or ())
        if missing_cols:
            raise ValueError(f"{path}: missing column(s) {sorted(missing_cols)}; need node,lat,lon")
        table = {int(r["node"]): (float(r["lat"]), float(r["lon"])) for r in reader}
    missing = [int(u) for u in node_ids if int(u) not in table]
    if missing:
        raise ValueError(f"{path}: no coordinates for {len(missing)} node(s), e.g. {missing[:5]}")
    lat, lon = np.array([table[int(u)] for u in node_ids]).T
    return lat, lon


def from_pickle(neighbors: str | Path, turns: str | Path | None = None,
                coords: str | Path | None = None) -> StreetGraph:
    """Street graph from the original study's ``node_and_direction_to_neighbor.pkl``.

    ``neighbors`` maps ``(node, direction name) -> neighbor`` and is authoritative; the
    optional ``turns`` (``valid_turns.pkl``, node -> legal direction names) is only checked
    against it. Nodes are every key and neighbor. Self-loops are kept: they are legal moves
    in the original data. ``coords`` is an optional node,lat,lon CSV; without it the graph
    has no coordinates.
    """
    table = _load_pickle(neighbors)
    bad_dirs = sorted({d for _, d in table if d not in DIR_INDEX})
    if bad_dirs:
        raise ValueError(f"{neighbors}: unknown direction name(s) {bad_dirs}")
    if turns is not None:
        _check_turns(table, _load_pickle(turns), turns)
    node_ids = np.array(sorted({int(u) for u, _ in table} | {int(v) for v in table.values()}), dtype=np.int64)
    lat, lon = _read_coords(coords, node_ids) if coords is not None else (None, None)
    edges = ((u, d, v) for (u, d), v in table.items())
    return StreetGraph.from_edges(node_ids, edges, lat, lon, name=Path(neighbors).stem)


# =====================================================================================
# Dispatcher
# =====================================================================================
SOURCES = ("synthetic", "osm", "pickle")


def _existing(path, key: str) -> Path:
    """``path`` as a Path, or FileNotFoundError naming the config key."""
    if path is None:
        raise ValueError(f"{key} is not set")
    if not Path(path).exists():
        raise FileNotFoundError(f"{key}: {path} does not exist")
    return Path(path)


def _osm_graph(sub: dict, cache_dir) -> StreetGraph:
    place, xml, cache = sub.get("place"), sub.get("xml"), sub.get("cache")
    if cache is None and cache_dir is not None:  # a default cache next to the outputs
        slug = re.sub(r"[^A-Za-z0-9]+", "_", str(place or Path(xml or "osm").stem)).strip("_").lower()
        cache = Path(cache_dir) / f"osm_{slug}.graphml"
    if xml is not None:
        _existing(xml, "graph.osm.xml")
    elif place is None:
        _existing(cache, "graph.osm.cache")  # neither xml nor place: only the cache can help
    return from_osm(place=place, xml=xml, cache=cache)


def load_street_graph(cfg: dict, cache_dir: str | Path | None = None) -> StreetGraph:
    """Build the street graph a ``manhattan.graph`` config block describes.

    ``cfg["source"]`` picks the builder: ``synthetic`` (:func:`synthetic_city` with
    ``cfg["synthetic"]``), ``osm`` (:func:`from_osm` with ``cfg["osm"]``: place, xml, cache)
    or ``pickle`` (:func:`from_pickle` with ``cfg["pickle"]``: neighbors, turns, coords).
    Relative paths are used as given. ``cache_dir`` only supplies an osmnx cache file when
    ``osm.cache`` is unset. Other keys (``max_nodes``) are the caller's business.
    """
    source = cfg.get("source")
    if source not in SOURCES:
        raise ValueError(f"graph.source must be one of {list(SOURCES)}, got {source!r}")
    sub = cfg.get(source) or {}
    if source == "synthetic":
        return synthetic_city(**_synthetic_kwargs(sub))
    if source == "osm":
        return _osm_graph(sub, cache_dir)
    neighbors = _existing(sub.get("neighbors"), "graph.pickle.neighbors")
    turns, coords = sub.get("turns"), sub.get("coords")
    return from_pickle(neighbors,
                       turns=_existing(turns, "graph.pickle.turns") if turns is not None else None,
                       coords=_existing(coords, "graph.pickle.coords") if coords is not None else None)
