"""Walking lineage: from versions through what read and wrote them, one pipeline stage at a time.

A *hub* is what data passed through between an input and an output: a flow of a run (one process, one
move, what a source declared), or the run itself when nothing finer was captured. Walking down from a
version visits the hubs that read it, then what each hub wrote *after* it read it (an output whose last
write ended before the input's first read does not hold it: captures give a read's start at the earliest and
a write's end at the latest, so this holds whatever the delay of the capture), and the hubs a process fed
through a pipe.
Walking up is the same in reverse: the hubs that wrote a version, then what each read before that write
ended. Where a run has flows for a version, its flows are walked, not the run: they say which of its
inputs reached which output.

Every node reached says how it is known (`Walk.certain`, `Walk.tier`): *certain* when some path to it
passes only exact hubs (a process: `process`; a move: `process`; a source's statement: `declared`),
*possible* when every path passes a run (`run`: a run that read several inputs and wrote several
outputs, each output taken to hold every input read before it was written: an over-approximation).
Depth counts hubs (pipeline stages); the walk stops at the depth limit, the time budget or the node
cap and says so (``partial``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field

from provenance.graph.answers import Tier
from provenance.graph.model import FEEDS, INHERITS, MAY_FEED, READ, WRITE_RELS, Edge, app_node, split_flow_node
from provenance.graph.port import LineageStore

#: how an edge through a hub is known, by the hub's flow kind (the part of its key before ':')
FLOW_TIERS: dict[str, Tier] = {"p": "process", "mv": "process", "d": "declared"}
CERTAIN_TIERS = frozenset({"process", "declared", "content"})
_TIER_RANK = {"declared": 0, "process": 1, "content": 2, "run": 3}


def is_hub(node: str) -> bool:
    return node.startswith(("app:", "flow:"))


def app_of(hub: str) -> str:
    """The app node a hub belongs to (an app is its own)."""
    return app_node(split_flow_node(hub)[0]) if hub.startswith("flow:") else hub


def hub_tier(hub: str) -> Tier:
    if hub.startswith("flow:"):
        return FLOW_TIERS.get(split_flow_node(hub)[1].split(":", 1)[0], "run")
    return "run"


def weakest(a: Tier, b: Tier) -> Tier:
    return a if _TIER_RANK.get(a, 3) >= _TIER_RANK.get(b, 3) else b


@dataclass
class Walk:
    """What a walk reached: for each node its depth, whether a certain path reaches it, the weakest tier on
    its best path, and the step that first reached it on that path (an evidence path)."""

    starts: list[str]
    depth: dict[str, int] = field(default_factory=dict)
    certain: set[str] = field(default_factory=set)
    tier: dict[str, Tier] = field(default_factory=dict)
    parent: dict[tuple[str, bool], tuple[str, str]] = field(default_factory=dict)  # (node, certain) → (prev, rel)
    excluded: set[str] = field(default_factory=set)  # reached, not walked on (logs, tool state)
    partial: bool = False
    reason: str | None = None

    def path_to(self, node: str) -> list[tuple[str, str | None]]:
        """(node, rel that led to it) from a start to ``node``, along a certain path when there is one."""
        certain = node in self.certain
        out: list[tuple[str, str | None]] = []
        cur: str | None = node
        seen = set()
        while cur is not None and cur not in seen:
            seen.add(cur)
            prev = self.parent.get((cur, certain))
            out.append((cur, prev[1] if prev else None))
            cur = prev[0] if prev else None
        return out[::-1]

    def hubs(self) -> list[str]:
        return [n for n in self.depth if is_hub(n)]

    def versions(self) -> list[str]:
        return [n for n in self.depth if n.startswith("version:")]

    def apps(self) -> list[str]:
        """The app nodes of every hub reached (a flow's app stands for it)."""
        return sorted({app_of(h) for h in self.hubs()})


def _prefer_flows(edges: Iterable[Edge], hub_end: Callable[[Edge], str],
                  version_end: Callable[[Edge], str]) -> list[Edge]:
    """Of the edges between one version and one run: where the run's processes (or a move) touched the version,
    those and not the run's own (the capture saw which process did what); else the run's own, beside any
    declared flow (a source that states one link of a run says nothing of what else the run read)."""
    by_pair: dict[tuple[str, str], list[Edge]] = {}
    for e in edges:
        by_pair.setdefault((version_end(e), app_of(hub_end(e))), []).append(e)
    out = []
    for group in by_pair.values():
        exact = [e for e in group if hub_tier(hub_end(e)) == "process"]
        out.extend(exact or group)
    return out


def walk(store: LineageStore, starts: Iterable[str], direction: str, as_of: int, *, depth: int,
         time_budget_s: float, max_nodes: int,
         excluded: Callable[[Collection[str]], set[str]] | None = None) -> Walk:
    """Walk ``direction`` ("down": what was made from the starts; "up": what they were made from).
    ``excluded(version ids)`` names the versions reached but not walked on (a run's logs, tool state)."""
    deadline = time.monotonic() + time_budget_s
    w = Walk(sorted(set(starts)))
    down = direction == "down"
    # a state is (node, certain): a node may be reached by a possible path first and by a certain one later
    seen: set[tuple[str, bool]] = set()
    bound: dict[tuple[str, bool], int] = {}  # hub state → earliest read (down) / latest write end (up)

    def tier_of(node: str, certain: bool) -> Tier:
        return w.tier.get(node, "declared") if certain else "run"

    def reach(node: str, certain: bool, d: int, tier: Tier, via: tuple[str, str] | None) -> bool:
        state = (node, certain)
        if state in seen:
            return False
        seen.add(state)
        if node not in w.depth or d < w.depth[node]:
            w.depth[node] = d
        if certain and node not in w.certain:
            w.certain.add(node)
            w.tier[node] = tier
        elif not certain and node not in w.certain:
            w.tier[node] = "run"
        if via is not None:
            w.parent[state] = via
        return True

    versions: list[tuple[str, bool]] = []
    hubs: list[tuple[str, bool]] = []
    for s in w.starts:
        reach(s, True, 0, "declared" if not is_hub(s) else hub_tier(s), None)
        if is_hub(s):
            hubs.append((s, True))
            bound[(s, True)] = -(2**62) if down else 2**62  # a run walked from: all it wrote, all it read
        else:
            versions.append((s, True))
    level = 0
    while versions or hubs:
        if time.monotonic() > deadline:
            w.partial, w.reason = True, f"time budget of {time_budget_s}s spent"
            return w
        if versions:
            states = _states(versions)
            rels = [READ] if down else list(WRITE_RELS)
            edges = store.edges_to(sorted(states), rels, as_of)
            if level >= depth:
                if edges:
                    w.partial, w.reason = True, f"depth limit {depth} reached"
                return w
            level += 1
            next_hubs: dict[tuple[str, bool], None] = {}
            for e in sorted(_prefer_flows(edges, lambda e: e.src, lambda e: e.dst),
                            key=lambda e: (e.first_ts, e.src, e.rel, e.dst)):
                hub, v = e.src, e.dst
                for c in states[v]:
                    hc = c and hub_tier(hub) in CERTAIN_TIERS
                    t = e.first_ts if down else e.last_ts  # when the hub read it / when it finished writing it
                    old = bound.get((hub, hc))
                    if old is None or (t < old if down else t > old):
                        bound[(hub, hc)] = t
                        next_hubs[(hub, hc)] = None
                    reach(hub, hc, level, weakest(tier_of(v, c), hub_tier(hub)), (v, e.rel))
            hubs = list(next_hubs)
            versions = []
        if hubs:
            def fed(node: str, c: bool, via: tuple[str, str], d: int = level) -> bool:
                return reach(node, c, d, tier_of(via[0], c), via)

            hubs = _feed(store, hubs, bound, down, as_of, fed)
            states = _states(hubs)
            rels = list(WRITE_RELS) if down else [READ]
            edges = store.edges_from(sorted(states), rels, as_of)
            found: dict[tuple[str, bool], None] = {}
            for e in sorted(edges, key=lambda e: (e.first_ts, e.src, e.rel, e.dst)):
                for c in states.get(e.src, ()):
                    limit = bound[(e.src, c)]
                    if e.last_ts < limit if down else e.first_ts > limit:
                        continue  # written before the input was read / read after the output was written
                    if reach(e.dst, c, level, tier_of(e.src, c), (e.src, e.rel)):
                        found[(e.dst, c)] = None
            skip = excluded({v for v, _ in found}) if excluded is not None and found else set()
            w.excluded |= skip
            versions = [(v, c) for v, c in found if v not in skip]
            hubs = []
        if len(w.depth) > max_nodes:
            w.partial, w.reason = True, f"node cap {max_nodes} reached"
            return w
    return w


def _states(pairs: Iterable[tuple[str, bool]]) -> dict[str, set[bool]]:
    out: dict[str, set[bool]] = {}
    for node, c in pairs:
        out.setdefault(node, set()).add(c)
    return out


PASSES = [FEEDS, INHERITS, MAY_FEED]


def _feed(store: LineageStore, hubs: list[tuple[str, bool]], bound: dict[tuple[str, bool], int], down: bool,
          as_of: int, reach: Callable[[str, bool, tuple[str, str]], bool]) -> list[tuple[str, bool]]:
    """The hubs and every process they passed data to (down) or took it from (up), transitively: through a pipe
    (`FEEDS`: exactly), or to a process they started (`INHERITS`: possibly, in memory or arguments), or to the
    parent that may have read a pipe of theirs nobody else read (`MAY_FEED`); a path through the last two is a
    possible one. Data goes only forwards in time: not to a process that ended, or was
    started, before the data was read."""
    out = list(hubs)
    frontier = [h for h in hubs if h[0].startswith("flow:")]
    while frontier:
        states = _states(frontier)
        ids = sorted(states)
        edges = (store.edges_from(ids, PASSES, as_of) if down else store.edges_to(ids, PASSES, as_of))
        frontier = []
        for e in edges:
            src, dst = (e.src, e.dst) if down else (e.dst, e.src)
            for c in states.get(src, ()):
                t = bound[(src, c)]
                if e.rel != FEEDS:  # (a pipe: what went in came out, whenever it was read)
                    if down and t > e.last_ts:
                        continue  # read after it started the other / after the parent ended
                    if not down:
                        t = min(t, e.last_ts)  # what the parent read before it started this one
                nc = c and e.rel == FEEDS
                old = bound.get((dst, nc))
                if old is None or (t < old if down else t > old):
                    bound[(dst, nc)] = t
                    reach(dst, nc, (src, e.rel))
                    frontier.append((dst, nc))
                    out.append((dst, nc))
    return out
