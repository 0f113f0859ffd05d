"""The `timeline` command's subcommands, by job; `timeline.cli` parses the arguments."""
