"""Street graphs for the Manhattan world-model benchmark (Table 1, Figure 3).

Every source (``synthetic``, ``osm``, ``pickle``; see :func:`load_street_graph`) produces a
:class:`StreetGraph` (``graph.py``): a directed graph whose edges are labelled with one of
eight compass directions, at most one edge per (node, direction), and node coordinates
when known. One module per source.
"""
from __future__ import annotations

import re
from pathlib import Path

from .graph import (DIR_INDEX, DIR_STEPS, DIRECTIONS, EARTH_RADIUS_MILES, MANHATTAN_BBOX, METRES_PER_DEG_LAT,
                    NO_EDGE, UNREACHABLE, StreetGraph, bearing_to_direction, compass_bearing, haversine_miles,
                    resolve_conflicts)
from .osm import from_osm, streets_from_osmnx
from .pickles import from_pickle
from .synthetic import SYNTHETIC_ID_BASE, _synthetic_kwargs, synthetic_city, synthetic_n_nodes

__all__ = ["DIR_INDEX", "DIR_STEPS", "DIRECTIONS", "EARTH_RADIUS_MILES", "MANHATTAN_BBOX", "METRES_PER_DEG_LAT",
           "NO_EDGE", "UNREACHABLE", "SOURCES", "SYNTHETIC_ID_BASE", "StreetGraph", "bearing_to_direction",
           "compass_bearing", "from_osm", "from_pickle", "haversine_miles", "load_street_graph",
           "resolve_conflicts", "streets_from_osmnx", "synthetic_city", "synthetic_n_nodes"]

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
