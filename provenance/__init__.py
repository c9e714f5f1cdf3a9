"""provenance: implicit provenance for machine-learning pipelines.

Lineage of artifacts, applications and users built from change-data-capture of the systems
pipelines already use, queryable as of any time. The public surface is what this module exports.
"""

from provenance.bus import Bus, EmbeddedLog, Message, Record, raw_topic
from provenance.config import Settings, load_settings
from provenance.errors import (
    BusError,
    ConfigError,
    EventError,
    NotFoundError,
    ProvenanceError,
    QueryError,
    RulesError,
    StoreError,
)
from provenance.events import Event, Kind, event_from_json, event_to_json
from provenance.graph.embedded import EmbeddedStore
from provenance.graph.port import LineageStore
from provenance.graph.queries import Limits, LineageQueries
from provenance.processor.rules import Rules, load_rules
from provenance.processor.runner import Processor
from provenance.stack import Stack, open_stack

__version__ = "0.1.0"

__all__ = [
    "Bus",
    "BusError",
    "ConfigError",
    "EmbeddedLog",
    "EmbeddedStore",
    "Event",
    "EventError",
    "Kind",
    "Limits",
    "LineageQueries",
    "LineageStore",
    "Message",
    "NotFoundError",
    "Processor",
    "ProvenanceError",
    "QueryError",
    "Record",
    "Rules",
    "RulesError",
    "Settings",
    "Stack",
    "StoreError",
    "event_from_json",
    "event_to_json",
    "load_rules",
    "load_settings",
    "open_stack",
    "raw_topic",
]
