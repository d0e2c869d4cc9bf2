"""A real clamd for the tests (the launcher lives with the local stack, liaison/stack/clamd.py)."""
from liaison.stack.clamd import EICAR, EICAR_MD5, REPORTED, SIGNATURE, ClamdProcess, ping_sync, running_clamd

__all__ = ["EICAR", "EICAR_MD5", "REPORTED", "SIGNATURE", "ClamdProcess", "ping_sync", "running_clamd"]
