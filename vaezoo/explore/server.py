"""The explorer's web server: Python's own ``http.server``, one page and a small JSON API.

Offline and private by construction: the page is one file with its script and styles inline, it
loads nothing from anywhere else, and the Content-Security-Policy header forbids it to (every
fetch, image, script and style must come from this server or be inline; images are data URLs).
The server answers only requests addressed to the host it listens on (a page of another site that
rebinds a name to 127.0.0.1 is refused), reads bodies up to a limit, and never logs requests.
"""

from __future__ import annotations

import json
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any, Callable

from ..errors import DataError, UsageError
from .session import Explorer, MAX_UPLOAD_BYTES

__all__ = ["ExplorerServer", "serve", "CONTENT_SECURITY_POLICY"]

CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                           "img-src data: blob:; connect-src 'self'; form-action 'none'; base-uri 'none'; "
                           "frame-ancestors 'none'")
MAX_BODY_BYTES = 2 * MAX_UPLOAD_BYTES  # two uploads (interpolation) in base64


def _page() -> bytes:
    return resources.files(__package__).joinpath("page.html").read_bytes()


class _Handler(BaseHTTPRequestHandler):
    server: "ExplorerServer"
    server_version = "vaezoo-explore"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass  # nothing about the requests is written anywhere

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _host_ok(self) -> bool:
        if self.headers.get("Host") in self.server.allowed_hosts:
            return True
        self._json(HTTPStatus.MISDIRECTED_REQUEST, {"error": "this server answers requests to its own address only"})
        return False

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if not self._host_ok():
            return
        if self.path in ("/", "/index.html"):
            self._send(HTTPStatus.OK, self.server.page, "text/html; charset=utf-8")
        elif self.path == "/api/card":
            self._json(HTTPStatus.OK, self.server.explorer.card())
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no such page: {self.path[:80]}"})

    def do_POST(self) -> None:  # noqa: N802
        if not self._host_ok():
            return
        route = self.server.routes.get(self.path)
        if route is None:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no such request: {self.path[:80]}"})
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self.close_connection = True  # the body is not read: the connection cannot carry another request
            self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                       {"error": f"a request body is at most {MAX_BODY_BYTES:,} bytes"})
            return
        try:
            request = json.loads(self.rfile.read(length) or b"{}")
            if not isinstance(request, dict):
                raise UsageError("expected a JSON object")
            self._json(HTTPStatus.OK, route(request))
        except json.JSONDecodeError as exc:
            self._json(HTTPStatus.BAD_REQUEST, {"error": f"the request is not JSON ({exc.msg})"})
        except (UsageError, DataError) as exc:  # the product's own messages, shown on the page
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
        except Exception as exc:  # noqa: BLE001 - the page gets one line, the server keeps serving
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"{type(exc).__name__}: {exc}"})


class ExplorerServer(ThreadingHTTPServer):
    """Serves one :class:`Explorer` on ``host:port`` (port 0: a free one); ``url`` says where."""

    daemon_threads = True

    def __init__(self, explorer: Explorer, host: str = "127.0.0.1", port: int = 0):
        super().__init__((host, port), _Handler)
        self.explorer, self.page = explorer, _page()
        port = self.server_address[1]
        names = {host, "localhost", "127.0.0.1"} if host in ("127.0.0.1", "localhost") else {host}
        self.allowed_hosts = {f"{name}:{port}" for name in names} | {f"[{host}]:{port}"}
        self.routes: dict[str, Callable[[dict], dict]] = {
            "/api/samples": explorer.samples, "/api/base": explorer.base, "/api/decode": explorer.decode,
            "/api/resample": explorer.resample_code, "/api/interpolate": explorer.interpolate,
            "/api/reconstruct": explorer.reconstruct,
        }

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"


def serve(explorer: Explorer, host: str = "127.0.0.1", port: int = 0) -> tuple[ExplorerServer, threading.Thread]:
    """Start serving in a background thread; stop with ``server.shutdown()``."""
    server = ExplorerServer(explorer, host, port)
    thread = threading.Thread(target=server.serve_forever, name="vaezoo-explore", daemon=True)
    thread.start()
    return server, thread
