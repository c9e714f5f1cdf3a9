"""The reproducibility check: what differs between two runs, or between a run and what was captured since.

Everything is read from the graph, as captured: the artifact versions a run read, its code (git commit
and dirty flag recorded by the launcher, the code files it read, its command line) and its environment
(Python and the installed packages). The server never looks at a working tree or runs a tool to answer.
"""

from __future__ import annotations

from collections.abc import Callable

from provenance.graph.answers import (
    AppInfo,
    CodeDiff,
    Comparison,
    EnvironmentDiff,
    FootprintItem,
    GitDiff,
    InputChange,
    InputVersions,
    PackageChange,
    PackagesDiff,
    ReadsDiff,
    Sameness,
)
from provenance.graph.model import NEVER
from provenance.graph.queries import INPUT, Limits, LineageQueries, _iso_or_none

_EVERYTHING = Limits(limit=1_000_000)


def _reads(items: list[FootprintItem], code: bool) -> dict[str, tuple[set[str], str | None]]:
    """uri → (versions read, project) of the inputs (``code``: of the code files) of a footprint."""
    out: dict[str, tuple[set[str], str | None]] = {}
    for item in items:
        if INPUT in item.types and (item.type == "code") == code:
            out.setdefault(item.uri, (set(), item.project))[0].add(item.version)
    return out


def _diff(x: dict[str, tuple[set[str], str | None]], y: dict[str, tuple[set[str], str | None]]) -> ReadsDiff:
    both = sorted(x.keys() & y.keys())
    return ReadsDiff(
        same=[InputVersions(uri=u, versions=sorted(x[u][0]), project=x[u][1]) for u in both if x[u][0] == y[u][0]],
        changed=[InputChange(uri=u, a=sorted(x[u][0]), b=sorted(y[u][0]), project=x[u][1])
                 for u in both if x[u][0] != y[u][0]],
        only_a=[InputVersions(uri=u, versions=sorted(x[u][0]), project=x[u][1]) for u in sorted(x.keys() - y.keys())],
        only_b=[InputVersions(uri=u, versions=sorted(y[u][0]), project=y[u][1]) for u in sorted(y.keys() - x.keys())],
    )


def _packages(app: AppInfo) -> dict[str, str]:
    packages = app.props.get("packages") or []
    return dict(str(p).split("==", 1) for p in packages if "==" in str(p)) if isinstance(packages, list) else {}


def compare_runs(q: LineageQueries, a: str, b: str, as_of: int = NEVER) -> Comparison:
    """What differs between two runs: the artifact versions they read, their code (git commit, code
    files read, command line) and their environment (Python and installed packages). Identical in
    all three means the second run can be expected to reproduce the first."""
    fa, fb = q.footprint(a, as_of, _EVERYTHING), q.footprint(b, as_of, _EVERYTHING)
    return _compare(fa.app, fb.app, _diff(_reads(fa.artifacts, False), _reads(fb.artifacts, False)),
                    _diff(_reads(fa.artifacts, True), _reads(fb.artifacts, True)), as_of)


def compare_with_latest(q: LineageQueries, a: str, as_of: int = NEVER,
                        sees: Callable[[str | None], bool] = lambda project: True) -> Comparison:
    """A run against what was captured since: each of its inputs and code files at its latest version,
    and the code and environment of the newest run of the same job that ``sees`` lets through (the run
    itself if it is the newest). Side ``b`` of the answer is that newest run."""
    fa = q.footprint(a, as_of, _EVERYTHING)
    newest = fa.app
    if fa.app.job:
        runs = [r for r in q.describe_apps(q.job_apps(fa.app.job, as_of), as_of).values() if sees(r.project)]
        newest = max([fa.app, *runs], key=lambda r: (r.started_ts or 0, r.app_id))

    def latest(code: bool) -> dict[str, tuple[set[str], str | None]]:
        reads = _reads(fa.artifacts, code)
        versions = q.store.versions(sorted(reads), as_of)
        return {u: ({versions[u][-1].label} if versions.get(u) else vs, project)
                for u, (vs, project) in reads.items()}

    return _compare(fa.app, newest, _diff(_reads(fa.artifacts, False), latest(False)),
                    _diff(_reads(fa.artifacts, True), latest(True)), as_of, since=True)


def _compare(app_a: AppInfo, app_b: AppInfo, inputs: ReadsDiff, code_files: ReadsDiff, as_of: int,
             since: bool = False) -> Comparison:
    packages_a, packages_b = _packages(app_a), _packages(app_b)
    packages = PackagesDiff(
        added=[f"{n}=={packages_b[n]}" for n in sorted(packages_b.keys() - packages_a.keys())],
        removed=[f"{n}=={packages_a[n]}" for n in sorted(packages_a.keys() - packages_b.keys())],
        changed=[PackageChange(name=n, a=packages_a[n], b=packages_b[n])
                 for n in sorted(packages_a.keys() & packages_b.keys()) if packages_a[n] != packages_b[n]],
    )
    same_inputs = not inputs.differ
    same_code = (app_a.git_commit == app_b.git_commit and not app_a.git_dirty and not app_b.git_dirty
                 and not code_files.differ and app_a.command == app_b.command)
    same_env = app_a.env_hash is not None and app_a.env_hash == app_b.env_hash
    warnings = []
    if not same_inputs and since:
        warnings.append(f"{len(inputs.changed)} input(s) have newer versions than the run read")
    elif not same_inputs:
        warnings.append(f"inputs differ: {len(inputs.changed)} read at another version, "
                        f"{len(inputs.only_a)} only in {app_a.app_id}, {len(inputs.only_b)} only in {app_b.app_id}")
    if app_a.git_commit != app_b.git_commit:
        warnings.append(f"code differs: git commit {app_a.git_commit or 'unknown'} vs {app_b.git_commit or 'unknown'}")
    for app in [app_a] if app_a.app_id == app_b.app_id else [app_a, app_b]:
        if app.git_dirty:
            warnings.append(f"{app.app_id} ran from a working tree with uncommitted changes: its code "
                            "cannot be recovered from git")
    if code_files.differ:
        warnings.append(f"the code files read differ: {len(code_files.changed)} at another version, "
                        f"{len(code_files.only_a) + len(code_files.only_b)} read by one run only")
    if app_a.command != app_b.command:
        warnings.append("the command lines differ")
    if not same_env and app_a.env_hash is None and app_b.env_hash is None and not packages_a and not packages_b:
        warnings.append("the environment was not recorded (no fingerprint, no package list): it cannot be compared")
    elif not same_env:
        detail = (f"{len(packages.added)} packages added, {len(packages.removed)} removed, "
                  f"{len(packages.changed)} changed" if packages_a and packages_b else
                  "neither run recorded its packages" if not packages_a and not packages_b else
                  f"only {app_a.app_id if packages_a else app_b.app_id} recorded its packages")
        warnings.append(f"environments differ: {app_a.env_hash or 'not recorded'} vs "
                        f"{app_b.env_hash or 'not recorded'} ({detail})")
    return Comparison(
        query="repro" if since else "compare",
        as_of=_iso_or_none(as_of),
        a=app_a,
        b=app_b,
        inputs=inputs,
        code=CodeDiff(git=GitDiff(a=app_a.git_commit, b=app_b.git_commit, a_dirty=app_a.git_dirty,
                                  b_dirty=app_b.git_dirty),
                      command={"a": app_a.command, "b": app_b.command}, files=code_files, same=same_code),
        environment=EnvironmentDiff(a=app_a.env_hash, b=app_b.env_hash,
                                    python={"a": app_a.python, "b": app_b.python}, packages=packages,
                                    same=same_env),
        same=Sameness(inputs=same_inputs, code=same_code, environment=same_env),
        reproducible=same_inputs and same_code and same_env,
        warnings=warnings,
    )
