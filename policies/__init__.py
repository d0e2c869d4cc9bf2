"""The policy core: facts in, a decision out, with the rule that decided and a French sentence.

Pure: no I/O library is imported here (a test checks it).
"""
from policies.decision import Allow, Deny, Decision

__all__ = ["Allow", "Deny", "Decision"]
