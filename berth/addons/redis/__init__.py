"""First-party Redis add-on provider: one dedicated redis-server per add-on on this host."""
