"""Shared pieces of Liaison: configuration, database, logging, the Matrix adapter, the local stack."""
