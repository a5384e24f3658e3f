"""Server-sent events: a page's live region, and a job's log as it grows.

A live page opens one ``EventSource`` on ``/console/live/<page>``. Its stream sends the page's
``live`` block whenever the head committed a batch that journaled something (``ConsoleFeed``),
``COALESCE_S`` after the change (the rest of its burst rides along) and at most every
``MIN_INTERVAL_S`` while changes keep coming, and every ``REFRESH_S`` even
when nothing was journaled (heartbeat ages, a waiting job's reason); it sends nothing when the
block has not changed. Consoles showing the same page as the same kind of caller share one
rendering per change (``RegionCache``), so a hundred open consoles cost about one.

A job's log streams on ``/console/jobs/<id>/logstream?attempt=N``: chunks as the agent has
them, each event's id the offset after it, so a browser that reconnects (a head restart) sends
``Last-Event-ID`` and resumes where it was; ``end`` once the attempt is over.

When the head stops (``ConsoleFeed.close``) every stream ends at once: the server's graceful
stop does not wait on them, and the browsers reconnect to the next head and catch up.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from hpcbatch.console.feed import ConsoleFeed
from hpcbatch.console.http import start_stream

COALESCE_S = 0.1  # after a change, wait this long for the rest of its burst
MIN_INTERVAL_S = 0.5  # and send a page at most this often while changes keep coming
REFRESH_S = 5.0
LOG_POLL_S = 0.5
KEEPALIVE_S = 15.0
CACHED = 128

Render = Callable[[], Awaitable[bytes]]
ReadLog = Callable[[int], Awaitable[dict[str, Any]]]


class RegionCache:
    """The last renderings of live regions, by (page, caller kind): valid for the feed's
    version they were made at, and for ``REFRESH_S`` at most."""

    def __init__(self) -> None:
        self._kept: collections.OrderedDict[Any, tuple[int, float, bytes]] = (
            collections.OrderedDict()
        )

    async def get(self, key: Any, version: int, render: Render) -> bytes:
        """The region's event (``region``, ready to send): one rendering and one encoding
        serve every console on the page."""
        now = time.monotonic()
        hit = self._kept.get(key)
        if hit is not None and hit[0] == version and now - hit[1] < REFRESH_S:
            return hit[2]
        html = event("region", (await render()).decode())
        if hit is not None and hit[2] == html:
            html = hit[2]  # the same object: streams compare by identity first
        self._kept[key] = (version, now, html)
        self._kept.move_to_end(key)
        while len(self._kept) > CACHED:
            self._kept.popitem(last=False)
        return html


def event(name: str, data: str, event_id: str | None = None) -> bytes:
    lines = [f"event: {name}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.extend(f"data: {line}" for line in data.split("\n"))
    return ("\n".join(lines) + "\n\n").encode()


class _Gone:
    """Watches ``receive`` for the browser leaving, and then cancels the stream's task: the
    stream itself awaits only the feed, its pauses and its sends, with no task of its own per
    wait (a hundred open pages would otherwise make hundreds of tasks a second)."""

    def __init__(self, receive: Any) -> None:
        self.left = False
        self._stream = asyncio.current_task()
        self._task = asyncio.get_running_loop().create_task(self._watch(receive))

    async def _watch(self, receive: Any) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self.left = True
        if self._stream is not None:
            self._stream.cancel()

    def stop(self) -> None:
        self._task.cancel()


async def _end(send: Any) -> None:
    with contextlib.suppress(OSError):
        await send({"type": "http.response.body", "body": b""})


async def _body(send: Any, data: bytes) -> bool:
    try:
        await send({"type": "http.response.body", "body": data, "more_body": True})
    except OSError:
        return False
    return True


async def region_stream(
    send: Any, receive: Any, feed: ConsoleFeed, cache: RegionCache, key: Any, render: Render
) -> None:
    await start_stream(send, b"text/event-stream", [(b"x-accel-buffering", b"no")])
    gone = _Gone(receive)
    try:
        if not await _body(send, b"retry: 1000\n\n"):
            return
        last = b""
        version = -1
        rendered = sent = 0.0
        while not feed.closed:
            now = time.monotonic()
            if feed.version != version or now - rendered >= REFRESH_S:
                version, rendered = feed.version, now
                region = await cache.get(key, version, render)
                if region is not last and region != last:
                    last, sent = region, now
                    if not await _body(send, region):
                        return
            if now - sent >= KEEPALIVE_S:
                sent = now
                if not await _body(send, b": still here\n\n"):
                    return
            await feed.wait(version, REFRESH_S)
            await asyncio.sleep(max(COALESCE_S, MIN_INTERVAL_S - (time.monotonic() - sent)))
        await _end(send)
    except asyncio.CancelledError:
        if not gone.left:
            raise  # not the browser leaving: the server's own cancel
    finally:
        gone.stop()


def log_position(last_event_id: str | None, offset: str) -> tuple[int | None, int]:
    """Where a log stream starts: ``Last-Event-ID`` (``<attempt>:<offset>``, sent by a
    reconnecting browser) or the ``offset`` parameter."""
    attempt, _, at = (last_event_id or "").partition(":")
    if attempt.isdigit() and at.isdigit() and len(at) < 19 and len(attempt) < 6:
        return int(attempt), int(at)
    return None, int(offset) if offset.isascii() and offset.isdigit() and len(offset) < 19 else 0


async def log_stream(
    send: Any, receive: Any, feed: ConsoleFeed, read: ReadLog, attempt: int | None, offset: int
) -> None:
    """``read(offset)``: the logs route's answer for the chunk at ``offset`` (with ``final``:
    no attempt follows this one), or ``{"problem": why}`` when there is nothing to read yet or
    the node could not be asked (told to the page, then tried again). A new attempt (a retry)
    starts over at its offset 0, announced by an ``attempt`` event."""
    await start_stream(send, b"text/event-stream", [(b"x-accel-buffering", b"no")])
    gone = _Gone(receive)
    try:
        if not await _body(send, b"retry: 2000\n\n"):
            return
        while not feed.closed:
            reply = await read(offset)
            if "problem" in reply:
                if not await _body(send, event("problem", reply["problem"])):
                    return
                await asyncio.sleep(2.0)
                continue
            if reply["attempt"] != attempt:
                if attempt is not None and offset:
                    offset = 0  # a retry's log: from its start
                    attempt = reply["attempt"]
                    if not await _body(send, event("attempt", str(attempt))):
                        return
                    continue
                attempt = reply["attempt"]
                if not await _body(send, event("attempt", str(attempt))):
                    return
            if reply["data"]:
                offset = reply["nextOffset"]
                chunk = event("log", json.dumps(reply["data"]), f"{attempt}:{offset}")
                if not await _body(send, chunk):
                    return
            if reply["complete"] and reply["final"]:
                await _body(send, event("end", str(offset)))
                break
            if not reply["data"]:
                await asyncio.sleep(LOG_POLL_S)
        await _end(send)
    except asyncio.CancelledError:
        if not gone.left:
            raise
    finally:
        gone.stop()
