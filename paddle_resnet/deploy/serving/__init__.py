"""``paddle-resnet serve``: an exported model behind HTTP (FastAPI on uvicorn), with micro-batching across
requests, decoding in worker processes, limits on what a request may be, Prometheus metrics and a demo page.

Modules: ``app`` (routes, settings, the service), ``batcher`` (decoding pool, micro-batcher), ``limits`` (request
limits, parsing, the read deadline), ``metrics``, ``page`` (the demo page). They import FastAPI, uvicorn,
python-multipart and prometheus-client, the ``serve`` extra; this file does not, so that the command can say
what to install.
"""
import importlib.util

INSTALL = 'pip install -e ".[serve]"'
REQUIRED = {"fastapi": "fastapi", "uvicorn": "uvicorn", "multipart": "python-multipart",
            "prometheus_client": "prometheus-client"}  # module -> package


def missing_packages():
    """The serve extra's packages that are not installed."""
    return [package for module, package in REQUIRED.items() if importlib.util.find_spec(module) is None]
