"""The head<->agent protocol (version 1), re-exported from the agent's own module.

The agent must run on bare compute hosts with the standard library only, so the one
definition of the wire format lives in ``hpcbatch_agent.protocol``; the head imports it
from here, name for name (its ``__all__``). See that module for the vocabulary and
docs/protocol.md for the prose.
"""

from hpcbatch_agent.protocol import *  # noqa: F403 (the whole public surface, by design)
from hpcbatch_agent.protocol import __all__ as __all__
