"""Human renderings of query results: Markdown audit and GDPR reports."""

from __future__ import annotations

from typing import Any

from provenance.events.model import ms_to_iso


def _t(ms: Any) -> str:
    return ms_to_iso(ms) or "—" if isinstance(ms, int) else "—"


def _cmd(command: Any) -> str:
    text = " ".join(map(str, command)) if isinstance(command, list) else str(command or "")
    return text if len(text) <= 120 else text[:117] + "…"


def _v(item: dict[str, Any]) -> str:
    return f"`{item['uri']}` @ {item['version']}"


def audit_markdown(r: dict[str, Any]) -> str:
    t = r["target"]
    lines = [
        f"# Audit: {t.get('name') or t['uri']} (version {t['version']})",
        "",
        f"- **Artifact**: `{t['uri']}` — type `{t['type']}`, version {t['version']}, created {_t(t['created_ts'])}"
        + (f" by app `{t['created_by']}`" if t.get("created_by") else ""),
        f"- **As of**: {r['as_of'] or 'now'}",
        f"- **Users involved**: {', '.join(r['users']) or '—'}",
        f"- **Code versions (git)**: {', '.join(r['code_versions']) or '—'}",
        f"- **Environments**: {', '.join(r['environments']) or '—'}",
    ]
    if t.get("tags"):
        lines.append(f"- **Tags**: {', '.join(f'{k}={v}' for k, v in sorted(t['tags'].items()))}")
    if t.get("inherited_tags"):
        inh = "; ".join(f"{k} (from {', '.join(v)})" for k, v in sorted(t["inherited_tags"].items()))
        lines.append(f"- **Inherited from upstream data**: {inh}")
    if r.get("partial"):
        lines.append(f"- **Partial result**: {r.get('reason')}")
    lines += ["", "## How it was made (upstream, nearest first)", "",
              "| depth | artifact | version | type | created | by app | tags |", "|---|---|---|---|---|---|---|"]
    for a in r["artifacts"]:
        tags = ", ".join(f"{k}={v}" for k, v in sorted(a["tags"].items()))
        lines.append(f"| {a['depth']} | `{a['uri']}` | {a['version']} | {a['type']} | {_t(a['created_ts'])} "
                     f"| {a.get('created_by') or '—'} | {tags} |")
    lines += ["", "## Applications", "",
              "| depth | app | job | users | state | started | ended | git | env | command |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for a in r["apps"]:
        lines.append(f"| {a['depth']} | `{a['app_id']}` | {a['job'] or '—'} | {', '.join(a['users']) or '—'} "
                     f"| {a['state']} | {_t(a['started_ts'])} | {_t(a['ended_ts'])} | {a['git_commit'] or '—'} "
                     f"| {a['env_hash'] or '—'} | `{_cmd(a['command'])}` |")
    lines += ["", "## Used afterwards by (evaluations, bias tests, deployments)", ""]
    if not r["consumers"]:
        lines.append("Nothing has read this version yet.")
    for c in r["consumers"]:
        outs = ", ".join(f"{o['type']} {_v(o)}" for o in c["outputs"]) or "no outputs"
        lines.append(f"- `{c['app_id']}` ({c['job'] or 'unknown job'}, {', '.join(c['users']) or 'unknown user'}, "
                     f"{c['state']}) → {outs}")
    totals = r["totals"]
    lines += ["", f"_{totals['artifacts']} upstream artifact versions, {totals['apps']} applications._", ""]
    return "\n".join(lines)


def gdpr_markdown(r: dict[str, Any]) -> str:
    lines = ["# GDPR report", "", f"- **As of**: {r['as_of'] or 'now'}", "- **Data**:"]
    for d in r["data"]:
        tags = ", ".join(f"{k}={v}" for k, v in sorted(d["tags"].items()))
        lines.append(f"  - {_v(d)} ({d['type']}{'; ' + tags if tags else ''})")
    lines += [f"- **Users involved**: {', '.join(r['users']) or '—'}"]
    if r.get("partial"):
        lines.append(f"- **Partial result**: {r.get('reason')}")
    lines += ["", "## Models and deployments that used it", ""]
    if not r["models"]:
        lines.append("None.")
    for m in r["models"]:
        path = " → ".join(
            (f"{s['job'] or s['app_id']}" if s["kind"] == "app" else f"{s['uri']}@{s['version']}")
            for s in m["evidence"]
        )
        lines.append(f"- **{m['type']}** {_v(m)}{' (deployed)' if m['deployed'] else ''}  \n  evidence: {path}")
    lines += ["", "## Derived artifacts to erase or rebuild", "", "| artifact | version | type | deleted |",
              "|---|---|---|---|"]
    for d in r["derived"]:
        lines.append(f"| `{d['uri']}` | {d['version']} | {d['type']} | {'yes' if d['deleted'] else 'no'} |")
    lines.append("")
    return "\n".join(lines)


def _tags(item: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(item["tags"].items()))


def footprint_markdown(r: dict[str, Any]) -> str:
    a = r["app"]
    lines = [f"# Footprint: {a['app_id']} ({a['job'] or 'unknown job'})", "",
             f"- **Run by**: {', '.join(a['users']) or '—'}; **state**: {a['state']}"
             + (f" (exit {a['exit_code']})" if a.get("exit_code") is not None else ""),
             f"- **Started**: {_t(a['started_ts'])}; **ended**: {_t(a['ended_ts'])}",
             f"- **Command**: `{_cmd(a['command'])}`",
             f"- **Capture**: {a['props'].get('capture', '—')}, {a['props'].get('captured_processes', '—')} "
             f"process(es)" + (f"; gaps: {len(a['props']['capture_gaps'])}" if a["props"].get("capture_gaps") else ""),
             "", "| types | artifact | version | type | tags |", "|---|---|---|---|---|"]
    for i in r["artifacts"]:
        lines.append(f"| {', '.join(i['types'])} | `{i['uri']}` | {i['version']} | {i['type']} | {_tags(i)} |")
    lines += ["", f"_{r['totals']['artifacts']} artifact versions, {r['totals']['files']} files._", ""]
    return "\n".join(lines)


def impact_markdown(r: dict[str, Any], start: str) -> str:
    lines = [f"# Impact of {start}", "", "## Applications that used it, directly or downstream", "",
             "| depth | app | job | users | state |", "|---|---|---|---|---|"]
    for a in r["apps"]:
        lines.append(f"| {a['depth']} | `{a['app_id']}` | {a['job'] or '—'} | {', '.join(a['users']) or '—'} "
                     f"| {a['state']} |")
    lines += ["", "## What they read and wrote", "", "| types | artifact | version | type | tags |",
              "|---|---|---|---|---|"]
    for i in r["artifacts"]:
        lines.append(f"| {', '.join(i['types'])} | `{i['uri']}` | {i['version']} | {i['type']} | {_tags(i)} |")
    if r.get("partial"):
        lines.append(f"\n_Partial result: {r.get('reason')}_")
    lines.append("")
    return "\n".join(lines)


def compare_markdown(r: dict[str, Any]) -> str:
    a, b = r["a"], r["b"]
    verdict = "**reproducible**: same inputs, code and environment" if r["reproducible"] else (
        "**not a reproduction**: " + "; ".join(k for k, same in r["same"].items() if not same) + " differ")
    lines = [f"# Reproducibility: {a['app_id']} vs {b['app_id']}", "", f"- {verdict}",
             f"- **Jobs**: {a['job'] or '—'} / {b['job'] or '—'}; started {_t(a['started_ts'])} / "
             f"{_t(b['started_ts'])}", ""]
    lines += ["## Inputs", ""]
    ins = r["inputs"]
    for s in ins["same"]:
        lines.append(f"- same: `{s['uri']}` @ {', '.join(s['versions'])}")
    for c in ins["changed"]:
        lines.append(f"- **changed**: `{c['uri']}` @ {', '.join(c['a'])} → {', '.join(c['b'])}")
    for s in ins["only_a"]:
        lines.append(f"- only in {a['app_id']}: `{s['uri']}` @ {', '.join(s['versions'])}")
    for s in ins["only_b"]:
        lines.append(f"- only in {b['app_id']}: `{s['uri']}` @ {', '.join(s['versions'])}")
    code = r["code"]
    lines += ["", "## Code", "",
              f"- git commit: {code['git']['a'] or '—'}{' (dirty)' if code['git']['a_dirty'] else ''} → "
              f"{code['git']['b'] or '—'}{' (dirty)' if code['git']['b_dirty'] else ''}",
              f"- code files read: {len(code['files']['same'])} same, {len(code['files']['changed'])} changed, "
              f"{len(code['files']['only_a']) + len(code['files']['only_b'])} in one run only",
              f"- command: {'same' if code['command']['a'] == code['command']['b'] else 'differs'}"]
    env = r["environment"]
    pk = env["packages"]
    lines += ["", "## Environment", "",
              f"- fingerprint: {env['a'] or '—'} → {env['b'] or '—'} ({'same' if env['same'] else 'differs'})",
              f"- Python: {env['python']['a'] or '—'} → {env['python']['b'] or '—'}",
              f"- packages: {len(pk['added'])} added, {len(pk['removed'])} removed, {len(pk['changed'])} changed"]
    lines += [f"  - {c['name']}: {c['a']} → {c['b']}" for c in pk["changed"]]
    if r["warnings"]:
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in r["warnings"]]
    lines.append("")
    return "\n".join(lines)
