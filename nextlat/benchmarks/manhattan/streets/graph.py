"""The street graph every source produces: compass directions, geometry helpers and
:class:`StreetGraph`, a dense ``(n_nodes, 8)`` successor table, so a random walk or a
legality check is an array lookup and walks can be vectorised over millions of rows."""
from __future__ import annotations

import logging
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
        import networkx as nx

        from ....io import atomic_path

        with atomic_path(path) as tmp:
            nx.write_graphml(self.to_networkx(), tmp)

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


def graph_from_geometry(node_ids, lat, lon, src, dst, name: str) -> StreetGraph:
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
