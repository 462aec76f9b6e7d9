"""The one recorded job queue, below the broker and the platform.

A job is a row written in the same transaction as the change that needs it. Workers claim due
jobs with a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite serialises writers), retry
them with back-off, and are woken at once by a datagram when one is queued. Each job type
(add-on operations now; builds, the release phase and rollouts next) keeps its own table with
the `JobRecord` columns and registers with a `Worker` as a `JobType`.
"""
