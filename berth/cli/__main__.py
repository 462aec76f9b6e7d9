"""Allow `python -m berth.cli`."""

from berth.cli.main import cli

cli(prog_name="berth")
