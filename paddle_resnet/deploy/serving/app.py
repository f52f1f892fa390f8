"""The FastAPI application: ``POST /predict``, ``GET /healthz``, ``/metrics``, ``/model`` and the demo page ``/``.

Every answer that is not a 2xx is one line of JSON, ``{"error": "...", "kind": "..."}``, with the status that
says whose fault it is: 4xx for what the client sent, 503 with ``Retry-After`` when the server is full or still
starting. ``POST /predict`` answers ``{"predictions": [record, ...]}`` with the records ``predict.py --output``
writes (``folder_prediction.records.to_record``); ``path`` is the upload's file name (or ``images[i]``).
"""
import asyncio
import contextlib
import dataclasses
import io
import json
import logging
import os
import signal
import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from PIL import Image
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from ...cpu import cores_per_process
from ..folder_prediction.decoding import should_decode_ahead
from ..folder_prediction.records import to_record
from ..predictor import Prediction
from .batcher import DecodePool, DecoderDied, MicroBatcher, Turns
from .limits import (READ_TIMEOUT_STATE, TIMED_OUT_SCOPE, Limits, RequestError, busy, check_token, parse_images,
                     read_body, read_token_file)
from .metrics import ServerMetrics
from .page import CONTENT_SECURITY_POLICY, page_html

logger = logging.getLogger(__name__)

SETTINGS_ENV = "PADDLE_RESNET_SERVE_SETTINGS"  # the settings, as JSON, for uvicorn's worker processes
ROUTES = ("/", "/predict", "/healthz", "/metrics", "/model")
STATUS_KINDS = {404: "not_found", 405: "method_not_allowed"}


@dataclass
class ServeSettings:
    """What ``paddle-resnet serve`` was asked for, besides where it listens."""
    model_dir: str
    backend: str = "auto"
    device: str = "cpu"
    precision: str = "fp32"
    cpu_threads: Optional[int] = None
    max_batch: int = 8
    max_delay_ms: float = 5.0
    top_k: int = 5
    decode_workers: int = 1
    workers: int = 1  # server processes sharing this machine's cores
    token_file: Optional[str] = None
    limits: Limits = field(default_factory=Limits)

    def to_json(self):
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text):
        values = json.loads(text)
        return cls(**{**values, "limits": Limits(**values["limits"])})


def load_predictor(settings):
    from ..predictor import Predictor
    return Predictor(settings.model_dir, backend=settings.backend, device=settings.device,
                     precision=settings.precision, cpu_threads=settings.cpu_threads,
                     max_batch_size=settings.max_batch)


def check_model_dir(settings):
    """What ``Predictor`` checks before it loads a runtime: the folder, its files and label names, and a backend
    for the device and precision (for ``--workers N``, whose processes load the model themselves)."""
    from ..backends import RuntimeOptions, resolve_backend
    from ..model_dir import load_label_names, locate_model_files
    from ..paddleclas import load_inference_config

    config = load_inference_config(settings.model_dir)
    files = locate_model_files(settings.model_dir, config)
    load_label_names(settings.model_dir, config)
    options = RuntimeOptions(device=settings.device, precision=settings.precision, cpu_threads=settings.cpu_threads,
                             max_batch_size=settings.max_batch, image_shape=config.image_shape)
    resolve_backend(settings.backend, files, options)


def blank_image_bytes(image_shape):
    """A grey PNG of the model's input size: what the warm-up decodes."""
    buffer = io.BytesIO()
    Image.new("RGB", (image_shape[2], image_shape[1]), (128, 128, 128)).save(buffer, format="PNG")
    return buffer.getvalue()


class Service:
    """The model, its decoding pool and batcher, the count of images in hand, and the metrics."""

    def __init__(self, settings, predictor=None):
        self.settings, self.limits = settings, settings.limits
        self.token = read_token_file(settings.token_file) if settings.token_file else None
        self.metrics = ServerMetrics(settings.max_batch)
        self.predictor, self.pool, self.batcher, self.turns = predictor, None, None, None
        self.description, self.pending, self.status = None, 0, "starting"
        self._watchdog = None

    async def start(self):
        loop = asyncio.get_running_loop()
        if self.predictor is None:
            self.predictor = await loop.run_in_executor(None, load_predictor, self.settings)
        workers, cores = self.settings.decode_workers, max(1, cores_per_process() // self.settings.workers)
        self.turns = Turns(alternate=not should_decode_ahead(self.predictor, workers, cores))
        # The pool forks at its warm-up, before the model's thread starts: no worker copies a lock it holds.
        self.pool = DecodePool(self.predictor.to_input, self.settings.decode_workers)
        await self.pool.warm_up(blank_image_bytes(self.predictor.config.image_shape))
        self.batcher = MicroBatcher(self.predictor, self.settings.max_batch, self.settings.max_delay_ms / 1000,
                                    self.turns, on_batch=self.metrics.batch_size.observe)
        class_count = 0
        for size in sorted({1, self.settings.max_batch}):  # the first run at a batch size sets up its kernels
            outputs = await self.batcher.run_model(np.zeros((size, *self.predictor.config.image_shape), np.float32))
            class_count = outputs.shape[1]
        self.description = await loop.run_in_executor(None, self._describe, class_count)
        if self.settings.workers > 1:
            self._watchdog = loop.create_task(_stop_when_orphaned(os.getppid()))
        self.status = "ready"

    async def stop(self):
        self.status = "stopping"
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self.batcher is not None:
            await self.batcher.close()
        if self.pool is not None:
            self.pool.close()

    def _describe(self, class_count):
        predictor, settings = self.predictor, self.settings
        preprocess = predictor.config.to_dict()["preprocess"]
        return {"model_dir": str(settings.model_dir), "arch": predictor.config.model_name,
                "classes": {"count": class_count, "names": [predictor.label_name(i) for i in range(class_count)]},
                "input_shape": list(predictor.config.image_shape),
                "preprocess": json.loads(json.dumps(preprocess, default=str)),
                "softmax": predictor.config.softmax, "backend": predictor.backend_name,
                "device": predictor.options.device, "precision": predictor.options.precision,
                "fingerprint": predictor.fingerprint(), "files": predictor.file_hashes(),
                "batching": {"max_batch": settings.max_batch, "max_delay_ms": settings.max_delay_ms},
                "limits": dataclasses.asdict(self.limits)}

    def check_ready(self):
        if self.status != "ready":
            raise busy(f"the server is {self.status}", self.limits)

    def check_room(self, count):
        if self.pending + count > self.limits.max_queue:
            raise busy(f"the server holds {self.pending} images, at most {self.limits.max_queue} (--max-queue); "
                       f"retry later", self.limits)

    @contextlib.contextmanager
    def admitted(self, count):
        self.check_room(count)
        self.pending += count
        self.metrics.queue_depth.set(self.pending)
        try:
            yield
        finally:
            self.pending -= count
            self.metrics.queue_depth.set(self.pending)

    async def predict(self, images, top_k):
        """One Prediction per image, in order; an unreadable one has its error, and its kind in ``kinds``."""
        try:
            decoded = await asyncio.gather(*(self._decode_and_queue(image, top_k) for image in images))
        except DecoderDied as error:
            raise busy(error, self.limits) from None
        queued = [future for future, _, _ in decoded if future is not None]
        predicted = iter(await asyncio.gather(*queued))  # cancelled with the request: the batcher skips them
        kinds = {index: kind for index, (future, kind, _) in enumerate(decoded) if future is None}
        return [Prediction(image.name, error=reason) if future is None else next(predicted)
                for image, (future, _, reason) in zip(images, decoded)], kinds

    async def _decode_and_queue(self, image, top_k):
        """-> (the future of its Prediction, None, None), or (None, error kind, reason)."""
        async with self.turns.decoding():
            array, kind, reason = await self.pool.decode(image.data, image.name)
            if array is None:
                return None, kind, reason
            return self.batcher.submit(array, image.name, top_k), None, None


async def _stop_when_orphaned(supervisor, poll_seconds=1.0):
    """A ``--workers`` process whose supervisor died (SIGKILL leaves it no time to stop its workers) stops itself
    as SIGTERM would: uvicorn's workers otherwise go on serving the socket they share, with no one to stop them."""
    while os.getppid() == supervisor:
        await asyncio.sleep(poll_seconds)
    logger.warning("the supervisor process %d is gone: stopping", supervisor)
    os.kill(os.getpid(), signal.SIGTERM)


def create_app(settings, predictor=None):
    """The application serving ``settings.model_dir`` (``predictor``: one already loaded, else loaded at startup)."""
    service = Service(settings, predictor)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await service.start()
        try:
            yield {READ_TIMEOUT_STATE: settings.limits.read_timeout}
        finally:
            await service.stop()

    app = FastAPI(title="paddle_resnet serve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.service = service
    _add_error_handlers(app, service)
    app.add_middleware(_CountRequests, metrics=service.metrics)

    @app.get("/", include_in_schema=False)
    async def page():
        return HTMLResponse(page_html(), headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY})

    @app.get("/healthz")
    async def healthz():
        return JSONResponse({"status": service.status}, status_code=200 if service.status == "ready" else 503)

    @app.get("/metrics")
    async def metrics(request: Request):
        check_token(request.headers.get("authorization"), service.token)
        return Response(service.metrics.render(), media_type=service.metrics.content_type)

    @app.get("/model")
    async def model(request: Request):
        check_token(request.headers.get("authorization"), service.token)
        service.check_ready()
        return service.description

    @app.post("/predict")
    async def predict(request: Request):
        started = time.perf_counter()
        check_token(request.headers.get("authorization"), service.token)
        service.check_ready()
        service.check_room(1)  # full: refused before its body is read
        try:
            body = await read_body(request, service.limits)
        except ClientDisconnect:  # the client left, or the read deadline answered 408 and closed
            kind = "read_timeout" if request.scope.get(TIMED_OUT_SCOPE) else "disconnected"
            service.metrics.errors.labels(kind).inc()
            return Response(status_code=408)
        images, top_k = await parse_images(request.headers.get("content-type"), request.headers, body,
                                           request.query_params.get("top_k"), settings.top_k, service.limits)
        with service.admitted(len(images)):
            try:
                predictions, kinds = await asyncio.wait_for(service.predict(images, top_k),
                                                            service.limits.request_timeout)
            except asyncio.TimeoutError:
                raise busy(f"not answered within {service.limits.request_timeout:g} s (--request-timeout)",
                           service.limits) from None
        service.metrics.images.inc(len(images))
        service.metrics.latency.observe(time.perf_counter() - started)
        records = [to_record(prediction) for prediction in predictions]
        if len(kinds) < len(images):
            return {"predictions": records}
        first = kinds[0]
        more = f" (and {len(images) - 1} more unreadable)" if len(images) > 1 else ""
        error = RequestError(413 if first == "image_too_large" else 422, first, predictions[0].error + more)
        service.metrics.errors.labels(error.kind).inc()
        return JSONResponse({**error.body(), "predictions": records}, status_code=error.status)

    return app


def _add_error_handlers(app, service):
    @app.exception_handler(RequestError)
    async def request_error(request, error):
        service.metrics.errors.labels(error.kind).inc()
        return JSONResponse(error.body(), status_code=error.status, headers=error.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, error):
        kind = STATUS_KINDS.get(error.status_code, "bad_request")
        service.metrics.errors.labels(kind).inc()
        message = " ".join(str(error.detail).split())
        if error.status_code == 404:
            message = f"no route {request.url.path[:100]}; the routes are {', '.join(ROUTES)}"
        elif error.status_code == 405:
            message = f"{request.method[:20]} is not allowed on {request.url.path}; use {error.headers.get('Allow')}"
        return JSONResponse({"error": message, "kind": kind}, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(Exception)
    async def internal_error(request, error):  # a bug: its traceback goes to the server's log, not to the client
        logger.exception("internal error answering %s %s", request.method, request.url.path)
        service.metrics.errors.labels("internal").inc()
        return JSONResponse({"error": f"internal error ({type(error).__name__}); see the server's log",
                             "kind": "internal"}, status_code=500)


class _CountRequests:
    """Counts every answer by route and status (a pure ASGI middleware: it leaves the body streams alone)."""

    def __init__(self, app, metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        status = [500]

        async def sending(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope["path"] if scope["path"] in ROUTES else "other"
            self.metrics.requests.labels(route, str(status[0])).inc()


def app_from_env():
    """uvicorn's application factory in each ``--workers`` process: the settings come from ``SETTINGS_ENV``."""
    return create_app(ServeSettings.from_json(os.environ[SETTINGS_ENV]))
