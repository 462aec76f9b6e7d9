"""Dynos: the interface the runner drives (`backend`) and the local, sandboxed backend (`local`)."""
