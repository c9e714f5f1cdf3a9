"""A Marquez-compatible read API: Marquez's JSON shapes (`models`) built from the lineage graph as one
caller may see it (`view`). The HTTP routes are in ``provenance.api.routes.marquez``."""

from provenance.marquez.view import DEFAULT_NAMESPACE, MarquezView, node_id_splits, run_uuid

__all__ = ["DEFAULT_NAMESPACE", "MarquezView", "node_id_splits", "run_uuid"]
