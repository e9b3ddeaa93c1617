"""Loading, scaling and validating the pipeline configuration.

``config.yaml`` holds the paper's settings at top level and named override sets under
``scales``. :func:`resolve` deep-merges the chosen scale in, then validates the result
against the schema (``nextlat/schemas/config.schema.yaml`` plus each benchmark's
``schema.yaml``, plus the ``method`` block generated from the objectives' settings
dataclasses; schema defaults are filled in), so a bad key stops everything with its
dotted path before any job is planned.
"""
from __future__ import annotations

import copy
import functools
import importlib
from pathlib import Path
import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).parent / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """A configuration problem, with the dotted path of the offending key."""


def load_schema() -> dict:
    """The full config schema: the shared file plus each registered benchmark's block
    (``nextlat/benchmarks/<name>/schema.yaml``, under ``$defs/<name>``) and the method
    block generated from the registered objectives' settings. A copy: callers may edit it."""
    return copy.deepcopy(_schema())


def _schema() -> dict:
    """The composed schema, built once per set of registered benchmarks and methods (it is
    read at every validation, run override and stage that checks its config block); read-only."""
    from . import benchmarks

    return _composed(tuple(benchmarks.names()), tuple(method_settings()))


@functools.lru_cache(maxsize=None)
def _composed(benchmark_names: tuple[str, ...], method_names: tuple[str, ...]) -> dict:
    from . import benchmarks

    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    slots = schema["properties"]["benchmarks"]["properties"]
    for name in benchmark_names:
        schema["$defs"][name] = yaml.safe_load(benchmarks.schema_file(name).read_text())
        slots[name] = {"$ref": f"#/$defs/{name}"}
    schema["$defs"].update(method_defs())
    return schema


def method_settings() -> dict[str, type]:
    """Registered method name -> its settings dataclass (``nextlat/objectives/<name>.py``).

    Imported by name: a stage that validates its own config block must not depend on the
    objective files (codedeps follows ``import`` statements only), and the method schema
    never fills values in (no defaults), so it cannot change what a stage computes.
    """
    importlib.import_module(f"{__package__}.objectives")  # registers every objective
    registry = importlib.import_module(f"{__package__}.objectives.base")
    return {name: registry.settings_of(name) for name in registry.available()}


def method_tagged_problem(name: str) -> str | None:
    """Why method ``name`` cannot train on tagged rows (None: it can); imported by name as
    :func:`method_settings` is."""
    importlib.import_module(f"{__package__}.objectives")
    return importlib.import_module(f"{__package__}.objectives.base").tagged_problem(name)


# `horizon` as the run matrix reads it (nextlat.runs): an int, an expression of the task's
# variables, or a list of either (one run each).
_HORIZON_FORMS = [{"type": "string", "pattern": "^[dl0-9+\\-* ()]+$"},
                  {"type": "array", "minItems": 1,
                   "items": {"oneOf": [{"type": "integer", "minimum": 1}, {"type": "string"}]}}]
_METHOD_DESCRIPTION = (
    "One entry of a run matrix. `horizon` and any key listed in `grid` may be a list: each "
    "combination becomes its own run. `horizon` may be an expression of the task's variables "
    "(see each benchmark's task_vars), e.g. \"l-2\". `tasks` restricts the entry to some of the "
    "benchmark's tasks (a control trained on one task only). Generated from the registered objectives' settings "
    "(nextlat.config.method_defs): each method accepts exactly its own keys.")


_TASKS = {"type": "array", "minItems": 1, "uniqueItems": True, "items": {"type": "string"},
          "description": "Train this entry on these of the benchmark's tasks only (default: all)."}


def method_defs() -> dict[str, dict]:
    """``$defs/method`` (dispatching on ``name``) and one ``$defs/method_<name>`` per
    registered objective: exactly its settings' keys plus ``name`` and ``grid``, whose keys
    must be settings too (``horizon`` excluded: it takes a list itself). No ``default`` is
    emitted, so validation never adds keys to a method dict (a run's identity)."""
    defs: dict[str, dict] = {}
    settings = method_settings()
    for name, cls in settings.items():
        props = cls.schema_properties()
        for prop in props.values():
            prop["x-method"] = name  # lets _describe name the method
        grid = {k: {"type": "array", "minItems": 1, "items": v} for k, v in props.items() if k != "horizon"}
        if "horizon" in props:
            props["horizon"] = {"oneOf": [props["horizon"], *_HORIZON_FORMS], "x-method": name}
        defs[f"method_{name}"] = {
            "type": "object", "additionalProperties": False, "required": ["name"], "x-method": name,
            "properties": {"name": {"const": name}, **props, "tasks": _TASKS, "grid": {
                "type": "object", "additionalProperties": False, "properties": grid, "x-method": name,
                "description": "Method hyperparameters to sweep, e.g. {lambda_kl: [0.1, 1.0]}."}}}
    defs["method"] = {
        "type": "object", "description": _METHOD_DESCRIPTION, "required": ["name"],
        "properties": {"name": {"type": "string", "enum": sorted(settings)}},
        "allOf": [{"if": {"properties": {"name": {"const": name}}, "required": ["name"]},
                   "then": {"$ref": f"#/$defs/method_{name}"}} for name in sorted(settings)]}
    return defs


def deep_merge(base: dict, override: dict) -> dict:
    """Recursively merge ``override`` into a copy of ``base``; lists and scalars replace."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _with_defaults(validator_cls):
    """A validator that also writes schema ``default`` values into the instance."""
    validate_props = validator_cls.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for key, sub in properties.items():
                if "default" in sub and key not in instance:
                    instance[key] = copy.deepcopy(sub["default"])
        yield from validate_props(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_cls, {"properties": set_defaults})


_Validator = _with_defaults(jsonschema.Draft202012Validator)


def _method_of(err: jsonschema.ValidationError) -> str | None:
    """The method whose generated schema raised ``err`` (see :func:`method_defs`)."""
    while err is not None:
        if isinstance(err.schema, dict) and "x-method" in err.schema:
            return err.schema["x-method"]
        err = err.parent
    return None


def _describe(err: jsonschema.ValidationError, prefix: str = "") -> str:
    parts = [prefix] if prefix else []
    where = ".".join([*parts, *(str(p) for p in err.absolute_path)]) or "<top level>"
    method = _method_of(err)
    if method:  # one line naming the entry, the method and the key: methods[1] (nextlat): ...
        at = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
        at = (prefix + at).lstrip(".") or "method"
        if err.validator == "additionalProperties":
            accepted = [k for k in err.schema.get("properties", {}) if k not in ("name", "grid", "tasks")]
            extra = [k for k in err.instance if k not in err.schema.get("properties", {})]
            unknown = ("key " if len(extra) == 1 else "keys ") + ", ".join(repr(k) for k in extra)
            if err.absolute_path and err.absolute_path[-1] == "grid":
                return (f"{at} ({method}): unknown grid {unknown}; {method}'s grid accepts "
                        f"{', '.join(accepted) or 'nothing'} (horizon takes a list itself)")
            return (f"{at} ({method}): unknown {unknown}; "
                    f"{method} accepts {', '.join(accepted) or 'no settings'}")
        return f"{at} ({method}): {err.message}"
    if err.validator == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        keys = ", ".join(f"{where}.{k}" if where != "<top level>" else k for k in extra)
        return f"unknown config key(s): {keys}"
    return f"config error at {where}: {err.message}"


def validate(cfg: dict, schema: dict | None = None, where: str = "") -> dict:
    """Validate ``cfg`` in place (defaults filled in); raise ConfigError naming the key.
    ``where`` is the dotted path of ``cfg`` inside the whole config (for the message)."""
    schema = schema or _schema()
    errors = sorted(_Validator(schema).iter_errors(cfg), key=lambda e: list(e.absolute_path))
    if errors:
        # The deepest error is the most specific ("lrr" rather than "train is invalid").
        best = jsonschema.exceptions.best_match(errors)
        raise ConfigError(_describe(best, where))
    return cfg


def merge_scale(raw: dict, scale: str | None = None, overrides: dict | None = None) -> dict:
    """Merge a scale's overrides, then ad-hoc ones, into the raw config (not validated)."""
    scale = scale or raw.get("scale")
    cfg = deep_merge({k: v for k, v in raw.items() if k != "scales"}, scale_overrides(raw.get("scales") or {}, scale))
    cfg = deep_merge(cfg, overrides or {})  # ad-hoc overrides win over the scale's
    cfg["scale"] = scale
    return cfg


def scale_overrides(scales: dict, scale: str, _seen: tuple = ()) -> dict:
    """A scale's override set; one that ``extends`` another is merged on top of that one's
    (a study at the default scale with a few changes, say)."""
    if scale not in scales:
        raise ConfigError(f"unknown scale {scale!r}; config.yaml defines: {sorted(scales)}")
    entry = dict(scales[scale] or {})
    base = entry.pop("extends", None)
    if base is None:
        return entry
    if not isinstance(base, str):
        raise ConfigError(f"scales.{scale}.extends must name one scale, got {base!r}")
    if base == scale or base in _seen:
        raise ConfigError(f"scales.{scale}.extends: {base!r} extends {scale!r} back (a cycle)")
    if base not in scales:
        raise ConfigError(f"scales.{scale}.extends names {base!r}, which config.yaml does not define "
                          f"(it defines {sorted(scales)})")
    return deep_merge(scale_overrides(scales, base, _seen + (scale,)), entry)


def resolve(raw: dict, scale: str | None = None, overrides: dict | None = None) -> dict:
    """:func:`merge_scale` then :func:`validate` (the workflow uses Snakemake's validate)."""
    return validate(merge_scale(raw, scale, overrides))


def load(path: str | Path = "config.yaml", scale: str | None = None, overrides: dict | None = None) -> dict:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    return resolve(yaml.safe_load(path.read_text()) or {}, scale, overrides)


def sub_schema(name: str) -> dict:
    """A schema for one ``$defs`` entry (used to re-check per-run overrides)."""
    schema = _schema()
    return {"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": f"#/$defs/{name}"}

