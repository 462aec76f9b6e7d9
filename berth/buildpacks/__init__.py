"""Buildpacks run as subprocesses by platform.builds (never imported): python, nodejs, static, procfile (coming)."""
