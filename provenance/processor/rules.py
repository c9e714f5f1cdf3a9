"""Inference rules: artifact type, name, version and project from paths; tags; job names.

Rules come from a YAML file (`default_rules.yaml` ships the Hopsworks and common layouts). Loading
validates everything up front: a bad rule fails at start with its name and line in the message.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from provenance.errors import RulesError
from provenance.yamlfile import line_of, load_mapping, strip_lines

DEFAULT_RULES_PATH = Path(__file__).with_name("default_rules.yaml")

_URI_SAFE = "/@:+,=~!$&'()*;"
_FIELD_DEFAULT_RE = {"version": r"[^/]+", "name": r"[^/]+?"}
_TOKEN = re.compile(r"\{(?P<field>[A-Za-z_][A-Za-z0-9_]*)(?::(?P<rx>(?:[^{}]|\{\d*,?\d*\})+))?\}")


@dataclass(frozen=True, slots=True)
class ArtifactRef:
    """What a path is: the artifact it belongs to, and the version if the path says it."""

    uri: str  # artifact root, a URI without version
    type: str
    name: str
    project: str | None
    version: str | None
    rule: str
    props: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class PathRule:
    name: str
    type: str
    regex: re.Pattern[str]
    artifact: str | None  # template, None: the matched prefix
    version: str | None  # template
    fields: tuple[str, ...]
    line: int
    match: str = ""  # the pattern as written (what `_pattern` compiles)


def _pattern(pattern: str, group_prefix: str = "") -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """A match pattern as regex text, its fields, and the regexes its fields were given."""
    out, seen, given, pos = [], [], [], 0
    for m in _TOKEN.finditer(pattern):
        out.append(_glob_to_re(pattern[pos : m.start()]))
        fld, rx = m.group("field"), m.group("rx")
        if fld in seen:
            out.append(f"(?P={group_prefix}{fld})")
        else:
            seen.append(fld)
            if rx:
                given.append(rx)
            out.append(f"(?P<{group_prefix}{fld}>{rx or _FIELD_DEFAULT_RE.get(fld, r'[^/]+')})")
        pos = m.end()
    out.append(_glob_to_re(pattern[pos:]))
    return "".join(out), tuple(seen), tuple(given)


def _compile(pattern: str, rule: str, line: int) -> tuple[re.Pattern[str], tuple[str, ...]]:
    if not pattern.startswith(("/", "**")):
        raise RulesError(f"rule {rule!r} (line {line}): match must start with '/' or '**': {pattern!r}")
    if "{" in "".join(_TOKEN.sub("", pattern)):
        raise RulesError(f"rule {rule!r} (line {line}): unbalanced '{{' in match {pattern!r}")
    text, fields, _ = _pattern(pattern)
    try:
        return re.compile(text), fields
    except re.error as exc:
        raise RulesError(f"rule {rule!r} (line {line}): bad regex in match {pattern!r}: {exc}") from exc


#: what, in a field's own regex, depends on group names or numbers (which one combined regex changes)
_GROUP_REFERENCE = re.compile(r"\\[1-9]|\(\?P[<=]|\(\?\(")


def _any_rule(rules: tuple[PathRule, ...]) -> re.Pattern[str] | None:
    """All path rules as one alternation, tried in order (the first that matches the whole path wins,
    as when each is tried in turn): one regex call for a new path instead of one per rule. Rule i's
    groups are named ``r{i}_{field}`` inside a group ``_r{i}``. None when a field's own regex refers
    to groups, or the rules were not loaded from patterns: then the rules are tried one by one."""
    parts = []
    for i, rule in enumerate(rules):
        if not rule.match:
            return None
        text, _, given = _pattern(rule.match, f"r{i}_")
        if any(_GROUP_REFERENCE.search(rx) for rx in given):
            return None
        parts.append(f"(?P<_r{i}>{text})")
    try:
        return re.compile("|".join(parts)) if parts else None
    except re.error:  # each compiled alone; the combination should too, but the one-by-one path is right
        return None


def _glob_to_re(text: str) -> str:
    # '/**' at the end: the rest of the path, possibly empty; '**/' at the start: any prefix.
    res, i = [], 0
    while i < len(text):
        if text.startswith("/**", i) and i + 3 == len(text):
            res.append(r"(?:/.*)?")
            i += 3
        elif text.startswith("**/", i):
            res.append(r"(?:.*/)?")
            i += 3
        elif text.startswith("**", i):
            res.append(r".*")
            i += 2
        elif text[i] == "*":
            res.append(r"[^/]*")
            i += 1
        else:
            res.append(re.escape(text[i]))
            i += 1
    return "".join(res)


def _template_fields(template: str) -> set[str]:
    return {m.group("field") for m in _TOKEN.finditer(template)}


@dataclass(frozen=True)
class JobNaming:
    interpreters: tuple[str, ...]
    skip_flags: frozenset[str]

    def job_name(self, attrs: dict[str, Any]) -> str | None:
        """The pipeline stage of an app: its ``name``, else the script its command runs."""
        for key in ("name", "job"):
            value = attrs.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()
        command = attrs.get("command")
        if isinstance(command, list):
            argv = [str(a) for a in command]
        elif isinstance(command, str) and command.strip():
            try:
                argv = shlex.split(command)
            except ValueError:
                argv = command.split()
        else:
            return None
        rest = list(argv)
        while rest:
            base = rest[0].rsplit("/", 1)[-1]
            if any(fnmatch.fnmatchcase(base, p) for p in self.interpreters) or rest[0] in self.skip_flags:
                rest = rest[1:]
                continue
            return base
        return argv[0].rsplit("/", 1)[-1] if argv else None


@dataclass(frozen=True)
class Rules:
    """Compiled rules; `classify` is cached, so a path seen again costs a dict lookup."""

    path_rules: tuple[PathRule, ...]
    ignore: tuple[re.Pattern[str], ...]
    types: frozenset[str]
    xattr_prefix: str
    propagate: frozenset[str]
    type_key: str
    jobs: JobNaming
    project_patterns: tuple[re.Pattern[str], ...] = ()
    lineage_exclude: frozenset[str] = frozenset()
    _cache: dict[str, ArtifactRef | None] = field(default_factory=dict, compare=False, repr=False, hash=False)
    _ignore_any: re.Pattern[str] | None = field(default=None, compare=False, repr=False, hash=False)
    _rule_any: re.Pattern[str] | None = field(default=None, compare=False, repr=False, hash=False)
    _rule_groups: dict[str, tuple[PathRule, tuple[str, ...]]] = field(
        default_factory=dict, compare=False, repr=False, hash=False)

    def __post_init__(self) -> None:
        # one alternation instead of a regex per pattern: this runs for every new path
        joined = "|".join(f"(?:{rx.pattern})" for rx in self.ignore)
        object.__setattr__(self, "_ignore_any", re.compile(joined) if joined else None)
        object.__setattr__(self, "_rule_any", _any_rule(self.path_rules))
        self._rule_groups.update({f"_r{i}": (rule, tuple(f"r{i}_{f}" for f in rule.fields))
                                  for i, rule in enumerate(self.path_rules)})

    def ignored(self, uri: str) -> bool:
        return self.lookup(uri) is None

    def classify(self, uri: str) -> ArtifactRef:
        """The artifact a file URI belongs to (the file itself, typed ``file``, if no rule matches)."""
        hit = self._cache.get(uri)
        return hit if hit is not None else self._classify(uri)

    def lookup(self, uri: str) -> ArtifactRef | None:
        """`classify`, or None for a path the ``ignore`` patterns exclude; cached per URI."""
        hit = self._cache.get(uri, False)
        if hit is False:
            path = uri_path(uri)
            hit = None if self._ignore_any is not None and self._ignore_any.fullmatch(path) else self._classify(uri)
            if len(self._cache) > 500_000:
                self._cache.clear()
            self._cache[uri] = hit
        return hit  # type: ignore[return-value]

    def _first_rule(self, path: str) -> tuple[PathRule, dict[str, str], int] | None:
        """The first rule that matches ``path``, its fields, and where its last field ended (the
        whole path if it has none), or None."""
        combined = self._rule_any
        if combined is None:
            for rule in self.path_rules:
                one = rule.regex.fullmatch(path)
                if one is not None:
                    fields = {k: v for k, v in one.groupdict().items() if v is not None}
                    return rule, fields, max((one.end(f) for f in fields), default=len(path))
            return None
        m = combined.fullmatch(path)
        if m is None or m.lastgroup is None:
            return None
        rule, groups = self._rule_groups[m.lastgroup]  # the rule's outer group closes last
        if not groups:
            return rule, {}, len(path)
        values = m.group(*groups) if len(groups) > 1 else (m.group(groups[0]),)
        fields = {f: v for f, v in zip(rule.fields, values, strict=True) if v is not None}
        if rule.artifact:
            return rule, fields, len(path)  # not used: the template names the artifact
        ends = [m.end(g) for f, g in zip(rule.fields, groups, strict=True) if f in fields]
        last = max(ends, default=len(path))
        return rule, fields, last

    def _classify(self, uri: str) -> ArtifactRef:
        scheme, netloc, path = split_uri(uri)
        version: str | None = None
        if scheme == "delta":  # delta:///table@N names a table version
            path, _, version = path.partition("@")
            scheme = "file"
        hit = self._first_rule(path)
        if hit is not None:
            rule, fields, last = hit
            root = _render(rule.artifact, fields, path) if rule.artifact else _prefix_to(path, last)
            v = version or (_render(rule.version, fields, path) if rule.version else None)
            props = tuple(sorted((k, fields[k]) for k in rule.fields if k not in ("project", "name", "version")))
            return ArtifactRef(
                uri=join_uri(scheme, netloc, root),
                type=rule.type,
                name=fields.get("name") or root.rsplit("/", 1)[-1],
                project=fields.get("project") or self._project(path),
                version=v,
                rule=rule.name,
                props=props,
            )
        return ArtifactRef(join_uri(scheme, netloc, path), "file", path.rsplit("/", 1)[-1] or path,
                           self._project(path), version, "file")

    def _project(self, path: str) -> str | None:
        for regex in self.project_patterns:
            m = regex.fullmatch(path)
            if m is not None:
                return m.group("project")
        return None


def _prefix_to(path: str, last: int) -> str:
    # The artifact is what the pattern matched before its trailing '/**': strip the rest.
    end = path.find("/", last)
    return path if end < 0 else path[:end]


@lru_cache(maxsize=256)
def _template(template: str) -> str:
    """A template as a `str.format` string (its literal braces doubled)."""
    parts, pos = [], 0
    for m in _TOKEN.finditer(template):
        parts += [template[pos : m.start()].replace("{", "{{").replace("}", "}}"), "{" + m.group("field") + "}"]
        pos = m.end()
    parts.append(template[pos:].replace("{", "{{").replace("}", "}}"))
    return "".join(parts)


def _render(template: str, fields: dict[str, str], path: str) -> str:
    text = _template(template).format_map(fields)
    if text.startswith("**"):
        # '**/models/{name}': keep the part of the actual path that precedes the rendered tail
        tail = text[2:]
        idx = path.find(tail)
        return path[: idx + len(tail)] if idx >= 0 else tail
    return text


def split_uri(uri: str) -> tuple[str, str, str]:
    if uri.startswith("file:///"):  # the common case, without urlsplit
        path = uri[7:]
        return "file", "", unquote(path) if "%" in path else path
    parts = urlsplit(uri)
    return parts.scheme or "file", parts.netloc, unquote(parts.path) or "/"


def uri_path(uri: str) -> str:
    return split_uri(uri)[2]


_QUOTED = re.compile(r"[^A-Za-z0-9_.\-~" + re.escape(_URI_SAFE) + "]")  # what `quote` would change


def join_uri(scheme: str, netloc: str, path: str) -> str:
    # paths here come from normalised URIs; quoting is all that can differ
    return f"{scheme}://{netloc}{quote(path, safe=_URI_SAFE) if _QUOTED.search(path) else path}"


class RuleSpec(BaseModel):
    """One path rule as written in a rules file."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1)
    match: str = Field(min_length=1, description="path pattern: {field}, {field:regex}, * and **")
    type: str = Field(min_length=1)
    artifact: str | None = Field(default=None, description="the artifact's root, templated from the fields")
    version: str | None = Field(default=None, description="the version, templated from the fields")


class TagsSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    xattr_prefix: str = "user.prov."
    propagate: list[str] = []
    type_key: str = "type"


class JobsSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    interpreters: list[str] = []
    skip_flags: list[str] = []


class LineageSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    exclude_types: list[str] = ["log", "tool_state"]


class RulesFile(BaseModel):
    """The shape of a rules file (`default_rules.yaml` is one)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    version: int = 1
    types: list[str] = []
    rules: list[RuleSpec] = []
    ignore: list[str] = []
    projects: list[str] = Field(default=[], description="patterns with {project}: the project of a path no rule "
                                "names one for")
    tags: TagsSpec | None = None
    jobs: JobsSpec | None = None
    lineage: LineageSpec | None = None


def _parse(text: str, origin: str) -> tuple[RulesFile, dict[str, Any]]:
    """The file as its model, and as read (with the lines of its keys, for messages)."""
    raw = load_mapping(text, origin, RulesError, "a rules file is a mapping with a 'rules' list")
    try:
        return RulesFile.model_validate(strip_lines(raw)), raw
    except ValidationError as exc:
        raise RulesError(_where(exc, raw, origin)) from None


def _where(exc: ValidationError, raw: dict[str, Any], origin: str) -> str:
    """The first error, worded for a person: the file, the rule and its line, what is wrong."""
    err = exc.errors()[0]
    loc = tuple(err.get("loc", ()))
    kind, msg = err.get("type"), str(err.get("msg", "invalid"))
    if loc[:1] == ("rules",) and len(loc) >= 2 and isinstance(loc[1], int):
        rule = raw.get("rules", [])[loc[1]]
        name = rule.get("name") if isinstance(rule, dict) else None
        line = rule.get("__line__", 0) if isinstance(rule, dict) else line_of(raw, loc[:1])
        where = f"{origin}: rule {name or '#' + str(loc[1] + 1)!r} (line {line})"
        field = loc[2] if len(loc) > 2 else None
        if kind == "missing":
            return f"{where}: needs {field!r} (a non-empty string)"
        if kind == "extra_forbidden":
            return f"{where}: unknown key(s) {field} (known: {', '.join(RuleSpec.model_fields)})"
        if kind == "model_type":
            return f"{where}: a rule must be a mapping"
        return f"{where}: {field!r}: {msg}" if field else f"{where}: {msg}"
    line = line_of(raw, loc)
    what = ".".join(str(p) for p in loc) or "the file"
    if kind == "extra_forbidden":
        msg = f"unknown key (known: {', '.join(RulesFile.model_fields)})"
    return f"{origin}{f', line {line}' if line else ''}: {what}: {msg}"


def load_rules(
    replace: Path | None = None, extra: tuple[Path, ...] | list[Path] = (), *, text: str | None = None,
) -> Rules:
    """Rules from the defaults (or ``replace``), with the rules of ``extra`` files taking precedence."""
    if text is not None:
        origin, (base, base_raw) = "<rules>", _parse(text, "<rules>")
    elif replace is not None:
        origin, (base, base_raw) = str(replace), _parse(_read(replace), str(replace))
    else:
        origin, (base, base_raw) = "default_rules.yaml", _parse(_read(DEFAULT_RULES_PATH), "default_rules.yaml")
    layers = [(str(p), *_parse(_read(p), str(p))) for p in extra]
    types = set(base.types)
    for _, layer, _ in layers:
        types.update(layer.types)
    compiled: list[PathRule] = []
    names: set[str] = set()
    for where, layer, raw in [*layers, (origin, base, base_raw)]:
        for i, r in enumerate(layer.rules):
            line = int(raw["rules"][i].get("__line__", 0))
            at = f"{where}: rule {r.name!r} (line {line})"
            if r.name in names:
                raise RulesError(f"{at}: a rule with this name is already defined")
            names.add(r.name)
            if types and r.type not in types:
                raise RulesError(f"{at}: unknown type {r.type!r} (add it to 'types': {sorted(types)})")
            try:
                regex, fields = _compile(r.match, r.name, line)
            except RulesError as exc:
                raise RulesError(f"{where}: {exc}") from exc
            version = r.version if r.version is not None or "version" not in fields else "{version}"
            for label, tpl in (("artifact", r.artifact), ("version", version)):
                missing = _template_fields(tpl) - set(fields) if tpl is not None else set()
                if missing:
                    raise RulesError(f"{at}: {label!r} uses {sorted(missing)}, which 'match' does not capture")
            compiled.append(PathRule(r.name, r.type, regex, r.artifact, version, fields, line, r.match))
    ignore = [_compile(pattern, f"ignore {pattern}", 0)[0] for layer in [base, *(x[1] for x in layers)]
              for pattern in layer.ignore]
    projects = []
    for layer in [*(x[1] for x in layers), base]:
        for pattern in layer.projects:
            regex, fields = _compile(pattern, f"projects {pattern}", 0)
            if "project" not in fields:
                raise RulesError(f"projects pattern {pattern!r} must capture {{project}}")
            projects.append(regex)
    lineage = base.lineage or LineageSpec()
    for _, layer, _ in layers:
        lineage = layer.lineage or lineage
    tags, jobs = base.tags or TagsSpec(), base.jobs or JobsSpec()
    for _, layer, _ in layers:  # a later file's settings replace the earlier ones, key by key
        tags = tags.model_copy(update=layer.tags.model_dump(exclude_unset=True)) if layer.tags else tags
        jobs = jobs.model_copy(update=layer.jobs.model_dump(exclude_unset=True)) if layer.jobs else jobs
    return Rules(
        path_rules=tuple(compiled),
        ignore=tuple(ignore),
        types=frozenset(types),
        xattr_prefix=tags.xattr_prefix,
        propagate=frozenset(tags.propagate),
        type_key=tags.type_key,
        jobs=JobNaming(tuple(jobs.interpreters), frozenset(jobs.skip_flags)),
        project_patterns=tuple(projects),
        lineage_exclude=frozenset(lineage.exclude_types),
    )


def _read(path: Path) -> str:
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise RulesError(f"cannot read rules file {path}: {exc}") from exc


@lru_cache(maxsize=1)
def default_rules() -> Rules:
    return load_rules()
