"""The `berth` command-line client: speaks only the Platform API over HTTP."""
