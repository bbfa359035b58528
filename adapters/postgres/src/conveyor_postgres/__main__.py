"""``python -m conveyor_postgres migrate --dsn ... [--schema NAME]``: create or upgrade the tables.

For deployments whose application role may not create tables: run this once with a role that
may, then give the channels and stores ``create_schema=False``. It prints the version found and
the version now in place; a schema newer than this release is refused and left untouched.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import timedelta

from conveyor.core.errors import ConveyorError
from conveyor_postgres.schema import DEFAULT_SCHEMA, SCHEMA_VERSION

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m conveyor_postgres")
    commands = parser.add_subparsers(dest="command", required=True)
    migrate = commands.add_parser("migrate", help="create or upgrade Conveyor's tables")
    migrate.add_argument(
        "--dsn",
        default=os.environ.get("DATABASE_URL"),
        help="PostgreSQL URL (default: $DATABASE_URL)",
    )
    migrate.add_argument("--schema", default=DEFAULT_SCHEMA, help="PostgreSQL schema")
    args = parser.parse_args(argv)
    if not args.dsn:
        parser.error("give --dsn postgresql://user:password@host:5432/dbname, or set DATABASE_URL")
    try:
        found = _migrate(args.dsn, args.schema)
    except ConveyorError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if found == SCHEMA_VERSION:
        print(f"schema {args.schema!r} is at version {SCHEMA_VERSION}; nothing to do")
    else:
        print(f"schema {args.schema!r} migrated from version {found} to {SCHEMA_VERSION}")
    return 0


def _migrate(dsn: str, schema: str) -> int:
    import psycopg

    from conveyor_postgres.database import connect_kwargs
    from conveyor_postgres.errors import describe, translate
    from conveyor_postgres.schema import ensure_schema

    server = describe(dsn)
    try:
        with psycopg.connect(dsn, **connect_kwargs(timedelta(seconds=10))) as connection:
            return ensure_schema(connection, schema, server=server, create=True)
    except psycopg.Error as error:
        raise translate(error, server, "migrating") from None


if __name__ == "__main__":
    sys.exit(main())
