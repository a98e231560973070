"""The review app: a Starlette application over one workspace, guarded by a token.

Routes (every one needs the token: `?token=` or the X-Datacurate-Token header; a POST needs the
header and a JSON body, so a web page elsewhere cannot post to it without a CORS preflight, which
is never answered):

GET  /                 the triage page            GET  /map            the map page
GET  /api/cards        a page of the queue        GET  /api/map        the map's points
GET  /thumb/<sha256>   a thumbnail (cached)       GET  /image/<sha256> the full-size file
POST /api/act          keep | aside | relabel | apart on cards         POST /api/undo
GET  /api/classes      the workspace's classes

Only files the catalog knows, by content, are served (no path from the request reaches the file
system), and requests whose Host is not the address served are refused (DNS rebinding).
"""

from __future__ import annotations

import hmac
import mimetypes
import secrets
import threading
from typing import Any

from datacurate.core.catalog import open_catalog
from datacurate.core.errors import UserError
from datacurate.core.workspace import Workspace

HEADER = "x-datacurate-token"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def new_token() -> str:
    return secrets.token_urlsafe(24)


def create_app(ws: Workspace, token: str, *, stages: tuple[str, ...] = (),
               hosts: tuple[str, ...] | None = LOCAL_HOSTS):
    """The ASGI app for workspace `ws`; `stages` preselects the stage filter; `hosts`: the Host names accepted
    (None: any, for --host; the token still guards every request)."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.routing import Route

    state = State(ws, token, stages)
    routes = [Route("/", state.index), Route("/map", state.map_page), Route("/api/cards", state.cards),
              Route("/api/map", state.map_points), Route("/api/classes", state.classes),
              Route("/thumb/{sha}", state.thumb), Route("/image/{sha}", state.image),
              Route("/api/act", state.act, methods=["POST"]), Route("/api/undo", state.undo, methods=["POST"])]
    return Starlette(routes=routes, middleware=[Middleware(Guard, token=token, hosts=hosts)])


class Guard:
    """ASGI middleware: the token on every request, the header on POSTs, a local Host, no caching."""

    def __init__(self, app, token: str, hosts: tuple[str, ...] | None):
        self.app, self.token, self.hosts = app, token, hosts

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        from starlette.requests import Request

        request = Request(scope)
        why = self.refused(request)
        if why:
            from starlette.responses import JSONResponse

            return await JSONResponse({"error": why[1]}, status_code=why[0])(scope, receive, send)

        async def no_store(message):
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).extend([(b"cache-control", b"no-store"),
                                                          (b"x-content-type-options", b"nosniff"),
                                                          (b"referrer-policy", b"no-referrer")])
            await send(message)

        return await self.app(scope, receive, no_store)

    def refused(self, request) -> tuple[int, str] | None:
        host = _hostname(request.headers.get("host", ""))
        if self.hosts is not None and host not in self.hosts:
            return 403, f"host {host!r} refused: open the URL datacurate review printed"
        given = request.headers.get(HEADER) if request.method == "POST" else (
            request.headers.get(HEADER) or request.query_params.get("token"))
        if not given or not hmac.compare_digest(given.encode(), self.token.encode()):
            return 403, "missing or wrong token: open the URL datacurate review printed"
        if request.method == "POST" and request.headers.get("content-type", "").split(";")[0] != "application/json":
            return 415, "POST a JSON body (Content-Type: application/json)"
        return None


def _hostname(header: str) -> str:
    """The host of a Host header, without its port ([::1] keeps its brackets)."""
    if header.startswith("["):
        return header.split("]")[0] + "]"
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class State:
    """The endpoints, over one workspace; actions one at a time (the workspace lock is per process)."""

    def __init__(self, ws: Workspace, token: str, stages: tuple[str, ...]):
        self.ws, self.token, self.stages = ws, token, stages
        self.busy = threading.Lock()

    # -- pages ------------------------------------------------------------------------------------
    def index(self, request):
        from starlette.responses import HTMLResponse

        from datacurate.report.review import environment

        text = environment().get_template("review-app.html.j2").render(
            token=self.token, workspace=str(self.ws.root), stage=self.stages[0] if len(self.stages) == 1 else "")
        return HTMLResponse(text)

    def map_page(self, request):
        from starlette.responses import HTMLResponse

        from datacurate.vet.projection import render

        app = {"token": self.token, "thumb": "/thumb/{sha}?token=" + self.token,
               "full": "/image/{sha}?token=" + self.token, "card": "/?token=" + self.token + "#card={id}"}
        return HTMLResponse(render({"method": "", "layouts": {}}, title=f"map: {self.ws.root.name}", thumbs={},
                                   full={}, app=app))

    # -- data -------------------------------------------------------------------------------------
    def cards(self, request):
        from datacurate.review.queue import items, page

        q = request.query_params
        try:
            offset, limit = int(q.get("offset", 0)), int(q.get("limit", 100))
        except ValueError:
            return _error(400, "offset and limit must be whole numbers")
        if offset < 0 or not 1 <= limit <= 1000:
            return _error(400, "offset must be >= 0 and limit between 1 and 1000")
        with open_catalog(self.ws) as cat:
            found = items(self.ws, cat)
        return _json(page(found, stage=q.get("stage", ""), reason=q.get("reason", ""), klass=q.get("class", ""),
                          offset=offset, limit=limit))

    def classes(self, request):
        from datacurate.clean.relabel import classes

        with open_catalog(self.ws) as cat:
            return _json({"classes": classes(self.ws, cat)})

    def map_points(self, request):
        from datacurate.vet.projection import map_data

        with open_catalog(self.ws) as cat:
            return _json(map_data(cat))

    def thumb(self, request):
        from starlette.responses import Response

        from datacurate.report.thumbs import FOLDER, make_thumbnails

        sha = request.path_params["sha"]
        path = self._file_of(sha)
        if path is None:
            return _error(404, "no such picture in the workspace")
        made = make_thumbnails(self.ws.reports / FOLDER, [(path, sha)], workers=1)
        if sha not in made:
            return _error(404, "this picture does not decode")
        return Response((self.ws.reports / FOLDER / made[sha]).read_bytes(), media_type="image/jpeg")

    def image(self, request):
        from starlette.responses import FileResponse

        path = self._file_of(request.path_params["sha"])
        if path is None:
            return _error(404, "no such picture in the workspace")
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return FileResponse(path, media_type=kind if kind.startswith("image/") else "application/octet-stream")

    def _file_of(self, sha: str):
        """The file holding content `sha` (one the catalog knows, in the workspace's folders), or None."""
        if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            return None
        with open_catalog(self.ws) as cat:
            for (path,) in cat.db.execute("SELECT path FROM files WHERE sha256=? ORDER BY status='ok' DESC", (sha,)):
                full = self.ws.abs(path)
                if full.is_file():
                    return full
        return None

    # -- actions ----------------------------------------------------------------------------------
    async def act(self, request):
        from starlette.concurrency import run_in_threadpool

        from datacurate.review.actions import Target, act

        body = await _body(request)
        if isinstance(body, str):
            return _error(400, body)
        cards = body.get("cards")
        if not isinstance(cards, list) or not cards or not all(_target_ok(c) for c in cards):
            return _error(400, 'give "cards": [{"id": "<sha256>:<reason>", "path": "..."}, ...]')
        if not isinstance(body.get("action"), str) or not isinstance(body.get("class") or "", str):
            return _error(400, 'give "action" (keep, aside, relabel, apart) and, to relabel, "class"')
        targets = [Target(*c["id"].split(":", 1), c["path"], c.get("other")) for c in cards]
        return await run_in_threadpool(self._locked, act, self.ws, body["action"], targets, klass=body.get("class"),
                                       new_class=bool(body.get("new_class")))

    async def undo(self, request):
        from starlette.concurrency import run_in_threadpool

        from datacurate.review.actions import undo

        body = await _body(request)
        if isinstance(body, str):
            return _error(400, body)
        return await run_in_threadpool(self._locked, undo, self.ws)

    def _locked(self, function, *args: Any, **kwargs: Any):
        from datacurate.core.oserrors import user_error
        from datacurate.review.actions import BadRequest

        with self.busy:
            try:
                return _json({"done": function(*args, **kwargs)})
            except BadRequest as exc:
                return _error(400, str(exc))
            except UserError as exc:  # the workspace is not as the page thought (Stale), or is busy
                return _error(409, str(exc))
            except OSError as exc:
                found = user_error(exc)
                return _error(409, str(found or exc))


def _target_ok(card: Any) -> bool:
    return (isinstance(card, dict) and isinstance(card.get("id"), str) and ":" in card["id"]
            and isinstance(card.get("path"), str) and bool(card["path"])
            and isinstance(card.get("other"), (str, type(None))))


async def _body(request) -> dict | str:
    import json

    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        return "the body is not JSON"
    return body if isinstance(body, dict) else "the body must be a JSON object"


def _json(data: Any, status: int = 200):
    from starlette.responses import JSONResponse

    return JSONResponse(data, status_code=status)


def _error(status: int, message: str):
    return _json({"error": message}, status)
