"""What a request may be, and the one-line JSON error for everything else: the body cap, the image count cap,
the read deadline (a slowloris client is cut off), the bearer token, and parsing images out of multipart or
JSON bodies. The pixel cap is the decoder's own (``data.transforms.MAX_IMAGE_PIXELS``)."""
import base64
import binascii
import hmac
import json
from dataclasses import dataclass

import h11
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from uvicorn.protocols.http.h11_impl import H11Protocol

from ...errors import InputError, short_repr

IMAGE_FIELDS = ("image", "images")  # multipart file fields read; JSON: {"images": [...], "top_k": k}
JSON_KEYS = ("images", "top_k")
JSON_IMAGE_KEYS = ("data", "name")
MAX_FORM_FIELDS = 8  # top_k and a few stray text fields, not thousands
MAX_TOKEN_BYTES = 4096
READ_TIMEOUT_STATE = "paddle_resnet.read_timeout"  # the lifespan state key DeadlineH11Protocol reads
TIMED_OUT_SCOPE = "paddle_resnet.timed_out"  # set in a request's scope when its read deadline passed


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 20 << 20  # one request's body, multipart or JSON (base64 adds a third)
    max_images: int = 16  # images in one request
    max_queue: int = 64  # images accepted and not yet answered; beyond it 503 with Retry-After
    read_timeout: float = 10.0  # seconds for a request (headers and body) to arrive once it has begun
    request_timeout: float = 30.0  # seconds to answer a request once it has been read
    retry_after: int = 1  # seconds, in the Retry-After of a 503


class RequestError(Exception):
    """A request the server answers with ``status`` and the one-line JSON ``{"error": message, "kind": kind}``."""

    def __init__(self, status, kind, message, headers=None):
        super().__init__(" ".join(str(message).split()))
        self.status, self.kind, self.headers = status, kind, headers or {}

    def body(self):
        return {"error": str(self), "kind": self.kind}


def busy(message, limits):
    return RequestError(503, "busy", message, {"Retry-After": str(limits.retry_after)})


@dataclass
class ImageInput:
    name: str
    data: bytes


def read_token_file(path):
    """The bearer token in ``path`` (surrounding whitespace dropped); InputError for an empty or unreadable file."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_TOKEN_BYTES + 1)
    except OSError as error:
        raise InputError(f"--token-file {short_repr(path)}: {error.strerror or error}") from None
    token = raw.strip()
    if not token or len(raw) > MAX_TOKEN_BYTES or any(byte < 0x21 or byte > 0x7e for byte in token):
        raise InputError(f"--token-file {short_repr(path)} must hold one token of 1 to {MAX_TOKEN_BYTES} printable "
                         f"ASCII characters without spaces")
    return token.decode("ascii")


def check_token(authorization, token):
    """RequestError 401 unless ``authorization`` is ``Bearer <token>`` (no token set: every request passes)."""
    if token is None:
        return
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise RequestError(401, "unauthorized", "missing or wrong bearer token (Authorization: Bearer <token>)",
                           {"WWW-Authenticate": "Bearer"})


async def read_body(request, limits):
    """The request's body, refused with 413 past ``max_body_bytes`` (from Content-Length before reading, or as
    it streams in). The read deadline is the protocol's (``DeadlineH11Protocol``)."""
    declared = request.headers.get("content-length")
    too_large = RequestError(413, "body_too_large", f"the request body is over the {limits.max_body_bytes:,} bytes "
                                                    f"allowed (--max-body-mb)")
    if declared is not None and declared.isdigit() and int(declared) > limits.max_body_bytes:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limits.max_body_bytes:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def parse_top_k(value, default):
    if value is None:
        return default
    text = str(value)
    if not text.isdigit() or int(text) < 1:  # "1e3", "-1", "" are refused, bools are not digits
        raise RequestError(400, "bad_top_k", f"top_k must be an integer >= 1, got {short_repr(value)}")
    return int(text)


async def parse_images(content_type, headers, body, query_top_k, default_top_k, limits):
    """-> ([ImageInput], top_k) from a multipart or JSON body; RequestError for anything else."""
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type == "multipart/form-data":
        images, form_top_k = await _multipart_images(headers, body, limits)
        top_k = parse_top_k(query_top_k if query_top_k is not None else form_top_k, default_top_k)
    elif media_type == "application/json":
        images, json_top_k = _json_images(body, limits)
        top_k = parse_top_k(query_top_k if query_top_k is not None else json_top_k, default_top_k)
    else:
        raise RequestError(415, "unsupported_media_type",
                           f"Content-Type {short_repr(content_type or '')} is not read; send multipart/form-data with "
                           f"files in fields named {' or '.join(IMAGE_FIELDS)}, or application/json "
                           f'{{"images": [{{"data": "<base64>", "name": "a.jpg"}}]}}')
    if not images:
        raise RequestError(400, "no_image", f"the request holds no image; send files in fields named "
                                            f"{' or '.join(IMAGE_FIELDS)} (multipart) or a non-empty \"images\" (JSON)")
    return images, top_k


def _too_many_images(limits):
    return RequestError(413, "too_many_images", f"a request may hold at most {limits.max_images} images "
                                                f"(--max-images); this one holds more")


async def _multipart_images(headers, body, limits):
    async def stream():
        yield body

    parser = MultiPartParser(headers, stream(), max_files=limits.max_images, max_fields=MAX_FORM_FIELDS,
                             max_part_size=1024)
    try:
        form = await parser.parse()
    except MultiPartException as error:
        if error.message.startswith("Too many files"):
            raise _too_many_images(limits) from None
        raise RequestError(400, "bad_multipart", f"malformed multipart body: {error.message}") from None
    images, top_k = [], None
    try:
        for field, value in form.multi_items():
            if isinstance(value, UploadFile):
                if field not in IMAGE_FIELDS:
                    raise RequestError(400, "wrong_field", f"multipart file field {short_repr(field)} is not read; "
                                                           f"send images in fields named {' or '.join(IMAGE_FIELDS)}")
                images.append(ImageInput(value.filename or f"images[{len(images)}]", await value.read()))
            elif field == "top_k":
                top_k = value
            else:
                raise RequestError(400, "wrong_field", f"multipart field {short_repr(field)} is not read; the fields "
                                                       f"are {', '.join(IMAGE_FIELDS)} (files) and top_k")
    finally:
        await form.close()
    return images, top_k


def _json_images(body, limits):
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as error:  # RecursionError: nested 100,000 deep
        raise RequestError(400, "bad_json", f"the body is not JSON ({str(error)[:100]})") from None
    if not isinstance(document, dict) or set(document) - set(JSON_KEYS):
        extra = sorted(set(document) - set(JSON_KEYS)) if isinstance(document, dict) else None
        raise RequestError(400, "wrong_field", f"the JSON body must be an object with the keys "
                                               f"{', '.join(JSON_KEYS)}; got {short_repr(extra or document)}")
    items = document.get("images")
    if not isinstance(items, list):
        raise RequestError(400, "wrong_field", f'"images" must be a list of base64 strings or {{"data", "name"}} '
                                               f"objects, got {short_repr(items)}")
    if len(items) > limits.max_images:
        raise _too_many_images(limits)
    top_k = document.get("top_k")
    if isinstance(top_k, bool) or (top_k is not None and not isinstance(top_k, int)):
        raise RequestError(400, "bad_top_k", f"top_k must be an integer >= 1, got {short_repr(top_k)}")
    return [_json_image(item, index) for index, item in enumerate(items)], top_k


def _json_image(item, index):
    where = f"images[{index}]"
    name = None
    if isinstance(item, dict):
        if set(item) - set(JSON_IMAGE_KEYS) or not isinstance(item.get("data"), str):
            if "url" in item:
                _refuse_url(where)
            raise RequestError(400, "wrong_field", f'{where} must be {{"data": "<base64>", "name": "..."}} '
                                                   f"(name optional), got the keys {short_repr(sorted(item))}")
        name, item = item.get("name"), item["data"]
        if name is not None and not isinstance(name, str):
            raise RequestError(400, "wrong_field", f"{where}.name must be a string, got {short_repr(name)}")
    if not isinstance(item, str):
        raise RequestError(400, "wrong_field", f"{where} must be a base64 string, got {short_repr(item)}")
    return ImageInput(name or where, _base64_bytes(item, where))


def _refuse_url(where):
    raise RequestError(400, "url_refused", f"{where}: image URLs are refused, the server fetches nothing; send the "
                                           f"image's bytes (a multipart file, or base64 in JSON)")


def _base64_bytes(text, where):
    if text.startswith(("http://", "https://", "ftp://", "file:")):
        _refuse_url(where)
    if text.startswith("data:"):  # a browser's data URL: data:image/png;base64,<data>
        header, _, text = text.partition(",")
        if not header.endswith(";base64"):
            raise RequestError(400, "bad_base64", f"{where}: a data URL must be base64 (data:<type>;base64,...)")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(400, "bad_base64", f"{where} is not valid base64") from None


def error_bytes(status, reason, kind, message):
    """A whole HTTP/1.1 error response with the JSON body, for answers written below the application."""
    payload = json.dumps({"error": message, "kind": kind}, separators=(",", ":")).encode()
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\nconnection: close\r\n"
            f"content-length: {len(payload)}\r\n\r\n").encode() + payload


class DeadlineH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with a read deadline: once a request has begun (a new connection, or the first
    byte after a keep-alive pause, which uvicorn's ``timeout_keep_alive`` bounds) it must arrive whole, headers and
    body, within ``read_timeout`` seconds, else 408 and the connection is closed; the application's pending read
    then ends as a disconnect. uvicorn has no such timeout of its own, so a client sending a byte a second (a
    slowloris) would hold its connection, and a place under ``--max-connections``, forever. Its 400 for a
    malformed request (or 16 KiB of headers without their end) is the JSON error of every other 4xx."""

    @property
    def read_timeout(self):
        """The application's (its lifespan puts it in the server's state), so that uvicorn's worker processes,
        which import this class by name, have it too."""
        return self.app_state.get(READ_TIMEOUT_STATE, Limits.read_timeout)

    def connection_made(self, transport):
        self._deadline = None
        super().connection_made(transport)
        self._arm()

    def data_received(self, data):
        if self._deadline is None:
            self._arm()
        super().data_received(data)
        if self.conn.their_state in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.ERROR):
            self._disarm()

    def on_response_complete(self):
        super().on_response_complete()
        self._disarm()  # idle until the next request: uvicorn's keep-alive timeout

    def connection_lost(self, exc):
        self._disarm()
        super().connection_lost(exc)

    def send_400_response(self, msg):
        self.transport.write(error_bytes(400, "Bad Request", "bad_http", msg))
        self.transport.close()

    def _arm(self):
        self._deadline = self.loop.call_later(self.read_timeout, self._timed_out)

    def _disarm(self):
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _timed_out(self):
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            if self.cycle.response_started:  # cannot happen while the body is unread; never two answers
                self.transport.close()
                return
            self.cycle.scope[TIMED_OUT_SCOPE] = True
            self.cycle.disconnected = True  # the application's read ends, and what it sends is dropped
            self.cycle.message_event.set()
        self.transport.write(error_bytes(408, "Request Timeout", "read_timeout",
                                         f"the request did not arrive whole within {self.read_timeout:g} s "
                                         f"(--read-timeout)"))
        self.transport.close()
