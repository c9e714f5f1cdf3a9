import inspect

import provenance


def test_public_surface_is_pinned() -> None:
    exported = {n for n, v in vars(provenance).items() if not n.startswith("_") and not inspect.ismodule(v)}
    assert exported == set(provenance.__all__)
    assert sorted(provenance.__all__) == provenance.__all__


def test_every_error_is_a_provenance_error() -> None:
    for name in ("BusError", "ConfigError", "EventError", "NotFoundError", "QueryError", "RulesError", "StoreError"):
        assert issubclass(getattr(provenance, name), provenance.ProvenanceError)
