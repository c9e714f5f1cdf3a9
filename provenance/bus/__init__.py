"""The bus: raw topics in, a dead-letter topic out. Port in `port`, embedded log in `embedded`."""

from provenance.bus.embedded import EmbeddedLog
from provenance.bus.port import (
    DEAD_LETTER_HEADERS,
    DEAD_LETTER_TOPIC,
    RAW_TOPIC_PREFIX,
    Bus,
    Consumer,
    Message,
    Record,
    offset_key,
    raw_topic,
    read_topic,
)

__all__ = [
    "DEAD_LETTER_HEADERS",
    "DEAD_LETTER_TOPIC",
    "RAW_TOPIC_PREFIX",
    "Bus",
    "Consumer",
    "EmbeddedLog",
    "Message",
    "Record",
    "offset_key",
    "raw_topic",
    "read_topic",
]
