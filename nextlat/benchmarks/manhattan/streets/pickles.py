"""Source ``pickle``: the original study's artifacts (no coordinates unless a CSV is given)."""
from __future__ import annotations

import csv
import logging
import pickle
from pathlib import Path

import numpy as np

from .graph import DIR_INDEX, StreetGraph

log = logging.getLogger(__name__)

# =====================================================================================
# Source 3: the original study's pickles
# =====================================================================================
def _load_pickle(path: str | Path):
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError) as err:
        raise ValueError(f"{path} is not a readable pickle ({type(err).__name__}: {err})") from None


def _describe(obj) -> str:
    if isinstance(obj, dict) and obj:
        k, v = next(iter(obj.items()))
        return f"a dict of {len(obj)} entries like {k!r}: {v!r}"
    return f"a {type(obj).__name__}"


def _check_neighbors_shape(table, path) -> None:
    """The neighbor table maps (node, direction name) -> neighbor node; say which file holds
    what instead when it does not (e.g. the turns file given as the neighbor table)."""
    ok = isinstance(table, dict) and all(
        isinstance(k, tuple) and len(k) == 2 and isinstance(k[1], str) and isinstance(v, (int, np.integer))
        for k, v in table.items())
    if not ok:
        raise ValueError(f"graph.pickle.neighbors={path} should map (node, direction) -> neighbor node "
                         f"(node_and_direction_to_neighbor.pkl) but holds {_describe(table)}; "
                         "were the neighbors and turns files swapped?")


def _check_turns_shape(turns, path) -> None:
    ok = isinstance(turns, dict) and all(
        isinstance(k, (int, np.integer)) and isinstance(v, (list, tuple, set)) for k, v in turns.items())
    if not ok:
        raise ValueError(f"graph.pickle.turns={path} should map node -> list of direction names "
                         f"(valid_turns.pkl) but holds {_describe(turns)}; were the neighbors and turns "
                         "files swapped?")


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
    _check_neighbors_shape(table, neighbors)
    bad_dirs = sorted({d for _, d in table if d not in DIR_INDEX})
    if bad_dirs:
        raise ValueError(f"{neighbors}: unknown direction name(s) {bad_dirs}")
    if turns is not None:
        turns_table = _load_pickle(turns)
        _check_turns_shape(turns_table, turns)
        _check_turns(table, turns_table, turns)
    node_ids = np.array(sorted({int(u) for u, _ in table} | {int(v) for v in table.values()}), dtype=np.int64)
    lat, lon = _read_coords(coords, node_ids) if coords is not None else (None, None)
    edges = ((u, d, v) for (u, d), v in table.items())
    return StreetGraph.from_edges(node_ids, edges, lat, lon, name=Path(neighbors).stem)
