"""Settings: the only reader of the environment and of configuration files.

Precedence: explicit arguments (the CLI's flags) > environment (``PROVENANCE_*``, nested with
``__``, e.g. ``PROVENANCE_STORE__TYPE``) > the YAML config file (``--config``, ``PROVENANCE_CONFIG``
or ``$PROVENANCE_HOME/config.yaml``) > defaults. A bad file fails at start naming its line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from provenance.errors import ConfigError
from provenance.yamlfile import line_of, load_mapping, strip_lines

#: secrets that are no secret: refused when ``environment: production``
PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "password", "secret", "neo4j", "postgres", "admin"})


class BusConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    type: str = Field(default="embedded", description="embedded (SQLite log) or kafka")
    path: Path | None = Field(default=None, description="embedded log file (default: HOME/log.db)")
    bootstrap_servers: str = Field(default="localhost:9092", description="kafka: the brokers")
    partitions: int = Field(default=6, ge=1, le=10_000, description="kafka: partitions of the topics it creates")
    replication_factor: int = Field(default=1, ge=1, le=16, description="kafka: of the topics it creates")
    session_timeout_ms: int = Field(default=10_000, ge=1000, le=600_000,
                                    description="kafka: a processor silent this long loses its partitions")
    options: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="kafka: more librdkafka settings (security.protocol, sasl.*, …)")


class StoreConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    type: str = Field(default="embedded", description="embedded (SQLite) or neo4j")
    path: Path | None = Field(default=None, description="embedded store file (default: HOME/graph.db)")
    uri: str = Field(default="bolt://localhost:7687", description="neo4j: the Bolt address")
    user: str = Field(default="neo4j", description="neo4j: user")
    password: SecretStr = Field(default=SecretStr(""),
                                description="neo4j: password (better: PROVENANCE_STORE__PASSWORD)")
    database: str | None = Field(default=None, description="neo4j: database (default: the server's)")


class SearchConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    type: str = Field(default="embedded",
                      description="embedded (tantivy), elasticsearch, or none to keep no search index")
    path: Path | None = Field(default=None, description="embedded index directory (default: HOME/search)")
    url: str = Field(default="http://localhost:9200", description="elasticsearch: the cluster")
    index: str = Field(default="provenance", description="elasticsearch: the index name")
    api_key: SecretStr | None = Field(default=None, description="elasticsearch: API key (better: from the environment)")


class CaptureConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    noise: list[str] | None = Field(default=None, description="path prefixes fanotify capture drops (default: the "
                                    "runtime, system and library directories, caches, /proc, /sys, /dev)")
    ignore: list[str] = Field(default_factory=list, description="more path prefixes to drop, on top of the noise")
    grace_s: float = Field(default=5.0, ge=0, le=86_400,
                           description="fanotify: how long `provenance run` keeps capturing the job's processes that "
                           "still run after it ended (detached children); those still running then are a capture gap")


class ServerConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    allowed_hosts: list[str] = Field(default_factory=list,
                                     description="host names the API answers to, besides loopback, the address it "
                                     "binds and --public-url's (a guard against DNS rebinding)")
    max_body_bytes: int = Field(default=50 * 1024 * 1024, ge=1024, le=2**31,
                                description="largest request body accepted (streamed: larger ones stop at the limit)")


class CdcSource(BaseModel):
    """A database the embedded Debezium engine captures (`provenance cdc`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_\-]+$")
    connector: Literal["postgresql", "mysql"] = "postgresql"
    host: str = "localhost"
    port: int = Field(default=5432, ge=1, le=65535)
    user: str = "postgres"
    password: SecretStr = SecretStr("")
    database: str = "postgres"
    tables: list[str] = Field(min_length=1, description="schema.table (PostgreSQL) or database.table (MySQL)")
    properties: dict[str, str] = Field(default_factory=dict, description="more Debezium connector properties")


class CdcConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    mapping_files: list[Path] = Field(default_factory=list,
                                      description="table mappings tried before the defaults (YAML)")
    sources: list[CdcSource] = Field(default_factory=list, description="databases `provenance cdc` captures")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PROVENANCE_", env_nested_delimiter="__", extra="forbid",
                                      frozen=True)

    home: Path = Field(default_factory=lambda: Path("~/.provenance").expanduser())
    environment: Literal["development", "production"] = "development"
    rules_file: Path | None = Field(default=None, description="replaces the default inference rules")
    extra_rules_files: list[Path] = Field(default_factory=list,
                                          description="rules tried before the defaults")
    batch_size: int = Field(default=20_000, ge=1, le=1_000_000)
    processor_workers: int = Field(default_factory=lambda: min(4, max(1, (os.cpu_count() or 2) - 1)), ge=0, le=64,
                                   description="processes that decode and infer while the store writes (0: inline)")
    bus: BusConfig = Field(default_factory=BusConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    capture: CaptureConfig = Field(default_factory=CaptureConfig)
    search: SearchConfig = Field(default_factory=SearchConfig)
    cdc: CdcConfig = Field(default_factory=CdcConfig)
    server: ServerConfig = Field(default_factory=ServerConfig)

    @model_validator(mode="after")
    def _no_placeholder_secrets(self) -> Settings:
        """Outside development, a server's secret must be set, and not to a well-known placeholder."""
        if self.environment != "production":
            return self
        secrets = []
        if self.store.type == "neo4j":
            secrets.append(("store.password", self.store.password))
        secrets += [(f"cdc.sources[{s.name}].password", s.password) for s in self.cdc.sources]
        for where, secret in secrets:
            if secret.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS:
                raise ValueError(f"{where} is empty or a placeholder; set a real secret in production")
        return self

    @property
    def log_path(self) -> Path:
        return self.bus.path or self.home / "log.db"

    @property
    def store_path(self) -> Path:
        return self.store.path or self.home / "graph.db"

    @property
    def search_path(self) -> Path:
        return self.search.path or self.home / "search"


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    return load_mapping(text, str(path), ConfigError, "the config file must be a mapping of settings")


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from defaults, the config file, the environment and ``overrides`` (highest)."""
    overrides = {k: v for k, v in overrides.items() if v is not None}
    home = Path(overrides.get("home") or os.environ.get("PROVENANCE_HOME") or "~/.provenance").expanduser()
    path = config_file or (Path(os.environ["PROVENANCE_CONFIG"]) if os.environ.get("PROVENANCE_CONFIG") else None)
    if path is None and (home / "config.yaml").is_file():
        path = home / "config.yaml"
    raw: dict[str, Any] = read_config_file(path) if path else {}
    file_values = strip_lines(raw)
    try:
        # the file is the lowest source: validate it alone first, so its errors can name lines
        if path:
            _FileSettings.model_validate(file_values)
        env_settings = Settings.model_validate({})  # environment over defaults
        merged = {**file_values}
        for key in env_settings.model_fields_set:
            merged[key] = getattr(env_settings, key)
        merged.update(overrides)
        merged.setdefault("home", home)
        settings = Settings.model_validate(merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(first.get("loc", ()))
        line = line_of(raw, loc) if path else None
        where = f"{path}, line {line}: " if line else (f"{path}: " if path else "")
        raise ConfigError(f"{where}{'.'.join(map(str, loc)) or 'settings'}: {first['msg']}") from exc
    return settings


class _FileSettings(BaseModel):
    """The shape a config file may have (the same fields as Settings, nothing read from env)."""

    model_config = ConfigDict(extra="forbid")
    home: Path | None = None
    environment: Literal["development", "production"] | None = None
    rules_file: Path | None = None
    extra_rules_files: list[Path] | None = None
    batch_size: int | None = Field(default=None, ge=1, le=1_000_000)
    processor_workers: int | None = Field(default=None, ge=0, le=64)
    bus: BusConfig | None = None
    store: StoreConfig | None = None
    capture: CaptureConfig | None = None
    search: SearchConfig | None = None
    cdc: CdcConfig | None = None
    server: ServerConfig | None = None
