"""Serving the review app: a socket on 127.0.0.1 (or --host, with a warning), a token, uvicorn."""

from __future__ import annotations

import socket
from typing import Callable

from datacurate.core.errors import UserError
from datacurate.review.app import LOCAL_HOSTS
from datacurate.core.workspace import Workspace

LOCAL = "127.0.0.1"


def need_server() -> None:
    """UserError naming the extra when Starlette or uvicorn is missing."""
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise UserError("datacurate review needs Starlette and uvicorn: pip install 'datacurate[review]'") from None


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: a free one); UserError when the address cannot be had."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(64)
    except OSError as exc:
        sock.close()
        raise UserError(f"cannot serve on {host}:{port} ({exc.strerror or exc})") from None
    return sock


def serve(ws: Workspace, *, stages: tuple[str, ...] = (), port: int = 0, host: str | None = None, browser: bool = True,
          started: Callable[[str], None] = print, warn: Callable[[str], None] = print) -> None:
    """Serve the app for `ws` until interrupted; `started(url)` once it listens; open the URL unless not `browser`."""
    import uvicorn

    from datacurate.core.catalog import open_catalog
    from datacurate.review.app import create_app, new_token

    need_server()
    with open_catalog(ws, create=False):
        pass  # no catalog: one line now, not an error page later
    host = host or LOCAL
    if host != LOCAL:
        warn(f"serving on {host}: anyone who can reach it and has the URL can change this workspace")
    sock = bind(host, port)
    token = new_token()
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{sock.getsockname()[1]}/?token={token}"
    app = create_app(ws, token, stages=stages, hosts=LOCAL_HOSTS if host == LOCAL else None)
    started(url)
    if browser:
        import webbrowser

        webbrowser.open(url)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass  # uvicorn shut down cleanly, then passed Ctrl-C on: for a server it is the way to stop
    finally:
        sock.close()
