"""Who sees what: the one visibility rule, applied at one place.

A user is an admin (sees everything) or a member of projects. An artifact's project comes from its
naming rule, else from the project of the run that created it; a run's from ``--project``, else from
its working directory (`provenance.graph.queries.LineageQueries.artifact_projects` and ``app_project``).
Things of no project are visible to every signed-in user.

Everything a caller may not see is either absent (asked for by name: 404, the same answer as for a
thing that does not exist) or, inside an answer, replaced by a placeholder (`redact`): every `Visible`
of a hidden project becomes its ``hidden_copy``, which keeps the shape of the lineage (depth, kind,
relation, tier) and nothing that names it, not even a derivable id; every other string equal to a
name of a hidden thing becomes ``"redacted"``; summaries are recomputed from what is left; and the
answer says how many things were hidden (``redacted``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel

from provenance.graph.answers import REDACTED, Answer, Visible

A = TypeVar("A", bound=BaseModel)


@dataclass(frozen=True)
class Principal:
    user: str
    admin: bool = False
    projects: frozenset[str] = field(default_factory=frozenset)

    def sees(self, project: str | None) -> bool:
        return self.admin or not project or project in self.projects

    @property
    def visible_projects(self) -> frozenset[str] | None:
        return None if self.admin else self.projects


ANONYMOUS_ADMIN = Principal("local", admin=True)  # --no-auth, and the command line: one user, everything
LOCAL_ADMIN = ANONYMOUS_ADMIN


def redact(answer: A, who: Principal) -> A:
    """``answer`` as ``who`` may see it (the same object when nothing is hidden)."""
    if who.admin:
        return answer
    hidden = answer.hide(who.sees) if isinstance(answer, Answer) else 0
    secrets: set[str] = set()

    def walk(x: Any) -> Any:
        nonlocal hidden
        if isinstance(x, Visible) and not who.sees(x.project):
            hidden += 1
            secrets.update(x.secrets())
            return x.hidden_copy()
        if isinstance(x, BaseModel):
            updates = {}
            for name in type(x).model_fields:
                value = getattr(x, name)
                new = walk(value)
                if new is not value:
                    updates[name] = new
            return x.model_copy(update=updates) if updates else x
        if isinstance(x, list):
            items = [walk(v) for v in x]
            return items if any(a is not b for a, b in zip(items, x, strict=True)) else x
        if isinstance(x, dict):
            values = {k: walk(v) for k, v in x.items()}
            return values if any(values[k] is not x[k] for k in x) else x
        return x

    out = walk(answer)
    if hidden:
        out = _scrub(out, secrets)
        if isinstance(out, Answer):
            out.after_redaction()
    if isinstance(out, Answer):
        out.redacted = hidden
    return out  # type: ignore[no-any-return]


def _scrub(x: Any, secrets: set[str]) -> Any:
    """Every string naming a hidden thing, wherever else it stands (a name in free text, a dict key)."""
    if isinstance(x, str):
        return REDACTED if x in secrets else x
    if isinstance(x, BaseModel):
        updates = {name: _scrub(getattr(x, name), secrets) for name in type(x).model_fields}
        return x.model_copy(update=updates)
    if isinstance(x, list):
        return [_scrub(v, secrets) for v in x]
    if isinstance(x, dict):
        return {(REDACTED if isinstance(k, str) and k in secrets else k): _scrub(v, secrets) for k, v in x.items()}
    return x
