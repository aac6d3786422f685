"""The explorer's HTTP server: the standard library's ThreadingHTTPServer on loopback.

What it serves is a fixed table: the page and its assets (read from the package once, at start)
and the JSON/binary API of :class:`~vaekit.explore.api.Explorer`. No part of a request path is
ever joined to a file-system path, so there is nothing to traverse. Every request body is capped
(``MAX_BODY``) and validated; a bad request gets a 4xx with a one-line JSON ``error``, and an
unexpected exception a 500 with the exception's type only (the traceback goes to stderr, never to
the page), and the server keeps serving. Bound to loopback, it also checks the ``Host`` header
(DNS rebinding) and the ``Origin`` of POSTs (other web sites' pages cannot use it).

API (``n`` codes of ``D`` numbers; pixels flat in the data's (C, H, W) order)::

    GET  /api/info                         the static info of Explorer.info()
    GET  /api/item?i=K                     {"x", "code", "label"} of held-out example K
    GET  /api/plan                         the decoder/encoder as the page runs them (export.page_plan)
    POST /api/decode  {"z", "n", "label"}  -> float32 little-endian (n, P): model.decode(z)
    POST /api/sample  {"n", "temperature", "label", "seed"} -> float32 (n, P): model.sample
    POST /api/encode  {"x", "label"}       -> {"code", "spread", "x", "recon", "score", "percentile"}
    POST /api/upload  <image file bytes>   -> the same, for the file converted like the run's data
"""

from __future__ import annotations

import json
import socket
import sys
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from ..errors import VaekitError
from .api import Explorer
from .images import MAX_BYTES, load_upload

MAX_JSON = 1024 * 1024  # a JSON body: an image of up to ~100k pixels as numbers
SCRIPTS = ("nn.js", "backend.js", "app.js")  # in this order: app.js uses the other two
ASSETS = {"nn.js": "text/javascript", "backend.js": "text/javascript", "app.js": "text/javascript", "style.css": "text/css"}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'")


def read_asset(name: str) -> str:
    """A file of ``vaekit/explore/page`` (package data)."""
    return resources.files("vaekit.explore").joinpath("page", name).read_text(encoding="utf-8")


def served_page() -> str:
    """index.html with its assets linked from /page/ (the exporter inlines them instead)."""
    head = '<link rel="stylesheet" href="/page/style.css">'
    scripts = "".join(f'<script src="/page/{name}"></script>' for name in SCRIPTS)
    return read_asset("index.html").replace("<!--STYLE-->", head).replace("<!--SCRIPTS-->", scripts)


class BadRequest(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


class Handler(BaseHTTPRequestHandler):
    """One request. ``self.server`` is an :class:`ExploreServer`."""

    protocol_version = "HTTP/1.1"  # keep-alive: a pointer move costs one request, not a connection
    server_version = "vaekit-explore"
    sys_version = ""
    timeout = 60  # seconds a socket may stay silent: a client that never sends its body frees its thread
    server: "ExploreServer"

    def setup(self) -> None:
        super().setup()
        # Headers and body go out as two writes; without TCP_NODELAY, Nagle's algorithm holds the
        # second until the client's delayed ACK (~40 ms on Linux): a pointer move would wait for it.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        if self.server.verbose:
            super().log_message(format, *args)

    # ---- responses --------------------------------------------------------------------------

    def _send(self, status: int, body: bytes, ctype: str, cache: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "max-age=60" if cache else "no-store")
        if ctype.startswith("text/html"):
            self.send_header("Content-Security-Policy", CSP)
            self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, value: Any) -> None:
        self._send(status, json.dumps(value, allow_nan=False).encode(), "application/json")

    def _error(self, status: HTTPStatus, message: str) -> None:
        self._json(status, {"error": message})

    # ---- checks -----------------------------------------------------------------------------

    def _check_host(self) -> None:
        allowed = self.server.allowed_hosts
        if allowed is not None and self.headers.get("Host", "") not in allowed:
            raise BadRequest(HTTPStatus.FORBIDDEN, "unexpected Host header (the explorer answers on its own address only)")

    def _body(self, limit: int) -> bytes:
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            raise BadRequest(HTTPStatus.LENGTH_REQUIRED, "send a Content-Length, not a chunked body")
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self.close_connection = True
            raise BadRequest(HTTPStatus.LENGTH_REQUIRED, "a Content-Length header is required")
        n = int(length)
        if n > limit:
            self.close_connection = True  # the body is not read: the connection cannot be reused
            raise BadRequest(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                             f"the request is {n / 2**20:.1f} MiB; the limit is {limit / 2**20:.0f} MiB")
        return self.rfile.read(n)

    def _json_body(self) -> dict[str, Any]:
        try:
            value = json.loads(self._body(MAX_JSON))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise BadRequest(HTTPStatus.BAD_REQUEST, "the body is not valid JSON") from None
        if not isinstance(value, dict):
            raise BadRequest(HTTPStatus.BAD_REQUEST, "the body must be a JSON object")
        return value

    # ---- routing ----------------------------------------------------------------------------

    def _dispatch(self, routes: dict[str, Callable[[], None]]) -> None:
        try:
            self._check_host()
            path = urlsplit(self.path).path
            if path not in routes:
                known = set(self.server.get_routes) | set(self.server.post_routes)
                if path in known:
                    raise BadRequest(HTTPStatus.METHOD_NOT_ALLOWED, f"{self.command} is not allowed here")
                raise BadRequest(HTTPStatus.NOT_FOUND, "not found")
            routes[path](self)  # type: ignore[call-arg]
        except BadRequest as err:
            self._error(err.status, str(err))
        except VaekitError as err:
            self._error(HTTPStatus.BAD_REQUEST, str(err))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as err:  # a bug: say so in one line, keep serving, log the traceback here
            traceback.print_exc(file=sys.stderr)
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"internal error ({type(err).__name__}); see the server's log")

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._dispatch(self.server.get_routes)

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch(self.server.get_routes)

    def do_POST(self) -> None:  # noqa: N802
        origin = self.headers.get("Origin")
        if origin is not None and self.server.allowed_hosts is not None and \
                origin not in {f"http://{h}" for h in self.server.allowed_hosts}:
            self.close_connection = True
            self._error(HTTPStatus.FORBIDDEN, "requests from other sites are refused")
            return
        self._dispatch(self.server.post_routes)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (a malformed request line, a bad header): JSON, no HTML."""
        self.close_connection = True
        try:
            self._error(HTTPStatus(code), message or HTTPStatus(code).phrase)
        except Exception:  # noqa: BLE001 - the socket may be gone; nothing more to say
            pass

    # ---- handlers ---------------------------------------------------------------------------

    def get_index(self) -> None:
        self._send(200, self.server.page, "text/html; charset=utf-8")

    def get_asset(self) -> None:
        name = urlsplit(self.path).path.rsplit("/", 1)[1]
        self._send(200, self.server.assets[name], f"{ASSETS[name]}; charset=utf-8", cache=True)

    def get_favicon(self) -> None:
        self._send(204, b"", "image/x-icon")

    def get_info(self) -> None:
        self._send(200, self.server.info, "application/json")

    def get_plan(self) -> None:
        if self.server.plan is None:
            raise BadRequest(HTTPStatus.NOT_FOUND, "this model's decoder runs in the server only")
        self._send(200, self.server.plan, "application/json")

    def get_item(self) -> None:
        q = parse_qs(urlsplit(self.path).query)
        raw = q.get("i", [""])[0]
        if not raw.isdigit():
            raise BadRequest(HTTPStatus.BAD_REQUEST, "i must be a whole number")
        self._json(200, self.server.explorer.item(int(raw)))

    def post_decode(self) -> None:
        ex, body = self.server.explorer, self._json_body()
        z = ex.check_codes(body.get("z"), body.get("n"))
        out = ex.decode(z, ex.check_label(body.get("label")))
        self._send(200, out.numpy().astype("<f4").tobytes(), "application/octet-stream")

    def post_sample(self) -> None:
        ex, body = self.server.explorer, self._json_body()
        out = ex.sample(ex.check_n(body.get("n")), body.get("temperature", 1.0), ex.check_label(body.get("label")), body.get("seed", 0))
        self._send(200, out.numpy().astype("<f4").tobytes(), "application/octet-stream")

    def post_encode(self) -> None:
        ex, body = self.server.explorer, self._json_body()
        x = ex.convert(ex.check_pixels(body.get("x")))
        self._json(200, ex.analyse(x, ex.check_label(body.get("label"))))

    def post_upload(self) -> None:
        ex = self.server.explorer
        raw = self._body(MAX_BYTES)
        label = self.headers.get("X-Label")
        x = ex.convert(load_upload(raw, ex.model.shape))
        self._json(200, ex.analyse(x, ex.check_label(int(label) if label and label.isdigit() else None)))


class ExploreServer(ThreadingHTTPServer):
    """The server: one Explorer, the page bytes, the route tables."""

    daemon_threads = True  # Ctrl-C stops at once, whatever requests are in flight
    allow_reuse_address = True

    def __init__(self, explorer: Explorer, host: str = "127.0.0.1", port: int = 8765, verbose: bool = False) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, port), Handler)
        self.explorer = explorer
        self.verbose = verbose
        self.page = served_page().encode()
        self.assets = {name: read_asset(name).encode() for name in ASSETS}
        self.info = json.dumps(explorer.info(), allow_nan=False).encode()
        from .export import Unsupported, page_plan  # (export imports this module)

        try:  # the decoder as the page can run it: pointer moves then cost no request
            self.plan: bytes | None = json.dumps(page_plan(explorer), allow_nan=False).encode()
        except Unsupported:
            self.plan = None
        port = self.server_address[1]
        loopback = host in ("127.0.0.1", "localhost", "::1")
        self.allowed_hosts = {f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"} if loopback else None
        self.get_routes: dict[str, Callable[[Handler], None]] = {
            "/": Handler.get_index, "/index.html": Handler.get_index, "/favicon.ico": Handler.get_favicon,
            "/api/info": Handler.get_info, "/api/item": Handler.get_item, "/api/plan": Handler.get_plan,
            **{f"/page/{name}": Handler.get_asset for name in ASSETS},
        }
        self.post_routes: dict[str, Callable[[Handler], None]] = {
            "/api/decode": Handler.post_decode, "/api/sample": Handler.post_sample,
            "/api/encode": Handler.post_encode, "/api/upload": Handler.post_upload,
        }

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}/"


__all__ = ["ExploreServer", "read_asset", "served_page"]
