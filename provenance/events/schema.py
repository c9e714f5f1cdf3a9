"""``python -m provenance.events.schema [PATH]`` writes the canonical event's JSON Schema."""

from __future__ import annotations

import sys
from pathlib import Path

from provenance.events.serde import write_json_schema

if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/event.schema.json")
    write_json_schema(target)
    print(f"wrote {target}")
