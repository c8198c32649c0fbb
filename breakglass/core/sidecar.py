"""`breakglass serve`: an HTTP sidecar for nginx `auth_request` (docs/integrations/nginx.md).

nginx sends a subrequest per protected request; the sidecar answers 204 (let it through,
with the responder in `X-Breakglass-Subject`) or 401 (with the reason in
`X-Breakglass-Error`). One sidecar serves one audience (the service it guards). The
bundle is verified once and re-read when its file changes; a bad new bundle never
replaces the last good one. Standard library only, listening on loopback by default.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from breakglass.core.bundle import VerifiedBundle, verify_bundle
from breakglass.core.errors import ConflictingBundle, VerificationError
from breakglass.core.token import verify_token

MAX_FILE_BYTES = 8 * 1024 * 1024


class BundleSource:
    """The newest good bundle from disk, re-verified whenever the file changes.

    Rollback is refused even without a state directory: the version in use is the floor
    (`min_version`) for every later file, so an older, validly signed bundle put back on
    disk cannot un-revoke tokens, and a different bundle carrying the same version is
    refused as equivocation. `--state` also keeps the floor across restarts.
    """

    def __init__(self, *, bundle_path: str, roots_path: str, state_dir=None, clock=time.time):
        self.bundle_path, self.roots_path, self.state_dir = bundle_path, roots_path, state_dir
        self.clock = clock
        self._lock = threading.Lock()
        self._signature: tuple | None = None
        self._bundle: VerifiedBundle | None = None
        self.problem = "no bundle loaded yet"

    def current(self) -> VerifiedBundle | None:
        try:
            stat = os.stat(self.bundle_path)
            signature = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        except OSError as exc:
            self.problem = f"cannot read bundle: {exc.strerror}"
            return self._bundle
        if signature != self._signature:
            with self._lock:
                if signature != self._signature:
                    self._reload(signature)
        return self._bundle

    def _reload(self, signature: tuple) -> None:
        try:
            with open(self.bundle_path, "rb") as bundle, open(self.roots_path, "rb") as roots:
                raw_bundle, raw_roots = bundle.read(MAX_FILE_BYTES + 1), roots.read(MAX_FILE_BYTES)
            current = self._bundle
            # An expired bundle is kept for kit tokens only (verify_token refuses the rest).
            candidate = verify_bundle(
                raw_bundle,
                raw_roots,
                now=int(self.clock()),
                state_dir=self.state_dir,
                min_version=None if current is None else current.version,
                allow_expired=True,
            )
            if current is not None and candidate.version == current.version:
                if candidate.payload != current.payload:
                    raise ConflictingBundle(
                        f"a different bundle with the same version {current.version} is "
                        "already in use by this sidecar"
                    )
            self._bundle = candidate
            self.problem = ""
        except (OSError, VerificationError) as exc:
            # Keep serving with the last good bundle; it still expires on its own date.
            self.problem = f"new bundle refused, keeping the previous one: {exc}"
            print(f"breakglass serve: {self.problem}", file=sys.stderr, flush=True)
        self._signature = signature


def handler_for(
    *,
    source: BundleSource,
    audience: str,
    scope: str | None,
    state_dir=None,
    max_uses: int | None = None,
    leeway: int = 60,
    allow_drill: bool = False,
    clock: Callable[[], float] = time.time,
):
    class Handler(BaseHTTPRequestHandler):
        server_version = "breakglass-auth"
        sys_version = ""
        # Keep-alive for clients that ask (nginx with `proxy_http_version 1.1` and an
        # upstream `keepalive`): no new connection and thread per subrequest. Every
        # answer carries Content-Length, which HTTP/1.1 persistence needs; HTTP/1.0
        # requests (nginx's default) are still answered and closed.
        protocol_version = "HTTP/1.1"
        timeout = 30  # a client that sends nothing must not hold a thread forever

        def do_GET(self):  # noqa: N802 - http.server's naming
            self._decide()

        do_HEAD = do_POST = do_GET  # noqa: N815

        def _decide(self):
            if self.headers.get("Content-Length", "0").strip() not in ("", "0") or (
                self.headers.get("Transfer-Encoding")
            ):
                # The body is never read, so on a kept-alive connection its bytes would be
                # taken for the next request (a smuggled one): answer this one and close.
                self.close_connection = True
            token = self.headers.get("X-Breakglass-Token") or ""
            authorization = self.headers.get("Authorization") or ""
            if not token and authorization[:7].lower() == "bearer ":
                token = authorization[7:].strip()
            # nginx can require extra scopes per location with proxy_set_header.
            wanted = " ".join(filter(None, [scope, self.headers.get("X-Breakglass-Scope")]))
            bundle = source.current()
            try:
                if bundle is None:
                    raise VerificationError(source.problem)
                claims = verify_token(
                    token,
                    bundle,
                    audience=audience,
                    scope=wanted or None,
                    now=int(clock()),
                    leeway=leeway,
                    state_dir=state_dir,
                    max_uses=max_uses,
                    allow_drill=allow_drill,
                )
            except VerificationError as exc:
                self._answer(401, {"X-Breakglass-Error": exc.code}, reason=str(exc))
                return
            except Exception as exc:  # fail closed, never a traceback to the client
                self._answer(500, {"X-Breakglass-Error": "internal"}, reason=type(exc).__name__)
                return
            self._answer(
                204,
                {
                    "X-Breakglass-Subject": claims["sub"],
                    "X-Breakglass-Scope": claims.get("scope", ""),
                    "X-Breakglass-Jti": claims["jti"],
                    "X-Breakglass-Drill": "true" if claims.get("drill") else "false",
                    **({"X-Breakglass-Kit": claims["kit"]} if "kit" in claims else {}),
                },
                reason=f"accepted {claims['jti']} for {claims['sub']}",
            )

        def _answer(self, status: int, headers: dict, *, reason: str) -> None:
            self._reason = reason  # read by log_request, which send_response calls
            self.send_response(status)
            for name, value in headers.items():
                # Header values must be latin-1 and one line: escape anything else.
                self.send_header(name, ascii(str(value))[1:-1])
            if status == 401:
                self.send_header("WWW-Authenticate", 'Bearer error="invalid_token"')
            self.send_header("Content-Length", "0")
            self.end_headers()

        def send_error(self, code, message=None, explain=None):
            """http.server's answer to a request it could not parse (`GET /auth HTTP/1.1 x`,
            `HTTP/9.9`, TLS bytes, an unknown method): a bare 400 and one log line, never a
            page, never a traceback. Nothing was verified, so nothing is let through."""
            status = 400 if code in (400, 505) else code
            self.close_connection = True
            # http.server leaves the version at HTTP/0.9 (no status line) until it parsed one;
            # the request's own version is unknown, so answer as the oldest that has one.
            self.request_version = self.protocol_version = "HTTP/1.0"
            self._answer(status, {"X-Breakglass-Error": "bad_request"}, reason=message or "")

        def log_message(self, format, *args):  # noqa: A002 - the base class's signature
            pass

        def log_request(self, code="-", size="-"):
            # `path` is unset when the request line could not be parsed.
            line = {
                "status": int(code) if str(code).isdigit() else code,
                "path": ascii(getattr(self, "path", ""))[1:-1][:200],
                "reason": getattr(self, "_reason", ""),
            }
            print(json.dumps(line), file=sys.stderr, flush=True)

    return Handler


def serve(args) -> int:
    """Run until interrupted (called by `breakglass serve`)."""
    host, _, port = args.listen.rpartition(":")
    source = BundleSource(bundle_path=args.bundle, roots_path=args.roots, state_dir=args.state)
    if source.current() is None:
        print(f"breakglass serve: {source.problem}", file=sys.stderr)
        return 2
    handler = handler_for(
        source=source,
        audience=args.audience,
        scope=args.scope,
        state_dir=args.state,
        max_uses=args.max_uses,
        leeway=args.leeway,
        allow_drill=args.allow_drill,
    )
    server = ThreadingHTTPServer((host or "127.0.0.1", int(port)), handler)
    print(f"breakglass serve: {args.audience} on {args.listen}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
