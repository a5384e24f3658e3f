"""The dev cluster's one error: ``DevClusterError``, a child of ``HpcbatchError``.

    HpcbatchError (hpcbatch.errors)
    └── DevClusterError    a dev cluster could not be built, found or removed; the message
                           says why and, where there is one, what to do about it

The CLI prints its message and exits 1.
"""

from __future__ import annotations

from hpcbatch.errors import HpcbatchError


class DevClusterError(HpcbatchError):
    pass
