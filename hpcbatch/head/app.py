"""``serve()``: run the head daemon in the foreground until SIGINT/SIGTERM.

Listens on ``HOST:PORT`` or ``unix:/path``. The Head starts inside uvicorn's lifespan, so the
API answers only once the state is loaded and the local agents are connected.
"""

from __future__ import annotations

import logging
from pathlib import Path

from hpcbatch.errors import HpcbatchError
from hpcbatch.head.config import load_config


def serve(data_dir: Path, listen: str | None, config_path: Path | None, log_level: str) -> int:
    """``listen`` None keeps the config file's (or the default) address."""
    import uvicorn

    from hpcbatch.head.api.app import ApiApp
    from hpcbatch.head.service import Head

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    try:
        config = load_config(config_path, data_dir=data_dir, listen=listen)
        head = Head(config)
    except HpcbatchError as error:
        print(f"error: {error.message}")
        return 3
    options: dict[str, object] = {
        "log_level": log_level.lower(),
        "access_log": False,
        "lifespan": "on",
        "timeout_graceful_shutdown": 5,
    }
    if config.listen.startswith("unix:"):
        options["uds"] = config.listen[len("unix:") :]
    else:
        host, _, port = config.listen.rpartition(":")
        options.update(host=host or "127.0.0.1", port=int(port))
    server = uvicorn.Server(uvicorn.Config(ApiApp(head), **options))  # type: ignore[arg-type]
    server.run()
    return 0 if server.started else 4
