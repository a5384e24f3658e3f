"""The console's pages once its caller is known (``app.py``): the four lists, a job's page and
its actions, the submit form, the confirmation pages, the live streams and the log."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from hpcbatch.console import cluster, jobs, render
from hpcbatch.console.actions import Actions
from hpcbatch.console.feed import ConsoleFeed
from hpcbatch.console.http import header, redirect, respond
from hpcbatch.console.live import RegionCache, log_position, log_stream, region_stream
from hpcbatch.console.render import PREFIX
from hpcbatch.errors import NotFoundError
from hpcbatch.head.api.operations import Call
from hpcbatch.head.auth.identify import Principal
from hpcbatch.head.service import Head

LISTS = {"jobs", "queues", "environments", "nodes"}
NOTES = {
    "cancelled": "Cancel requested: the job leaves its queue and fails.",
    "terminated": "Terminate requested: the job is stopped wherever it runs.",
    "submitted": "Submitted.",
    "drained": "The node is draining: it takes no new jobs and its running jobs finish.",
    "resumed": "The node takes jobs again.",
}
Context = Callable[[dict[str, Any], Principal | None, dict[str, Any]], dict[str, Any]]


@dataclass
class Request:
    scope: dict[str, Any]
    receive: Any
    send: Any
    principal: Principal
    parts: list[str]  # the path below /console/, unquoted
    query: dict[str, str]
    form: dict[str, str]  # a POST's fields (its CSRF token already checked)

    @property
    def method(self) -> str:
        return str(self.scope["method"])

    def not_found(self) -> NotFoundError:
        return NotFoundError(f"The console has no page {self.scope['path']!r}.")


def job_path(job_id: str) -> str:
    return f"{PREFIX}/jobs/{quote(job_id, safe='')}"


class Pages:
    def __init__(self, head: Head, feed: ConsoleFeed, cache: RegionCache, context: Context):
        self.head = head
        self.feed = feed
        self.cache = cache
        self.context = context  # the app's: what every template is given

    async def show(
        self, r: Request, template: str, extra: dict[str, Any], status: int = 200
    ) -> None:
        page = render.page(template, self.context(r.scope, r.principal, extra))
        await respond(r.send, status, page)

    async def route(self, r: Request) -> None:
        parts = r.parts
        actions = Actions(Call(self.head, str(uuid.uuid4()), r.principal))
        if parts[0] == "live" and len(parts) >= 2 and r.method == "GET":
            await self.live(r, parts[1:])
        elif r.method == "GET" and len(parts) == 1 and parts[0] in LISTS:
            context = await self.list_context(parts[0], r.query)
            context["note"] = NOTES.get(r.query.get("note", ""), "")
            await self.show(r, f"{parts[0]}.html", context)
        elif parts[0] == "jobs" and len(parts) >= 2:
            await self.job_route(r, jobs.check_id(parts[1]), parts[2:], actions)
        elif parts[0] == "nodes" and len(parts) == 3 and parts[2] in ("drain", "resume"):
            await self.node_action(r, parts[1], parts[2], actions)
        elif parts == ["submit"]:
            await self.submit(r, actions)
        else:
            raise r.not_found()

    async def list_context(self, page: str, query: dict[str, str]) -> dict[str, Any]:
        head = self.head
        if page == "jobs":
            listing = jobs.Listing.of(query, head.state)
            return {
                "listing": listing,
                "table": jobs.page_of(head.state, listing, head.loop.plan.reservations),
                "queues": sorted(head.state.queues),
                "statuses": [s.value for s in jobs.ORDER],
            }
        if page == "queues":
            return {"queues": cluster.queues(head)}
        if page == "environments":
            return {"environments": cluster.environments(head)}
        return {"nodes": cluster.nodes(head)}

    async def job_context(self, principal: Principal, job_id: str) -> dict[str, Any]:
        state = self.head.state
        job = jobs.job_or_none(state, job_id)
        if job is None:
            raise NotFoundError(
                f"There is no job {job_id!r}: it never existed, or it ended long enough ago "
                "that the head no longer keeps it (retention_days)."
            )
        context = jobs.detail(state, job, self.head.loop.plan.reservations, principal)
        context["story"] = await self.head.history(job.job_id)
        return context

    async def job_route(self, r: Request, job_id: str, rest: list[str], actions: Actions) -> None:
        if not rest and r.method == "GET":
            context = await self.job_context(r.principal, job_id)
            context["note"] = NOTES.get(r.query.get("note", ""), "")
            await self.show(r, "job.html", context)
        elif len(rest) == 1 and rest[0] in ("cancel", "terminate"):
            await self.stop_job(r, job_id, rest[0], actions)
        elif len(rest) == 1 and rest[0] in ("logstream", "log") and r.method == "GET":
            reader = actions.log_reader(job_id, r.query.get("attempt", ""))
            resumed = header(r.scope, b"last-event-id")
            seen, start = log_position(resumed, r.query.get("offset", "0"))
            if rest[0] == "logstream":
                await log_stream(r.send, r.receive, self.feed, reader, seen, start)
            else:
                await actions.download_log(r.send, reader, job_id, start)
        else:
            raise r.not_found()

    async def stop_job(self, r: Request, job_id: str, kind: str, actions: Actions) -> None:
        if r.method == "POST":
            await actions.stop_job(job_id, kind, r.form.get("reason", ""))
            note = "cancelled" if kind == "cancel" else "terminated"
            await redirect(r.send, f"{job_path(job_id)}?note={note}")
            return
        job = jobs.job_or_none(self.head.state, job_id)
        if job is None:
            raise NotFoundError(f"There is no job {job_id!r}.")
        what = f"job {job.name} ({job_id})"
        await self.show(r, "confirm.html", {"kind": kind, "what": what, "back": job_path(job_id)})

    async def node_action(self, r: Request, name: str, action: str, actions: Actions) -> None:
        if r.method == "POST":
            await actions.node(name, action, r.form.get("reason", ""))
            note = "drained" if action == "drain" else "resumed"
            await redirect(r.send, f"{PREFIX}/nodes?note={note}")
            return
        if name not in self.head.state.nodes:
            raise NotFoundError(f"There is no node {name!r}.")
        back = f"{PREFIX}/nodes"
        await self.show(r, "confirm.html", {"kind": action, "what": f"node {name}", "back": back})

    async def submit(self, r: Request, actions: Actions) -> None:
        state = self.head.state
        values = {"queue": r.query.get("queue", "default"), "definition": "default"}
        errors: dict[str, str] = {}
        if r.method == "POST":
            values = r.form
            outcome = await actions.submit(r.form)
            if isinstance(outcome, str):
                await redirect(r.send, f"{job_path(outcome)}?note=submitted")
                return
            errors = outcome
        context = {
            "values": values,
            "errors": errors,
            "queues": sorted(state.queues),
            "definitions": sorted(n for n in state.definitions if state.latest_definition(n)),
        }
        await self.show(r, "submit.html", context, 400 if errors else 200)

    async def live(self, r: Request, parts: list[str]) -> None:
        """A page's live region as a stream of events (``live.region_stream``); renderings are
        shared by the consoles on the same page as the same user."""
        key = (tuple(parts), r.scope.get("query_string", b""), r.principal.user, r.principal.admin)
        if len(parts) == 1 and parts[0] in LISTS:
            name = parts[0]

            async def list_region() -> bytes:
                context = await self.list_context(name, r.query)
                return render.region(f"{name}.html", self.context(r.scope, r.principal, context))

            await region_stream(r.send, r.receive, self.feed, self.cache, key, list_region)
        elif len(parts) == 2 and parts[0] == "jobs":
            job_id = jobs.check_id(parts[1])

            async def job_region() -> bytes:
                try:
                    context = await self.job_context(r.principal, job_id)
                except NotFoundError as error:
                    return render.problem(error.message)
                return render.region("job.html", self.context(r.scope, r.principal, context))

            await region_stream(r.send, r.receive, self.feed, self.cache, key, job_region)
        else:
            raise NotFoundError(f"The console has no live page {'/'.join(parts)!r}.")
