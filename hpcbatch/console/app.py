"""``/console/...``: the web console, on the head's own listener (docs/console.md).

This is its door: static files, who a request acts as (``session.py``: the kernel's word on
loopback, else a login with an access key), the login page, the CSRF rule on every POST, and
the error pages; the pages themselves are ``pages.py``. Pages are rendered on the server from
templates; the one script (``static/console.js``) adds live regions and log follow. Every change
goes through the API's own parser, policy and handler (``actions.py``), so the console can do
nothing the API would refuse, and says why in the API's words.
"""

from __future__ import annotations

import logging
import re
import uuid
from importlib import resources
from typing import Any
from urllib.parse import quote

from hpcbatch.console import render, session
from hpcbatch.console.feed import ConsoleFeed
from hpcbatch.console.http import header, query_of, read_form, redirect, respond
from hpcbatch.console.live import RegionCache
from hpcbatch.console.pages import Pages, Request
from hpcbatch.console.render import PREFIX
from hpcbatch.errors import AccessDeniedError, HpcbatchError, NotFoundError
from hpcbatch.head.auth.connection import PEER_KEY
from hpcbatch.head.auth.identify import Admins, Principal, identify_unsigned
from hpcbatch.head.service import Head

log = logging.getLogger("hpcbatch.console")

MAX_FORM = 64 * 1024
STATIC = {
    "console.js": b"text/javascript; charset=utf-8",
    "console.css": b"text/css; charset=utf-8",
}


_NEXT = re.compile(r"/console/[A-Za-z0-9/_.:#?=&%+-]*")


def after_login(wanted: str) -> str:
    """Where a login goes: a console page the login was asked from, and nothing else (not
    another site, not the login itself, and no character that could end a header line)."""
    if _NEXT.fullmatch(wanted) and not wanted.startswith(f"{PREFIX}/login"):
        return wanted
    return f"{PREFIX}/jobs"


class ConsoleApp:
    def __init__(self, head: Head, admins: Admins, anonymous: Principal | None = None) -> None:
        self.head = head
        self.admins = admins
        self.anonymous = anonymous
        self.secret = session.load_secret(head.config.data_dir)
        self.feed: ConsoleFeed = head.console_feed
        self.pages = Pages(head, self.feed, RegionCache(), self._context)
        self._static = {
            name: resources.files("hpcbatch.console").joinpath("static", name).read_bytes()
            for name in STATIC
        }

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope["path"][len(PREFIX) :]
        if path in ("", "/"):
            await redirect(send, f"{PREFIX}/jobs")
            return
        parts = path.strip("/").split("/")  # (the server has percent-decoded the path)
        if parts[0] == "static" and len(parts) == 2 and parts[1] in STATIC:
            await respond(send, 200, self._static[parts[1]], STATIC[parts[1]])
            return
        method = scope["method"]
        principal = self._principal(scope)
        if parts == ["login"]:
            await self._login(scope, receive, send, principal)
            return
        if principal is None:
            if method == "GET" and parts[0] != "live":
                await redirect(send, f"{PREFIX}/login?next={quote(scope['path'])}")
            else:
                await self._error(send, scope, None, 401, "Log in first.", "Not logged in")
            return
        form: dict[str, str] = {}
        if method == "POST":
            refusal = await self._check_post(scope, receive, principal, form)
            if refusal is not None:
                await self._error(send, scope, principal, 403, refusal, "Refused")
                return
        request = Request(scope, receive, send, principal, parts, query_of(scope), form)
        try:
            await self.pages.route(request)
        except NotFoundError as error:
            await self._error(send, scope, principal, 404, error.message, "Not found")
        except AccessDeniedError as error:
            await self._error(send, scope, principal, 403, error.message, "Not allowed")
        except HpcbatchError as error:
            await self._error(send, scope, principal, error.http_status, error.message, "Error")
        except Exception:
            request_id = str(uuid.uuid4())
            log.exception("console request %s (%s %s) failed", request_id, method, scope["path"])
            message = f"The console failed (request {request_id}); the head's log says why."
            await self._error(send, scope, principal, 500, message, "Console error")

    # --- who ---------------------------------------------------------------------------------

    def _principal(self, scope: dict[str, Any]) -> Principal | None:
        value = session.cookie_value(header(scope, b"cookie"))
        if value is not None:
            found = session.session_principal(self.secret, value, self.head.state, self.admins)
            if found is not None:
                return found
        peer = (scope.get("extensions") or {}).get(PEER_KEY)
        if peer is not None and peer.local and peer.uid is not None:
            if peer.address == "unix" or session.loopback_host(header(scope, b"host")):
                return identify_unsigned(peer, self.admins)
            return None
        return self.anonymous

    async def _check_post(
        self, scope: dict[str, Any], receive: Any, principal: Principal, form: dict[str, str]
    ) -> str | None:
        if not session.same_origin(header(scope, b"origin"), header(scope, b"host")):
            return (
                "This form was sent from another site; the console takes changes only from "
                "its own pages."
            )
        try:
            form.update(await read_form(receive, MAX_FORM))
        except ValueError as error:
            return str(error)
        if not session.csrf_ok(self.secret, principal, form.get("csrf")):
            return (
                "This form is stale or was not made by the console (its CSRF token does not "
                "match); reload the page and try again."
            )
        return None

    async def _login(
        self, scope: dict[str, Any], receive: Any, send: Any, principal: Principal | None
    ) -> None:
        secure = scope.get("scheme") == "https"
        query = query_of(scope)
        target = after_login(query.get("next", ""))
        context: dict[str, Any] = {"next": target, "error": "", "key_id": "", "me": principal}
        if scope["method"] == "POST":
            if not session.same_origin(header(scope, b"origin"), header(scope, b"host")):
                refusal = "A login form sent from another site."
                await self._error(send, scope, None, 403, refusal, "Refused")
                return
            form = await read_form(receive, MAX_FORM)
            if form.get("logout"):
                cleared = [(b"set-cookie", session.cleared_cookie(secure))]
                await redirect(send, f"{PREFIX}/login", cleared)
                return
            key_id = session.check_login(
                self.head.state, form.get("access_key_id", ""), form.get("secret_access_key", "")
            )
            if key_id is not None:
                cookie = session.session_cookie(self.secret, key_id, secure)
                target = after_login(form.get("next", target))
                await redirect(send, target, [(b"set-cookie", cookie)])
                return
            key_given = form.get("access_key_id", "")[:64]
            log.warning("console login refused for access key %r", key_given[:32])
            context.update(
                error="That access key id and secret do not match an active key.",
                key_id=key_given,
            )
            await respond(send, 403, render.page("login.html", self._context(scope, None, context)))
            return
        await respond(send, 200, render.page("login.html", self._context(scope, None, context)))

    # --- shared ------------------------------------------------------------------------------

    def _context(
        self, scope: dict[str, Any], principal: Principal | None, extra: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "prefix": PREFIX,
            "me": principal,
            "csrf": session.csrf_token(self.secret, principal) if principal else "",
            "path": scope["path"],
            "query": scope.get("query_string", b"").decode("latin-1"),
            "note": "",
            **extra,
        }

    async def _error(
        self,
        send: Any,
        scope: dict[str, Any],
        principal: Principal | None,
        status: int,
        message: str,
        title: str,
    ) -> None:
        extra = {"title": title, "message": message, "status": status}
        context = self._context(scope, principal, extra)
        await respond(send, status, render.page("error.html", context))
