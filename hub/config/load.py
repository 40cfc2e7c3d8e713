"""Read a configuration file into a validated :class:`LoadedConfig`, or explain every problem.

The YAML is composed into nodes first (``yaml.SafeLoader``): nodes carry the line of every key and
value, which gives each field path its line, and duplicate keys (which PyYAML would silently keep
the last of) become errors. Then the pydantic schema validates types and ranges, and finally
cross-references (skill and queue names, duplicates) are checked against the whole file. Nothing
here touches the database; :func:`hub.config.apply.apply_config` runs only on a clean result.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from hub.config.errors import ConfigError, ConfigIssue, Loc
from hub.config.schema import ConfigFile

MAX_FILE_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class LoadedConfig:
    """A valid configuration plus where each value came from (for errors found later on)."""

    source: str
    spec: ConfigFile
    lines: Mapping[Loc, int]

    def line(self, loc: Loc) -> int:
        """The line of ``loc`` or of its nearest ancestor that appears in the file."""
        for end in range(len(loc), -1, -1):
            if loc[:end] in self.lines:
                return self.lines[loc[:end]]
        return 0

    def issue(self, loc: Loc, message: str) -> ConfigIssue:
        return ConfigIssue(self.source, self.line(loc), loc, message)


def load_config(path: Path) -> LoadedConfig:
    """Read and validate ``path``; errors are reported as ``<file name>:<line>: ...``."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError([ConfigIssue(path.name, 0, (), f"cannot read: {exc.strerror}")]) from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError([ConfigIssue(path.name, 0, (), "file is larger than 2 MiB")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([ConfigIssue(path.name, 0, (), f"not UTF-8: {exc.reason}")]) from None
    return parse_config(text, source=path.name)


def parse_config(text: str, *, source: str = "config.yaml") -> LoadedConfig:
    """Validate configuration ``text``; ``source`` is the name errors are reported under."""
    data, lines = _parse_yaml(text, source)
    try:
        spec = ConfigFile.model_validate(data)
    except ValidationError as exc:
        cfg = LoadedConfig(source, ConfigFile(), lines)
        raise ConfigError([cfg.issue(tuple(e["loc"]), _message(e)) for e in exc.errors()]) from None
    loaded = LoadedConfig(source, spec, lines)
    issues = check_references(loaded)
    if issues:
        raise ConfigError(issues)
    return loaded


# --- YAML with line numbers ------------------------------------------------------------------


def _parse_yaml(text: str, source: str) -> tuple[Any, dict[Loc, int]]:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise ConfigError([ConfigIssue(source, 1, (), "the file is empty")])
        lines: dict[Loc, int] = {}
        issues: list[ConfigIssue] = []
        _walk(node, (), lines, issues, source)
        if issues:
            raise ConfigError(issues)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem and exc.context_mark is not None:
            problem += f" ({exc.context} at line {exc.context_mark.line + 1})"
        raise ConfigError(
            [ConfigIssue(source, line, (), f"YAML syntax error: {problem}")]
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError([ConfigIssue(source, 0, (), f"YAML error: {exc}")]) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise ConfigError([ConfigIssue(source, 1, (), "the top level must be a mapping")])
    return data, lines


def _walk(
    node: yaml.Node, loc: Loc, lines: dict[Loc, int], issues: list[ConfigIssue], source: str
) -> None:
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                issues.append(
                    ConfigIssue(
                        source, line, (*loc, key), f"duplicate key (first at line {seen[key]})"
                    )
                )
                continue
            seen[key] = line
            lines[(*loc, key)] = line
            _walk(value_node, (*loc, key), lines, issues, source)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*loc, index), lines, issues, source)


# --- pydantic errors as sentences ------------------------------------------------------------


def _message(err: ErrorDetails) -> str:
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    bounds = {
        "greater_than": ("gt", ">"),
        "greater_than_equal": ("ge", ">="),
        "less_than": ("lt", "<"),
        "less_than_equal": ("le", "<="),
    }
    if kind in bounds:
        key, op = bounds[kind]
        return f"must be {op} {ctx[key]} (got {value!r})"
    if kind == "extra_forbidden":
        allowed = _allowed_fields(tuple(err["loc"])[:-1])
        return f"unknown field (allowed: {', '.join(allowed)})" if allowed else "unknown field"
    if kind == "missing":
        return "required field is missing"
    if kind in {"enum", "literal_error"}:
        return f"must be one of {ctx.get('expected', '?')} (got {value!r})"
    if kind == "string_type":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return f"must be text, got the number {value!r} (quote it in YAML)"
        return "must be text"
    if kind in {"int_type", "int_parsing", "int_from_float"}:
        return f"must be a whole number (got {value!r})"
    if kind in {"bool_type", "bool_parsing"}:
        return f"must be true or false (got {value!r})"
    if kind == "list_type":
        return "must be a list"
    if kind in {"dict_type", "model_type", "model_attributes_type"}:
        return "must be a mapping of fields"
    if kind == "string_too_short":
        return f"must be at least {ctx.get('min_length')} character(s)"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters"
    if kind == "value_error":
        return str(err["msg"]).removeprefix("Value error, ")
    msg = str(err["msg"])
    return msg[:1].lower() + msg[1:]


def _unwrap(tp: Any) -> Any:
    """Strip ``Annotated`` and ``X | None`` so the container or model underneath shows."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _allowed_fields(loc: Loc) -> list[str]:
    """Field names of the model found at ``loc`` (for 'unknown field' hints)."""
    tp: Any = ConfigFile
    for part in loc:
        tp = _unwrap(tp)
        origin = typing.get_origin(tp)
        if origin is list and isinstance(part, int):
            tp = typing.get_args(tp)[0]
        elif origin is dict:
            tp = typing.get_args(tp)[1]
        elif isinstance(tp, type) and issubclass(tp, BaseModel) and isinstance(part, str):
            field = tp.model_fields.get(part)
            if field is None:
                return []
            tp = field.annotation
        else:
            return []
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return list(tp.model_fields)
    return []


# --- cross-references ------------------------------------------------------------------------


def _known(names: set[str]) -> str:
    listed = sorted(names)
    shown = ", ".join(listed[:12]) + (", ..." if len(listed) > 12 else "")
    return f"known: {shown}" if listed else "none are declared"


def check_references(cfg: LoadedConfig) -> list[ConfigIssue]:
    """Duplicates and dangling names across sections; names must be declared in the same file."""
    spec, issues = cfg.spec, []

    def unique(keys: Sequence[tuple[Loc, object]], what: str) -> set[str]:
        first: dict[object, Loc] = {}
        for loc, key in keys:
            if key in first:
                line = cfg.line(first[key])
                issues.append(cfg.issue(loc, f"duplicate {what} {key!r} (first at line {line})"))
            else:
                first[key] = loc
        return {str(k) for k in first}

    skills = unique([(("skills", i), s) for i, s in enumerate(spec.skills)], "skill")
    queues = unique([(("queues", i, "name"), q.name) for i, q in enumerate(spec.queues)], "queue")
    unique([(("agents", i, "email"), a.email) for i, a in enumerate(spec.agents)], "email")
    channels = list(enumerate(spec.channels))
    unique([(("channels", i, "name"), c.name) for i, c in channels], "channel name")
    addresses = [(("channels", i, "address"), f"{c.kind.value} {c.address}") for i, c in channels]
    unique(addresses, "channel")
    rules = list(enumerate(spec.routing_rules))
    unique([(("routing_rules", i, "name"), r.name) for i, r in rules], "rule name")

    def need(names: set[str], name: str | None, loc: Loc, what: str) -> None:
        if name is not None and name not in names:
            issues.append(cfg.issue(loc, f"unknown {what} {name!r} ({_known(names)})"))

    for i, q in enumerate(spec.queues):
        for j, req in enumerate(q.required_skills):
            need(skills, req.skill, ("queues", i, "required_skills", j, "skill"), "skill")
        for j, step in enumerate(q.overflow):
            loc: Loc = ("queues", i, "overflow", j, "queue")
            need(queues, step.queue, loc, "queue")
            if step.queue == q.name:
                issues.append(cfg.issue(loc, "a queue cannot overflow into itself"))
    for i, a in enumerate(spec.agents):
        for skill in a.skills:
            need(skills, skill, ("agents", i, "skills", skill), "skill")
    for i, c in channels:
        need(queues, c.queue, ("channels", i, "queue"), "queue")
    for i, r in rules:
        need(queues, r.queue, ("routing_rules", i, "queue"), "queue")
    return issues
