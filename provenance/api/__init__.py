"""The HTTP API and the web UI (FastAPI): ``create_app(settings)`` in `provenance.api.app`."""
