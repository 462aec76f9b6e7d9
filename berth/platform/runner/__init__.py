"""The runner: keeps each app's formation running from its current release (berth.runner is the process)."""
