"""Loading, scaling and validating the pipeline configuration.

``config.yaml`` holds the paper's settings at top level and named override sets under
``scales``. :func:`resolve` deep-merges the chosen scale in, then validates the result
against the schema (``nextlat/schemas/config.schema.yaml`` plus each benchmark's
``schema.yaml``; schema defaults are filled in), so a bad key stops everything with its
dotted path before any job is planned.
"""
from __future__ import annotations

import copy
from pathlib import Path
import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).parent / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """A configuration problem, with the dotted path of the offending key."""


def load_schema() -> dict:
    """The full config schema: the shared file plus each registered benchmark's block
    (``nextlat/benchmarks/<name>/schema.yaml``, under ``$defs/<name>``) and the method
    block generated from the registered objectives' settings."""
    from . import benchmarks

    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    slots = schema["properties"]["benchmarks"]["properties"]
    for name in benchmarks.names():
        schema["$defs"][name] = yaml.safe_load(benchmarks.schema_file(name).read_text())
        slots[name] = {"$ref": f"#/$defs/{name}"}
    return schema


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


def _describe(err: jsonschema.ValidationError) -> str:
    where = ".".join(str(p) for p in err.absolute_path) or "<top level>"
    if err.validator == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        keys = ", ".join(f"{where}.{k}" if where != "<top level>" else k for k in extra)
        return f"unknown config key(s): {keys}"
    return f"config error at {where}: {err.message}"


def validate(cfg: dict, schema: dict | None = None) -> dict:
    """Validate ``cfg`` in place (defaults filled in); raise ConfigError naming the key."""
    schema = schema or load_schema()
    errors = sorted(_Validator(schema).iter_errors(cfg), key=lambda e: list(e.absolute_path))
    if errors:
        # The deepest error is the most specific ("lrr" rather than "train is invalid").
        best = jsonschema.exceptions.best_match(errors)
        raise ConfigError(_describe(best))
    return cfg


def merge_scale(raw: dict, scale: str | None = None, overrides: dict | None = None) -> dict:
    """Merge a scale's overrides, then ad-hoc ones, into the raw config (not validated)."""
    scale = scale or raw.get("scale")
    scales = raw.get("scales") or {}
    if scale not in scales:
        raise ConfigError(f"unknown scale {scale!r}; config.yaml defines: {sorted(scales)}")
    cfg = deep_merge({k: v for k, v in raw.items() if k != "scales"}, scales[scale] or {})
    cfg = deep_merge(cfg, overrides or {})  # ad-hoc overrides win over the scale's
    cfg["scale"] = scale
    return cfg


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
    schema = load_schema()
    return {"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": f"#/$defs/{name}"}

