"""Persistence: the database schema and sessions, the blob store, and the repositories over them."""
