"""The build-and-run core: apps, config vars, releases (and later builds, slugs, dynos, router, logs)."""
