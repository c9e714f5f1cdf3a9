"""YAML files whose errors can name a line: the config file and the inference rules use this.

Every mapping read gets two extra keys: ``__line__`` (the line it starts on) and ``__lines__``
(each key's line). `strip_lines` removes them once the lines are no longer needed.
"""

from __future__ import annotations

from typing import Any

import yaml

from provenance.errors import ConfigError


class _LineLoader(yaml.SafeLoader):
    pass


def _mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[str, Any]:
    data: dict[str, Any] = {str(k): v for k, v in loader.construct_mapping(node, deep=True).items()}
    data["__line__"] = node.start_mark.line + 1
    data["__lines__"] = {k.value: k.start_mark.line + 1 for k, _ in node.value if isinstance(k, yaml.ScalarNode)}
    return data


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load_mapping(text: str, origin: str, error: type[ConfigError], what: str) -> dict[str, Any]:
    """The YAML mapping in ``text``; anything else raises ``error`` naming ``origin`` and the line."""
    try:
        data = yaml.load(text, Loader=_LineLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        raise error(f"{origin}{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise error(f"{origin}, line 1: {what}")
    return data


def strip_lines(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: strip_lines(v) for k, v in data.items() if k not in ("__line__", "__lines__")}
    if isinstance(data, list):
        return [strip_lines(v) for v in data]
    return data


def line_of(data: Any, loc: tuple[Any, ...]) -> int | None:
    """The line of the key at ``loc`` (a path of keys and list indexes), as far as it can be followed."""
    line = None
    for part in loc:
        if isinstance(data, dict):
            line = data.get("__lines__", {}).get(part, line)
            data = data.get(part)
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
            if isinstance(data, dict):
                line = data.get("__line__", line)
        else:
            break
    return line
