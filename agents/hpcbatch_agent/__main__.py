"""``python -m hpcbatch_agent``: see main.py."""

from .main import main

raise SystemExit(main())
