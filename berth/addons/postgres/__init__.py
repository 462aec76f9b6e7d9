"""First-party Postgres add-on provider: databases and roles on managed or external PostgreSQL servers."""
