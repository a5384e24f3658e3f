"""The web console: server-rendered pages under ``/console/`` on the head's own listener
(docs/console.md)."""
