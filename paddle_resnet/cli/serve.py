"""Serve an exported model over HTTP, with batching across requests (needs the serve extra:
pip install -e ".[serve]").

    python tools/serve.py --model-dir inference/resnet50 [--host 127.0.0.1] [--port 8000] [--workers 1]
        [--max-batch 8] [--max-delay-ms 5] [--token-file token.txt]
    curl -F image=@photo.jpg "http://127.0.0.1:8000/predict?top_k=3"

Routes: POST /predict takes image files (multipart fields "image" or "images") or JSON {"images": [{"data":
"<base64>", "name": "a.jpg"}], "top_k": 5} and answers {"predictions": [...]} with the records predict.py
--output writes; image URLs are refused (the server fetches nothing). GET /healthz (200 once warmed up),
/metrics (Prometheus), /model (architecture, classes, preprocessing, backend, file hashes), / (a demo page).
Every error is one line of JSON {"error", "kind"}: 4xx for what the client sent, 503 with Retry-After when
the server is full. With --token-file, /predict, /model and /metrics ask for "Authorization: Bearer <token>".

The server listens on 127.0.0.1 unless --host says otherwise (--port 0: a free port, printed). SIGTERM or
Ctrl-C stops accepting, finishes the requests in flight and exits. With --workers N, N processes each load the
model; one that dies is replaced.

Exit codes: 0 stopped by SIGTERM or Ctrl-C; 1 a user error (one line on stderr: a bad model folder or token
file, an address in use, the serve extra missing) or workers that could not start; 2 a malformed command line.
"""
import logging
import signal
import socket
import sys

from ..deploy.backends import BACKENDS, DEVICES, PRECISIONS
from .common import fail, int_at_least, number_at_least, positive_int, thread_count, tool_parser

APP_FACTORY = "paddle_resnet.deploy.serving.app:app_from_env"
KEEP_ALIVE_SECONDS = 5  # an idle keep-alive connection is closed after this
# uvicorn's supervisor pings each worker every 0.5 s and replaces one that does not answer within this. Its
# default, 5 s, is shorter than a spawned worker takes to import Paddle on a busy 2-core machine (measured: it
# killed each new worker before it could answer, over and over, for 30 s).
WORKER_HEALTHCHECK_SECONDS = 120
int_port = int_at_least(0, 65535)


def parse_args(argv, prog=None):
    parser = tool_parser(__doc__, prog)
    parser.add_argument("--model-dir", required=True, help="an exported model folder (ours or PaddleClas's)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this "
                                                            "machine only; 0.0.0.0 for every interface)")
    parser.add_argument("--port", type=int_port, default=8000, help="default: 8000; 0 picks a free port")
    parser.add_argument("--workers", type=thread_count, default=1,
                        help="server processes, each with the model loaded (default: 1)")
    parser.add_argument("--max-batch", type=positive_int, default=8, help="images per model call (default: 8)")
    parser.add_argument("--max-delay-ms", type=number_at_least(0, 10_000), default=5.0,
                        help="how long a batch waits for more images after its first (default: 5)")
    parser.add_argument("--top-k", type=positive_int, default=5, help="classes per image unless a request "
                                                                      "says top_k (default: 5)")
    parser.add_argument("--backend", default="auto", choices=BACKENDS, help="default: auto")
    parser.add_argument("--device", default="cpu", choices=DEVICES, help="default: cpu")
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS,
                        help="int8 on CPU: the model of export_model.py --quantize int8; bf16: CPUs with avx512_bf16 "
                             "/ AMX (default: fp32)")
    parser.add_argument("--cpu-threads", type=thread_count, default=None,
                        help="the model's threads in each worker (default: the cores divided among the workers)")
    parser.add_argument("--decode-workers", type=thread_count, default=None,
                        help="processes decoding images in each worker (default: the cores divided among the "
                             "workers); when they and the model's threads outnumber the cores, decoding and the "
                             "model take turns")
    parser.add_argument("--max-body-mb", type=number_at_least(0.001, 1024), default=20.0,
                        help="largest request body (default: 20)")
    parser.add_argument("--max-images", type=positive_int, default=16, help="images per request (default: 16)")
    parser.add_argument("--max-queue", type=positive_int, default=64,
                        help="images a worker holds at once; beyond it 503 with Retry-After (default: 64)")
    parser.add_argument("--max-connections", type=positive_int, default=256,
                        help="open connections per worker; beyond it uvicorn answers 503 (default: 256)")
    parser.add_argument("--read-timeout", type=number_at_least(0.01, 3600), default=10.0,
                        help="seconds for a request to arrive whole once begun, else 408 (default: 10)")
    parser.add_argument("--request-timeout", type=number_at_least(0.01, 3600), default=30.0,
                        help="seconds to answer a request once read, else 503 (default: 30)")
    parser.add_argument("--graceful-timeout", type=number_at_least(0, 3600), default=30.0,
                        help="seconds SIGTERM waits for the requests in flight (default: 30)")
    parser.add_argument("--token-file", help="a file holding a bearer token that /predict, /model and /metrics "
                                             "then ask for")
    args = parser.parse_args(argv)
    if args.max_images > args.max_queue:
        parser.error(f"--max-images {args.max_images} is more than --max-queue {args.max_queue}: such a request "
                     f"could never be taken")
    return args


def settings_from(args):
    from ..cpu import cores_per_process
    from ..deploy.serving.app import ServeSettings
    from ..deploy.serving.limits import Limits

    limits = Limits(max_body_bytes=int(args.max_body_mb * (1 << 20)), max_images=args.max_images,
                    max_queue=args.max_queue, read_timeout=args.read_timeout, request_timeout=args.request_timeout)
    share = max(1, cores_per_process() // args.workers)  # each worker's cores
    return ServeSettings(model_dir=args.model_dir, backend=args.backend, device=args.device,
                         precision=args.precision, cpu_threads=args.cpu_threads or share,
                         max_batch=args.max_batch, max_delay_ms=args.max_delay_ms, top_k=args.top_k,
                         decode_workers=args.decode_workers or share, workers=args.workers,
                         token_file=args.token_file, limits=limits)


def listening_socket(host, port):
    """A socket bound to ``host``:``port`` (inheritable, for uvicorn's workers); InputError when it cannot be."""
    from ..errors import InputError
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as error:
        raise InputError(f"--host {host}: {error.strerror}") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as error:
        sock.close()
        raise InputError(f"cannot listen on --host {host} --port {port}: {error.strerror}") from None
    sock.set_inheritable(True)
    return sock


def uvicorn_config(app, *, workers=1, graceful_timeout=30.0, max_connections=256, verbose=False, factory=False):
    import uvicorn

    from ..deploy.serving.limits import DeadlineH11Protocol
    return uvicorn.Config(app, factory=factory, workers=workers, http=DeadlineH11Protocol, lifespan="on",
                          timeout_keep_alive=KEEP_ALIVE_SECONDS, timeout_graceful_shutdown=graceful_timeout,
                          limit_concurrency=max_connections, server_header=False,
                          timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
                          log_level="info" if verbose else "warning", access_log=verbose)


def config_from(app, args, factory=False):
    return uvicorn_config(app, workers=args.workers, graceful_timeout=args.graceful_timeout,
                          max_connections=args.max_connections, verbose=args.verbose, factory=factory)


def serve_here(app, args, sock):
    """One process: uvicorn's own server. Its SIGTERM and SIGINT handlers stop it gracefully, then raise the
    signal again for the handler found before them: a no-op here, so that the stop ends in exit code 0."""
    import uvicorn

    server = uvicorn.Server(config_from(app, args))
    stopped = {sig: signal.signal(sig, lambda signum, frame: None) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in stopped.items():
            signal.signal(sig, handler)
    return 0


def serve_in_workers(args, settings, sock, prog):
    """``--workers N``: uvicorn's supervisor, which starts N processes (each builds the application from the
    settings in the environment), replaces one that dies, and on SIGTERM stops them all gracefully."""
    import os

    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    from ..deploy.serving.app import SETTINGS_ENV
    os.environ[SETTINGS_ENV] = settings.to_json()
    supervisor = Multiprocess(config_from(APP_FACTORY, args, factory=True), sockets=[sock])
    supervisor.run()
    if any(process.exitcode == STARTUP_FAILURE for process in supervisor.processes):
        return fail(prog, "a worker could not start (its log above says why)")
    return 0


def main(argv=None, prog=None):
    args = parse_args(argv, prog)
    from ..deploy.serving import INSTALL, missing_packages
    if missing := missing_packages():
        return fail(prog, f"serving needs {', '.join(missing)}: {INSTALL}")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    from ..deploy.serving.app import check_model_dir, create_app, load_predictor
    from ..deploy.serving.limits import read_token_file
    from ..errors import UserError
    try:
        settings = settings_from(args)
        if settings.token_file:
            read_token_file(settings.token_file)
        sock = listening_socket(args.host, args.port)  # before a large model loads to no end
    except UserError as error:
        return fail(prog, error)
    try:
        # One worker loads the model here, so that a damaged one is a line and exit 1; several load their own.
        predictor = load_predictor(settings) if args.workers == 1 else check_model_dir(settings)
    except (UserError, FileNotFoundError) as error:
        sock.close()
        return fail(prog, error)
    host, port = sock.getsockname()[:2]
    shown_host = f"[{host}]" if ":" in host else host
    print(f"serving {args.model_dir} on http://{shown_host}:{port}/ ({args.workers} worker"
          f"{'s' if args.workers > 1 else ''}; SIGTERM or Ctrl-C stops it)", file=sys.stderr, flush=True)
    if args.workers == 1:
        return serve_here(create_app(settings, predictor), args, sock)
    return serve_in_workers(args, settings, sock, prog)
