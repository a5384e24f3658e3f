"""What the console changes, and the logs it reads, through the API's own doors: the request
parser (``parse_request``), the policy (``policy.authorize``) and the handlers, or the
``/hpcbatch/v1`` routes, called in-process with the console user's principal. A refusal is the
API's error, in its words."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from hpcbatch.console import submit as submit_form
from hpcbatch.console.http import start_stream
from hpcbatch.core.model import TERMINAL
from hpcbatch.errors import ClientError, HpcbatchError, NotFoundError, TransportError
from hpcbatch.head.api import hpcbatch_routes
from hpcbatch.head.api.operations import HANDLERS, Call
from hpcbatch.head.api.parse import OPERATIONS, parse_request
from hpcbatch.head.auth import policy
from hpcbatch.head.auth.policy import require_job_owner

STOPS = {"cancel": "CancelJob", "terminate": "TerminateJob"}
DONE = {"cancel": "cancelled", "terminate": "terminated"}


class Actions:
    def __init__(self, call: Call) -> None:
        self.call = call

    async def _operation(self, name: str, body: dict[str, Any]) -> Any:
        operation = name.lower()
        assert OPERATIONS[operation][0] == name
        model = parse_request(
            operation,
            json.dumps(body).encode(),
            min_timeout_seconds=self.call.head.config.min_timeout_seconds,
        )
        policy.authorize(self.call.principal, name, model, self.call.head.state)
        return await HANDLERS[name](self.call, model)

    async def stop_job(self, job_id: str, kind: str, reason: str) -> None:
        reason = reason.strip() or f"{DONE[kind]} from the console by {self.call.principal.label}"
        await self._operation(STOPS[kind], {"jobId": job_id, "reason": reason})

    async def node(self, name: str, action: str, reason: str) -> None:
        path = f"/hpcbatch/v1/nodes/{quote(name, safe='')}/{action}"
        body = json.dumps({"reason": reason.strip()} if reason.strip() else {}).encode()
        await hpcbatch_routes.route(self.call, "POST", path, body, {})

    async def submit(self, form: dict[str, str]) -> str | dict[str, str]:
        """The new job's id, or the refusal by form field (``""``: the form as a whole)."""
        sources: list[str] = []
        try:
            body, sources = submit_form.body_of(form)
            done = await self._operation("SubmitJob", body)
        except ClientError as error:
            return {submit_form.field_of(error, sources): error.message}
        return str(done["jobId"])

    def log_reader(self, job_id: str, attempt: str) -> Any:
        """``read(offset)`` for ``live.log_stream``; the job must exist and be the caller's
        (or the caller an admin) before anything is streamed."""
        job = self.call.head.state.jobs.get(job_id)
        if job is None:
            raise NotFoundError(f"There is no job {job_id!r}.")
        require_job_owner(self.call.principal, job, "logs", "read the logs of")
        path = f"/hpcbatch/v1/jobs/{quote(job_id, safe='')}/logs"
        chosen = {"attempt": [attempt]} if attempt else {}

        state = self.call.head.state

        async def read(offset: int) -> dict[str, Any]:
            """The route's answer, with ``final``: no attempt will follow (a chosen attempt,
            or a job that has ended)."""
            try:
                _, reply = await hpcbatch_routes.route(
                    self.call, "GET", path, b"", {**chosen, "offset": [str(offset)]}
                )
            except (TransportError, ClientError) as error:
                return {"problem": error.message}
            now = state.jobs.get(job_id)
            final = bool(attempt) or now is None or now.status in TERMINAL
            return {**reply, "final": final}

        return read

    async def download_log(self, send: Any, read: Any, job_id: str, offset: int) -> None:
        """The attempt's whole log as text, chunk by chunk as the agent gives it (never read
        whole into the head's memory): what it holds now."""
        first = await read(offset)
        if "problem" in first:
            raise HpcbatchError(first["problem"])
        name = job_id.replace(":", "_").replace("#", "_")
        await start_stream(
            send,
            b"text/plain; charset=utf-8",
            [(b"content-disposition", f'inline; filename="{name}.log"'.encode())],
        )
        reply = first
        while True:
            data = reply["data"].encode()
            if data:
                await send({"type": "http.response.body", "body": data, "more_body": True})
            if reply["complete"] or not data:
                break
            reply = await read(reply["nextOffset"])
            if "problem" in reply:
                break
        await send({"type": "http.response.body", "body": b""})
