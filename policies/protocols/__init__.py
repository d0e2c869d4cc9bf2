"""The protocols shipped with Liaison: YAML files only, read by bot/protocols.py (the README's « Protocoles »)."""
