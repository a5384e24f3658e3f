"""The head's Prometheus exporter: ``/metrics`` on its own listen address (docs/metrics.md).

Vocabulary: a **snapshot** (``snapshot.py``) is an immutable copy of the gauges (queue depth,
capacity, nodes) that the loop builds from the State after a batch it commits; the **exporter**
(``exporter.py``) owns the registry, the counters and histograms the loop and the API update as
they go, and the collector that turns the last snapshot into samples at scrape time; the
**server** (``server.py``) answers scrapes from its own thread on a socket bound before the head
opened its state. A scrape never reads the live State and never runs on the event loop.
"""
