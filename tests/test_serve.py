"""``paddle-resnet serve`` (paddle_resnet/deploy/serving/): records equal to offline prediction, batching across
requests, limits and hostile requests, the token, metrics, graceful SIGTERM, a killed worker replaced, the demo page
in headless Chromium. In-process through Starlette's TestClient or a uvicorn server on a thread where possible; the
command itself in a subprocess for signals and workers. A small-stem ResNet-18 at 32x32 keeps it fast."""
import base64
import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib

import numpy as np
import paddle
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason='the serve extra: pip install -e ".[serve]"')
import httpx  # noqa: E402
import uvicorn  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from conftest import ROOT  # noqa: E402
from test_folder_prediction import EVAL_OPS, LABELS, assert_same_records, export_small_model  # noqa: E402
from paddle_resnet import build_model  # noqa: E402
from paddle_resnet.cli import serve  # noqa: E402
from paddle_resnet.deploy import Predictor  # noqa: E402
from paddle_resnet.deploy.folder_prediction.records import RECORD_KEYS  # noqa: E402
from paddle_resnet.deploy.serving.app import ServeSettings, create_app  # noqa: E402
from paddle_resnet.deploy.serving.limits import Limits  # noqa: E402
from paddle_resnet.errors import short_repr  # noqa: E402

TOP_K = 5
LIMITS = Limits(max_body_bytes=1 << 20, max_images=4, max_queue=16, read_timeout=1.0, request_timeout=10.0)


# Every test here serves an exported model (built once per module, ~8 s): the set is slow as a whole.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return export_small_model(tmp_path_factory.mktemp("resnet18_small"))


@pytest.fixture(scope="module")
def predictor(model_dir):
    return Predictor(model_dir, backend="paddle", max_batch_size=8)


def encoded(pixels, image_format, **options):
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=image_format, **options)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Real photos (scikit-image's), a grayscale one, a CMYK JPEG and a 16-bit PNG: {file name: path}."""
    from skimage import data
    folder = tmp_path_factory.mktemp("photos")
    files = {"coffee.jpg": encoded(data.coffee(), "JPEG", quality=90),
             "astronaut.png": encoded(data.astronaut(), "PNG"),
             "chelsea.jpg": encoded(data.chelsea(), "JPEG", quality=85),
             "camera.png": encoded(data.camera(), "PNG")}
    cmyk = io.BytesIO()
    Image.fromarray(data.rocket()).convert("CMYK").save(cmyk, format="JPEG")
    files["rocket_cmyk.jpg"] = cmyk.getvalue()
    files["moon_16bit.png"] = encoded((data.moon().astype(np.uint16) * 257), "PNG")
    for name, content in files.items():
        (folder / name).write_bytes(content)
    return {name: str(folder / name) for name in files}


def settings_for(model_dir, **changes):
    return ServeSettings(model_dir=model_dir, backend="paddle", max_batch=8, top_k=TOP_K, limits=LIMITS, **changes)


@pytest.fixture(scope="module")
def client(model_dir, predictor):
    with TestClient(create_app(settings_for(model_dir), predictor), raise_server_exceptions=False) as test_client:
        yield test_client


def multipart(paths, field="image"):
    return [(field, (os.path.basename(path), open(path, "rb").read())) for path in paths]


def offline_records(predictor, paths, top_k=TOP_K):
    return [{"path": os.path.basename(p.input), "class_ids": p.class_ids, "scores": p.scores,
             "label_names": p.label_names, "error": p.error} for p in predictor.predict(paths, top_k=top_k)]


def assert_error(response, status, kind, message=None):
    """A one-line JSON error of ``status`` and ``kind`` (and exactly ``message`` when given)."""
    assert response.status_code == status, response.text
    assert "\n" not in response.text and response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["kind"] == kind and "\n" not in body["error"]
    if message is not None:
        assert body["error"] == message
    return body


def metric(client, line_start):
    """The value of the /metrics line starting with ``line_start`` (0 when absent)."""
    text = client.get("/metrics").text
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(line_start)]
    return values[0] if values else 0.0


# ---- in-process: records, limits, errors ---------------------------------------------------------------------

def test_records_equal_offline_predictor_every_score(client, predictor, photos):
    paths = list(photos.values())
    response = client.post("/predict", files=multipart(paths[:4]))
    second = client.post("/predict", files=multipart(paths[4:]))
    assert response.status_code == 200 and second.status_code == 200
    records = response.json()["predictions"] + second.json()["predictions"]
    assert all(set(record) == RECORD_KEYS for record in records)
    assert [r["path"] for r in records] == list(photos)
    assert all(r["error"] is None and len(r["scores"]) == TOP_K for r in records)  # CMYK and 16-bit included
    assert_same_records(records, offline_records(predictor, paths))


def test_json_base64_data_urls_and_top_k_give_the_same_records(client, predictor, photos):
    paths = [photos["coffee.jpg"], photos["moon_16bit.png"]]
    payload = [{"data": base64.b64encode(open(paths[0], "rb").read()).decode(), "name": "coffee.jpg"},
               "data:image/png;base64," + base64.b64encode(open(paths[1], "rb").read()).decode()]
    response = client.post("/predict", json={"images": payload, "top_k": 3})
    assert response.status_code == 200
    records = response.json()["predictions"]
    assert [r["path"] for r in records] == ["coffee.jpg", "images[1]"]
    expected = offline_records(predictor, paths, top_k=3)
    expected[1]["path"] = "images[1]"
    assert_same_records(records, expected)
    by_query = client.post("/predict?top_k=2", files=multipart(paths[:1])).json()["predictions"]
    assert by_query[0]["class_ids"] == expected[0]["class_ids"][:2]


def test_concurrent_requests_share_model_calls_and_keep_their_own_answers(model_dir, predictor, photos):
    """A batch waits up to 300 ms for more: six requests sent together make fewer model calls than requests,
    and each still gets the offline record of its own image."""
    app = create_app(settings_for(model_dir, max_delay_ms=300), predictor)
    paths = list(photos.values())
    with TestClient(app) as test_client:
        with concurrent_calls(len(paths)) as pool:
            responses = list(pool.map(lambda path: test_client.post("/predict", files=multipart([path])), paths))
        calls = metric(test_client, "paddle_resnet_batch_size_count")
        images = metric(test_client, "paddle_resnet_batch_size_sum")
    assert_same_records([r.json()["predictions"][0] for r in responses], offline_records(predictor, paths))
    assert images == len(paths) and calls < len(paths)


@contextlib.contextmanager
def concurrent_calls(count):
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(count) as pool:
        yield pool


def png_declaring(width, height):
    """A 1x1 PNG whose header declares width x height (checksum fixed): a decompression bomb's shape."""
    png = encoded(np.zeros((1, 1), np.uint8), "PNG")
    ihdr = b"IHDR" + struct.pack(">II", width, height) + png[24:29]
    return png[:12] + ihdr + struct.pack(">I", zlib.crc32(ihdr)) + png[33:]


def test_unreadable_images_are_422_naming_them_and_a_bomb_is_413(client, photos):
    jpeg = open(photos["coffee.jpg"], "rb").read()
    cases = [("text.jpg", b"not an image\n", 422, "unreadable_image",
              "text.jpg: cannot decode image: not a file of the formats read (JPEG, PNG, BMP, DIB, GIF, TIFF, WEBP, "
              "PPM, TGA, ICO)"),
             ("cut.jpg", jpeg[:len(jpeg) // 3], 422, "unreadable_image", None),
             ("empty.png", b"", 422, "unreadable_image", "empty.png: empty file"),
             ("bomb.png", png_declaring(30_000, 30_000), 413, "image_too_large",
              "bomb.png: cannot decode image: Image size (900000000 pixels) exceeds limit of 178956970 pixels, "
              "could be decompression bomb DOS attack.")]
    for name, content, status, kind, message in cases:
        body = assert_error(client.post("/predict", files=[("image", (name, content))]), status, kind, message)
        assert body["predictions"][0]["path"] == name and body["predictions"][0]["class_ids"] == []
    cut = client.post("/predict", files=[("image", ("cut.jpg", jpeg[:len(jpeg) // 3]))]).json()["error"]
    assert cut.startswith("cut.jpg: cannot decode image: image file is truncated")


def test_a_request_with_readable_and_unreadable_images_answers_both(client, predictor, photos):
    response = client.post("/predict", files=multipart([photos["coffee.jpg"]]) + [("images", ("bad.jpg", b"x"))])
    assert response.status_code == 200
    good, bad = response.json()["predictions"]
    assert_same_records([good], offline_records(predictor, [photos["coffee.jpg"]]))
    assert bad["path"] == "bad.jpg" and bad["class_ids"] == [] and bad["error"].startswith("bad.jpg: cannot decode")


HOSTILE = {  # name -> (request arguments, status, kind, exact message or None)
    "wrong field": ({"files": [("photo", ("a.jpg", b"x"))]}, 400, "wrong_field",
                    "multipart file field 'photo' is not read; send images in fields named image or images"),
    "no image": ({"data": {"top_k": "3"}, "files": [("top_k", (None, b"3"))]}, 400, "no_image", None),
    "too many images": ({"files": [("image", (f"{i}.jpg", b"x")) for i in range(5)]}, 413, "too_many_images",
                        "a request may hold at most 4 images (--max-images); this one holds more"),
    "body over the cap": ({"files": [("image", ("big.jpg", bytes(1 << 20)))]}, 413, "body_too_large",
                          "the request body is over the 1,048,576 bytes allowed (--max-body-mb)"),
    "not JSON": ({"content": b"{nope", "headers": {"content-type": "application/json"}}, 400, "bad_json", None),
    "JSON nested 100,000 deep": ({"content": b"[" * 100_000, "headers": {"content-type": "application/json"}}, 400,
                                 "bad_json", None),
    "JSON unknown key": ({"json": {"images": [], "model": "x"}}, 400, "wrong_field",
                         "the JSON body must be an object with the keys images, top_k; got ['model']"),
    "image URL": ({"json": {"images": ["https://example.com/cat.jpg"]}}, 400, "url_refused",
                  "images[0]: image URLs are refused, the server fetches nothing; send the image's bytes (a "
                  "multipart file, or base64 in JSON)"),
    "image URL object": ({"json": {"images": [{"url": "http://10.0.0.1/a.jpg"}]}}, 400, "url_refused", None),
    "bad base64": ({"json": {"images": ["@@@"]}}, 400, "bad_base64", "images[0] is not valid base64"),
    "top_k 0": ({"json": {"images": ["AAAA"], "top_k": 0}}, 400, "bad_top_k", None),
    "top_k text": ({"params": {"top_k": "1e3"}, "files": [("image", ("a.jpg", b"x"))]}, 400, "bad_top_k",
                   "top_k must be an integer >= 1, got '1e3'"),
    "plain text": ({"content": b"hello", "headers": {"content-type": "text/plain"}}, 415,
                   "unsupported_media_type", None),
    "no boundary": ({"content": b"--x\r\n", "headers": {"content-type": "multipart/form-data"}}, 400,
                    "bad_multipart", "malformed multipart body: Missing boundary in multipart."),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_requests_get_a_one_line_json_4xx(client, case):
    arguments, status, kind, message = HOSTILE[case]
    assert_error(client.post("/predict", **arguments), status, kind, message)


def test_other_routes_and_methods_are_json_errors(client):
    assert_error(client.get("/predict"), 405, "method_not_allowed", "GET is not allowed on /predict; use POST")
    assert_error(client.get("/etc/passwd"), 404, "not_found",
                 "no route /etc/passwd; the routes are /, /predict, /healthz, /metrics, /model")


def test_healthz_model_and_metrics(client, model_dir, predictor):
    assert client.get("/healthz").json() == {"status": "ready"}
    model = client.get("/model").json()
    assert model["classes"] == {"count": 10, "names": LABELS}
    assert (model["arch"], model["backend"], model["precision"], model["input_shape"]) == \
        ("resnet18", "paddle", "fp32", [3, 32, 32])
    assert model["preprocess"]["transform_ops"] == EVAL_OPS and model["fingerprint"] == predictor.fingerprint()
    assert model["files"] == {name: hashlib.sha256(open(os.path.join(model_dir, name), "rb").read()).hexdigest()
                              for name in ("inference.json", "inference.pdiparams")}
    before = metric(client, 'paddle_resnet_errors_total{kind="url_refused"}')
    client.post("/predict", json={"images": ["http://x/y.jpg"]})
    assert metric(client, 'paddle_resnet_errors_total{kind="url_refused"}') == before + 1
    assert metric(client, "paddle_resnet_queue_depth") == 0
    assert metric(client, 'paddle_resnet_requests_total{route="/predict",status="400"}') >= 1


def test_the_token_guards_predict_model_and_metrics(model_dir, predictor, photos, tmp_path):
    (tmp_path / "token").write_text("s3cret-token\n")
    app = create_app(settings_for(model_dir, token_file=str(tmp_path / "token")), predictor)
    with TestClient(app) as test_client:
        for route, method in (("/predict", "post"), ("/model", "get"), ("/metrics", "get")):
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret-token"}):
                response = getattr(test_client, method)(route, headers=headers)
                assert_error(response, 401, "unauthorized",
                             "missing or wrong bearer token (Authorization: Bearer <token>)")
                assert response.headers["www-authenticate"] == "Bearer"
        good = test_client.post("/predict", files=multipart([photos["coffee.jpg"]]),
                                headers={"Authorization": "Bearer s3cret-token"})
        assert good.status_code == 200
        assert test_client.get("/healthz").status_code == 200 and test_client.get("/").status_code == 200


class GatedPredictor:
    """The predictor, with model calls that wait for ``gate``: requests pile up behind the first."""

    def __init__(self, predictor):
        self.predictor, self.gate, self.entered = predictor, threading.Event(), threading.Event()

    def __getattr__(self, name):
        return getattr(self.predictor, name)

    def predict_preprocessed(self, batch, names, top_k=5):
        self.entered.set()
        self.gate.wait(20)
        return self.predictor.predict_preprocessed(batch, names, top_k)


def test_a_full_queue_is_503_with_retry_after_and_a_slow_answer_too(model_dir, predictor, photos):
    gated = GatedPredictor(predictor)
    limits = Limits(max_images=2, max_queue=2, request_timeout=0.5)
    app = create_app(ServeSettings(model_dir=model_dir, max_batch=1, max_delay_ms=0, limits=limits), gated)
    with TestClient(app) as test_client, concurrent_calls(2) as pool:
        gated.gate.set()  # the warm-up is through
        test_client.post("/predict", files=multipart([photos["coffee.jpg"]]))
        gated.gate.clear()
        gated.entered.clear()
        first = pool.submit(test_client.post, "/predict", files=multipart([photos["coffee.jpg"]]))
        assert gated.entered.wait(10)
        second = pool.submit(test_client.post, "/predict", files=multipart([photos["chelsea.jpg"]]))
        deadline = time.monotonic() + 10
        while metric(test_client, "paddle_resnet_queue_depth") < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        full = test_client.post("/predict", files=multipart([photos["astronaut.png"]]))
        assert_error(full, 503, "busy", "the server holds 2 images, at most 2 (--max-queue); retry later")
        assert full.headers["retry-after"] == "1"
        assert_error(first.result(), 503, "busy", "not answered within 0.5 s (--request-timeout)")
        gated.gate.set()
        assert second.result().status_code in (200, 503)  # its own 0.5 s may have passed behind the first
        assert test_client.post("/predict", files=multipart([photos["coffee.jpg"]])).status_code == 200


def test_a_killed_decoding_worker_is_replaced(client, photos):
    pool = client.app.state.service.pool
    [pid] = pool.pids()
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:  # until the pool has reaped it
        time.sleep(0.02)
    response = client.post("/predict", files=multipart([photos["coffee.jpg"]]))
    assert response.status_code == 200, response.text
    assert len(pool.pids()) == 1 and pool.pids() != [pid]


def test_demo_page_is_one_static_file(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert 'id="file"' in page.text and "predict?top_k=" in page.text and "http" not in page.text.split("<script>")[1]


def test_cli_user_errors_are_one_line(model_dir, tmp_path, capsys):
    def error_of(*argv):
        code = serve.main(list(argv), prog="paddle-resnet serve")
        return code, capsys.readouterr().err.strip()

    missing = tmp_path / "nowhere"
    code, err = error_of("--model-dir", str(missing))
    assert code == 1 and err.startswith(f"paddle-resnet serve: error: the inference directory {missing} does not "
                                        f"exist") and "\n" not in err
    (tmp_path / "empty_token").write_text("  \n")
    code, err = error_of("--model-dir", model_dir, "--token-file", str(tmp_path / "empty_token"))
    assert (code, err) == (1, f"paddle-resnet serve: error: --token-file {short_repr(str(tmp_path / 'empty_token'))} "
                              f"must hold one token of 1 to 4096 printable ASCII characters without spaces")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, err = error_of("--model-dir", model_dir, "--backend", "paddle", "--port", str(port))
    assert (code, err) == (1, f"paddle-resnet serve: error: cannot listen on --host 127.0.0.1 --port {port}: "
                              f"Address already in use")
    with pytest.raises(SystemExit) as stop:
        serve.parse_args(["--model-dir", model_dir, "--max-images", "9", "--max-queue", "8"])
    assert stop.value.code == 2 and "--max-images 9 is more than --max-queue 8" in capsys.readouterr().err


def test_a_paddleclas_export_is_served_as_predict_reads_it(photos, tmp_path):
    """A folder PaddleClas's export writes (the program and weights, no inference.yml): PaddleClas's default
    preprocessing, class ids for names, the scores offline prediction gives."""
    paddle.seed(0)
    model = build_model("resnet18", num_classes=len(LABELS))
    model.eval()
    spec = [paddle.static.InputSpec([None, 3, 224, 224], "float32", name="x")]
    paddle.jit.save(paddle.jit.to_static(model, input_spec=spec), str(tmp_path / "inference"))
    assert not (tmp_path / "inference.yml").exists()
    paddleclas_predictor = Predictor(tmp_path, backend="paddle", max_batch_size=8)
    paths = [photos["coffee.jpg"], photos["rocket_cmyk.jpg"]]
    with TestClient(create_app(settings_for(str(tmp_path)), paddleclas_predictor)) as test_client:
        response = test_client.post("/predict", files=multipart(paths))
        model_info = test_client.get("/model").json()
    assert response.status_code == 200
    assert_same_records(response.json()["predictions"], offline_records(paddleclas_predictor, paths))
    assert model_info["input_shape"] == [3, 224, 224] and model_info["classes"]["names"] == [str(i) for i in range(10)]


SERVE_EXTRA = ("fastapi", "uvicorn", "starlette", "multipart", "prometheus_client", "h11")


def module_level_imports(path):
    """The modules a file imports when it is imported (not those imported inside its functions)."""
    import ast
    tree = ast.parse(open(path, encoding="utf-8").read())
    names = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names.append("." * node.level + (node.module or ""))
    return names


def test_only_the_serving_modules_import_the_serve_extra():
    """The package imports without FastAPI and company: they are imported at module level only by the serving
    modules, which nothing imports at module level (the command imports them when it runs)."""
    package = os.path.join(ROOT, "paddle_resnet")
    serving = os.path.join(package, "deploy", "serving")
    offenders = []
    for folder, _, names in os.walk(package):
        for name in (n for n in names if n.endswith(".py")):
            path = os.path.join(folder, name)
            imports = module_level_imports(path)
            uses_extra = any(module.split(".")[0] in SERVE_EXTRA for module in imports)
            imports_serving = any("serving" in module for module in imports)
            if os.path.dirname(path) != serving and (uses_extra or imports_serving):
                offenders.append(os.path.relpath(path, ROOT))
            if path == os.path.join(serving, "__init__.py") and (uses_extra or imports_serving):
                offenders.append(os.path.relpath(path, ROOT))
    assert offenders == []


def test_without_the_serve_extra_the_command_says_what_to_install(monkeypatch, capsys):
    for module in ("fastapi", "uvicorn", "multipart", "prometheus_client"):
        monkeypatch.setitem(sys.modules, module, None)  # find_spec: not installed
    assert serve.main(["--model-dir", "x"], prog="paddle-resnet serve") == 1
    assert capsys.readouterr().err == ("paddle-resnet serve: error: serving needs fastapi, uvicorn, python-multipart, "
                                       'prometheus-client: pip install -e ".[serve]"\n')


# ---- a real server on a thread: sockets, slow clients, the page in a browser ------------------------------------

@contextlib.contextmanager
def server_on_thread(app):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(serve.uvicorn_config(app))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "the server did not start"
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(30)


@pytest.fixture(scope="module")
def live_port(model_dir, predictor):
    with server_on_thread(create_app(settings_for(model_dir), predictor)) as port:
        yield port


def read_answer(sock, seconds):
    sock.settimeout(seconds)
    data = b""
    with contextlib.suppress(OSError):
        while chunk := sock.recv(4096):
            data += chunk
    return data


def test_slow_clients_get_408_at_the_read_deadline_while_others_are_served(live_port, photos):
    """A slowloris client (headers one byte at a time) and one that stops halfway through its body are cut off
    at the 1 s read deadline; a normal request meanwhile is answered at once."""
    started = time.monotonic()
    slow_headers = socket.create_connection(("127.0.0.1", live_port))
    slow_headers.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\n")
    slow_body = socket.create_connection(("127.0.0.1", live_port))
    slow_body.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 1000\r\n\r\n{\"images\": [")
    with httpx.Client(base_url=f"http://127.0.0.1:{live_port}") as http:
        assert http.post("/predict", files=multipart([photos["coffee.jpg"]])).status_code == 200
    assert time.monotonic() - started < 0.9
    with contextlib.suppress(OSError):
        for _ in range(10):  # a byte every 0.1 s: never a whole header line
            slow_headers.sendall(b"X")
            time.sleep(0.1)
    answers = [read_answer(sock, 5) for sock in (slow_headers, slow_body)]
    elapsed = time.monotonic() - started
    expected = (b'{"error":"the request did not arrive whole within 1 s (--read-timeout)","kind":"read_timeout"}')
    for answer in answers:
        assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n") and answer.endswith(expected)
    assert 1.0 <= elapsed < 3.0
    with httpx.Client(base_url=f"http://127.0.0.1:{live_port}") as http:
        assert metric(http, 'paddle_resnet_errors_total{kind="read_timeout"}') == 1  # the body's; headers: no app


@pytest.mark.slow
@pytest.mark.parametrize("request_bytes", [b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000],
                         ids=["not HTTP", "16 KiB of headers without their end"])
def test_malformed_http_is_a_json_400(live_port, request_bytes):
    with socket.create_connection(("127.0.0.1", live_port)) as sock:
        sock.sendall(request_bytes)
        answer = read_answer(sock, 5)
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert answer.endswith(b'{"error":"Invalid HTTP request received.","kind":"bad_http"}')


def test_demo_page_in_headless_chromium_shows_the_apis_top_1(live_port, photos):
    sync_api = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    url = f"http://127.0.0.1:{live_port}"
    api_top = httpx.post(f"{url}/predict?top_k=5", files=multipart([photos["chelsea.jpg"]])).json()["predictions"][0]
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(url + "/")
            page.wait_for_function("document.getElementById('model').textContent.includes('classes')")
            assert page.text_content("#model") == "resnet18: 10 classes, paddle, fp32"
            page.set_input_files("#file", photos["chelsea.jpg"])
            page.wait_for_selector("#results li")
            rows = page.query_selector_all("#results li")
            shown = [(row.get_attribute("data-class-id"), row.query_selector(".name").text_content(),
                      row.query_selector(".score").text_content()) for row in rows]
        finally:
            browser.close()
    assert len(shown) == 5
    assert shown[0] == (str(api_top["class_ids"][0]), api_top["label_names"][0], f"{api_top['scores'][0]:.4f}")
    assert [name for _, name, _ in shown] == api_top["label_names"]


# ---- the command in a subprocess: SIGTERM, workers ------------------------------------------------------------

@contextlib.contextmanager
def serve_command(*args):
    """``tools/serve.py ARGS --port 0 -v`` -> (its process, port, a function returning its log so far)."""
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen([sys.executable, "tools/serve.py", "--port", "0", "-v", *args], cwd=ROOT,
                                   stderr=log, text=True, env={**os.environ, "PYTHONPATH": ROOT},
                                   start_new_session=True)  # its own group: a failed test's kill takes its workers

        def logged():
            log.seek(0)
            return log.read()
        try:
            port = wait_for_port(process, logged)
            wait_until_ready(port, process, logged)
            yield process, port, logged
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(30)


def wait_for_port(process, logged, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = re.search(r"serving .* on http://127\.0\.0\.1:(\d+)/", logged())
        if found:
            return int(found.group(1))
        assert process.poll() is None, logged()
        time.sleep(0.1)
    pytest.fail(f"no address printed: {logged()}")


def wait_until_ready(port, process, logged, seconds=120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, logged()
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    pytest.fail(f"the server was not ready in time: {logged()}")


def multipart_body(path):
    boundary = "b0undary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{os.path.basename(path)}\""
            f"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", head + open(path, "rb").read() + tail


def test_sigterm_finishes_the_request_in_flight_refuses_new_ones_and_exits_0(model_dir, predictor, photos):
    with serve_command("--model-dir", model_dir, "--backend", "paddle", "--read-timeout", "20") as (process, port, _):
        content_type, body = multipart_body(photos["coffee.jpg"])
        in_flight = socket.create_connection(("127.0.0.1", port))
        in_flight.sendall(f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
                          f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:len(body) // 2])
        time.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        refused = False
        while not refused and time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                time.sleep(0.05)
            except ConnectionRefusedError:
                refused = True
        assert refused, "still accepting connections after SIGTERM"
        assert process.poll() is None  # waiting for the request in flight
        in_flight.sendall(body[len(body) // 2:])
        answer = read_answer(in_flight, 20)
        assert process.wait(30) == 0
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert_same_records(json.loads(payload)["predictions"], offline_records(predictor, [photos["coffee.jpg"]]))


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def command_line(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_with_two_workers_a_killed_worker_is_replaced_and_the_server_keeps_answering(model_dir, photos):
    with serve_command("--model-dir", model_dir, "--backend", "paddle", "--workers", "2") as (process, port, logged):
        url = f"http://127.0.0.1:{port}/predict"
        workers = [pid for pid in children(process.pid) if "spawn_main" in command_line(pid)]
        assert len(workers) == 2, ([command_line(pid) for pid in children(process.pid)], logged())
        os.kill(workers[0], signal.SIGKILL)
        answered = [httpx.post(url, files=multipart([photos["coffee.jpg"]]), timeout=30).status_code
                    for _ in range(5)]
        assert answered == [200] * 5  # the other worker answers meanwhile
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            now = [pid for pid in children(process.pid) if "spawn_main" in command_line(pid)]
            if len(now) == 2 and workers[0] not in now:
                break
            time.sleep(0.2)
        assert len(now) == 2 and workers[1] in now and workers[0] not in now, logged()
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
