"""Source ``synthetic`` (the offline default): a Manhattan-like city, sized by config."""
from __future__ import annotations

import inspect
import math

import numpy as np

from .graph import MANHATTAN_BBOX, METRES_PER_DEG_LAT, StreetGraph, graph_from_geometry

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
    return graph_from_geometry(SYNTHETIC_ID_BASE + np.arange(n), lat, lon, src, dst, name)


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
