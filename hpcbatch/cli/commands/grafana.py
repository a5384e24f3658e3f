"""``hpcbatch grafana export DIR``: write the Grafana dashboards and provisioning files.

Needs no head: the dashboards are built from code (hpcbatch/monitoring/) with
grafana-foundation-sdk, imported only when this command runs so that other commands start fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hpcbatch.cli.context import EXIT_OK, Context
from hpcbatch.monitoring import DEFAULT_DASHBOARDS_PATH, DEFAULT_PROMETHEUS_URL


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = sub.add_parser("grafana", help="Grafana dashboards for the head's metrics")
    actions = parser.add_subparsers(dest="grafana_command", metavar="ACTION", required=True)
    export = actions.add_parser(
        "export",
        help="write the dashboards and Grafana provisioning files under DIR",
        description="Write DIR/dashboards/*.json and DIR/provisioning/{datasources,dashboards}"
        "/hpcbatch.yml. Copy DIR/provisioning/* into Grafana's provisioning folder "
        "(/etc/grafana/provisioning) and DIR/dashboards/*.json to --dashboards-path.",
    )
    export.add_argument("directory", metavar="DIR", type=Path, help="where to write")
    export.add_argument(
        "--prometheus-url",
        default=DEFAULT_PROMETHEUS_URL,
        metavar="URL",
        help="the Prometheus that scrapes the head, as Grafana reaches it (default: %(default)s)",
    )
    export.add_argument(
        "--dashboards-path",
        default=DEFAULT_DASHBOARDS_PATH,
        metavar="PATH",
        help="absolute path on the Grafana host where the dashboards' JSON will lie: "
        "the dashboard provider reads it (default: %(default)s)",
    )
    export.set_defaults(func=run_export)


def run_export(args: argparse.Namespace, ctx: Context) -> int:
    from hpcbatch.monitoring.export import export

    for path in export(args.directory, args.prometheus_url, args.dashboards_path):
        sys.stdout.write(f"{path}\n")
    return EXIT_OK
