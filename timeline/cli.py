"""The `timeline` command: serve, verify, rebuild, import, export, copy, migrate, and token
create, list and revoke."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Sequence

from events.errors import TimelineError
from events.inputs import MAX_BATCH
from timeline.auth import SCOPES
from timeline.commands.log import (
    copy_command,
    export_command,
    import_command,
    migrate_command,
    rebuild_command,
    verify,
)
from timeline.commands.serving import VERIFY_ON_START, serve
from timeline.commands.tokens import token_create, token_list, token_revoke
from timeline.transfer import FORMATS


def _bounded(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        with contextlib.suppress(ValueError):
            value = int(text)
            if low <= value and (high is None or value <= high):
                return value
        upper = f" to {high}" if high is not None else " or more"
        raise argparse.ArgumentTypeError(f"expected an integer, {low}{upper}: {text!r}")

    return parse


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="timeline", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    db = argparse.ArgumentParser(add_help=False)
    db.add_argument("--db", help="database URL (default: $TIMELINE_DB or sqlite:///timeline.db)")

    run = commands.add_parser("serve", parents=[db], help="serve the HTTP API")
    run.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    run.add_argument("--port", type=int, help="port to listen on (default 8080; 0 = any free)")
    run.add_argument(
        "--workers",
        type=_bounded(1, 64),
        default=1,
        help="serving processes sharing the port (PostgreSQL only; default 1)",
    )
    run.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    run.add_argument(
        "--no-seed", action="store_true", help="do not load the seed timeline into an empty log"
    )
    run.add_argument(
        "--no-verify",
        action="store_true",
        help=f"start even if the chain over the last {VERIFY_ON_START:,} entries is broken",
    )
    run.set_defaults(func=serve)

    check = commands.add_parser("verify", parents=[db], help="recompute the hash chain")
    check.set_defaults(func=verify)

    schema_command = commands.add_parser(
        "migrate",
        parents=[db],
        help="create the database's tables or migrate them to this version, then exit",
        description="Create the log's tables in an empty database, or bring an older schema "
        "up to this version (every command does this when it opens a database; this one does "
        "only that, e.g. as the tables' owner before the service's role starts).",
    )
    schema_command.set_defaults(func=migrate_command)

    again = commands.add_parser(
        "rebuild", parents=[db], help="drop and rebuild every projection from the log"
    )
    again.set_defaults(func=rebuild_command)

    load = commands.add_parser(
        "import",
        parents=[db],
        help="append EventIn lines, or restore an export, from NDJSON",
        description="Import NDJSON: EventIn lines are appended; the lines of `timeline export` "
        "(either format) restore the log exactly. Blank lines are skipped.",
    )
    load.add_argument("file", metavar="FILE", help="the NDJSON file; - reads standard input")
    load.add_argument(
        "--batch",
        type=_bounded(1, MAX_BATCH),
        default=MAX_BATCH,
        help=f"events per transaction, 1 to {MAX_BATCH} (default {MAX_BATCH})",
    )
    load.set_defaults(func=import_command)

    dump = commands.add_parser(
        "export", parents=[db], help="write the log as NDJSON, in position order"
    )
    dump.add_argument(
        "--format",
        choices=FORMATS,
        default="ndjson",
        help="ndjson: each event as GET /v1/events returns it; cloudevents: CloudEvents 1.0 JSON",
    )
    dump.add_argument("--output", metavar="FILE", help="write here instead of standard output")
    dump.add_argument(
        "--after",
        type=_bounded(0),
        default=0,
        metavar="N",
        help="only the events after position N (to continue an earlier export)",
    )
    dump.set_defaults(func=export_command)

    move = commands.add_parser(
        "copy",
        help="copy a whole log to another database, of either backend",
        description="Restore every entry of the log at --from into the database at --to "
        "(created if needed), exactly as stored, then check that both digests are equal. "
        "An interrupted copy goes on where it stopped.",
    )
    move.add_argument("--from", dest="source", required=True, metavar="URL", help="source URL")
    move.add_argument("--to", dest="target", required=True, metavar="URL", help="target URL")
    move.add_argument(
        "--batch",
        type=_bounded(1, 100_000),
        default=MAX_BATCH,
        help=f"entries per transaction (default {MAX_BATCH})",
    )
    move.set_defaults(func=copy_command)

    token = commands.add_parser("token", help="manage bearer tokens")
    token_commands = token.add_subparsers(dest="token_command", required=True)
    create = token_commands.add_parser("create", parents=[db], help="create a token")
    create.add_argument("--scope", choices=SCOPES, required=True)
    create.add_argument("--label", help="a note stored beside the token's hash")
    create.set_defaults(func=token_create)
    listing = token_commands.add_parser("list", parents=[db], help="list the tokens")
    listing.set_defaults(func=token_list)
    revoke = token_commands.add_parser(
        "revoke", parents=[db], help="revoke a token: servers refuse it within 5 seconds"
    )
    revoke.add_argument("id", help="the token's id, as `timeline token list` shows it")
    revoke.set_defaults(func=token_revoke)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except (ValueError, OSError) as exc:
        print(f"timeline: {exc}", file=sys.stderr)
        return 2
    except TimelineError as error:  # e.g. an unreachable database, a schema too new
        print(f"timeline: {error.detail}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
