"""Numbered SQL migrations (NNNN_name.sql), portable between SQLite and PostgreSQL."""
