"""The raw formats this package reads: one list, each format with the factory of its normalizer.

A factory gets the settings and builds the normalizer once per stack, so each format carries its
own configuration (the Debezium format its table mappings) and none is loaded that is not asked for.
Add a format by adding it here; `provenance.processor.normalize` is only the registry.
"""

from __future__ import annotations

from collections.abc import Callable

from provenance.config import Settings
from provenance.events import event_from_json
from provenance.processor.normalize import Normalizer, Normalizers


def _canonical(settings: Settings) -> Normalizer:
    # inference reads an event's id only for an app-less link (`infer`), so it is not derived here
    return lambda value: [event_from_json(value, derive_id=False)]


def _debezium(settings: Settings) -> Normalizer:
    from provenance.connectors.cdc import CdcNormalizer

    return CdcNormalizer(settings.cdc.mapping_files)


def _hdfs(settings: Settings) -> Normalizer:
    from provenance.connectors.hdfs import normalize

    return normalize


def _s3(settings: Settings) -> Normalizer:
    from provenance.connectors.s3 import normalize

    return normalize


def _openlineage(settings: Settings) -> Normalizer:
    from provenance.connectors.openlineage import normalize

    return normalize


#: format (the ``prov.raw.<format>`` topic's suffix) → factory of its normalizer
FORMATS: dict[str, Callable[[Settings], Normalizer]] = {
    "canonical": _canonical,
    "debezium": _debezium,
    "hdfs-audit": _hdfs,
    "s3": _s3,
    "openlineage": _openlineage,
}


def build_normalizers(settings: Settings) -> Normalizers:
    """Every format's normalizer, configured by ``settings`` (a bad mapping file fails here)."""
    return Normalizers({fmt: factory(settings) for fmt, factory in FORMATS.items()})
