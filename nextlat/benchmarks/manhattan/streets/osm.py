"""Source ``osm``: Manhattan's drive network from OpenStreetMap through osmnx, cached as
GraphML (the download needs the network once; a local ``.osm`` file works offline)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .graph import StreetGraph, graph_from_geometry

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
    return graph_from_geometry(node_ids, lat, lon, src, dst, name)


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
