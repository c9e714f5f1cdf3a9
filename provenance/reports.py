"""Human renderings of query results: Markdown audit and GDPR reports."""

from __future__ import annotations

from typing import Any

from provenance.events.model import ms_to_iso


def _t(ms: Any) -> str:
    return ms_to_iso(ms) or "—" if isinstance(ms, int) else "—"


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
                     f"| {a['env_hash'] or '—'} | `{a['command'] or ''}` |")
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
