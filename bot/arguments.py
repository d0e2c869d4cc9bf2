"""Argument parsers shared by the commands: each returns the value or raises `ArgError` with a French sentence."""
from __future__ import annotations

from bot.registry import MAIL_ADDRESS, ArgError, number


def matrix_id(word: str) -> str:
    if word.startswith("@") and ":" in word and " " not in word:
        return word
    raise ArgError(f"« {word} » n'est pas un compte Matrix : écrivez-le @nom:serveur.")


def mail_address(word: str) -> str:
    if MAIL_ADDRESS.match(word):
        return word.lower()
    raise ArgError(f"« {word} » n'est pas une adresse MSSanté (ex. dr.x@chu.mssante.fr).")


def account_or_address(word: str) -> str:
    """A Matrix account (@nom:serveur) or an MSSanté address (lower-cased)."""
    if MAIL_ADDRESS.match(word):
        return word.lower()
    if word.startswith("@") and ":" in word:
        return word
    raise ArgError(f"« {word} » : indiquez le compte Matrix (@nom:serveur) ou l'adresse MSSanté.")


def count(word: str) -> int:
    """A number as people type it in a list: 3, n°3, #3."""
    found = number(word)
    if found is None:
        raise ArgError(f"« {word} » n'est pas un numéro (ex. 3).")
    return found
