"""Typed configuration from YAML: a dataclass tree built from a mapping, `${VARIABLE}` read from the environment
inside any text, every error naming its dotted key (liaison/config.py declares the tree)."""
from __future__ import annotations

import dataclasses
import re
import types
import typing


class ConfigError(ValueError):
    """A configuration problem, with the dotted key it concerns."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"configuration : {key} : {message}")
        self.key = key


SECRET = {"secret": True}   # a field's metadata: a secret, refused empty or left at an example value
_PLACEHOLDER = re.compile(r"^(|changeme|change[-_ ]?me|xxx+|todo|secret|password|<.*>|\.\.\.)$", re.I)
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def build(cls, raw, prefix: str, environ):
    """An instance of the dataclass `cls` from a YAML mapping: unknown keys, missing ones, wrong types, empty or
    placeholder secrets refused, each naming its dotted key."""
    if not isinstance(raw, dict):
        raise ConfigError(prefix or "(racine)", "une section (clé: valeur) est attendue")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(join(prefix, unknown[0]), f"clé inconnue (clés possibles : {', '.join(fields)})")
    values = {}
    for name, f in fields.items():
        key = join(prefix, name)
        if name not in raw:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(key, "clé obligatoire absente")
            continue
        value = _convert(hints[name], raw[name], key, environ)
        if f.metadata.get("secret") and not value.strip():
            raise ConfigError(key, "secret vide : mettez la vraie valeur ou ${VARIABLE}")
        if f.metadata.get("secret") and _PLACEHOLDER.match(value.strip()):
            raise ConfigError(key, "secret laissé à sa valeur d'exemple : mettez la vraie valeur ou ${VARIABLE}")
        values[name] = value
    try:
        return cls(**values)
    except ConfigError as err:
        raise ConfigError(join(prefix, err.key), str(err).split(" : ", 2)[-1]) from None


def _convert(tp, value, key: str, environ):
    if dataclasses.is_dataclass(tp):
        return build(tp, value, key, environ)
    if isinstance(value, str) and "${" in value:
        value = _expand(value.strip() if _ENV_REF.fullmatch(value.strip()) else value, key, environ)
    origin = typing.get_origin(tp)
    if origin in (list, typing.List):
        (item,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(key, "une liste est attendue")
        return [_convert(item, v, f"{key}[{i}]", environ) for i, v in enumerate(value)]
    if origin in (types.UnionType, typing.Union):
        inner = [t for t in typing.get_args(tp) if t is not type(None)]
        if value is None:
            return None
        return _convert(inner[0], value, key, environ) if len(inner) == 1 else value
    if tp is bool and not isinstance(value, bool):
        raise ConfigError(key, f"« {value} » : vrai/faux attendu (true ou false)")
    if tp is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(key, f"« {value} » : nombre entier attendu")
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(key, "texte attendu")
        value = str(value)
    return value


def _expand(value: str, key: str, environ) -> str:
    """Every ${VARIABLE} of a text, from the environment; unset or empty is refused, naming the key."""
    def value_of(m: re.Match) -> str:
        name = m.group(1)
        if name not in environ:
            raise ConfigError(key, f"la variable d'environnement {name} n'est pas définie")
        if not environ[name]:
            raise ConfigError(key, f"la variable d'environnement {name} est vide")
        return environ[name]
    return _ENV_REF.sub(value_of, value)


def join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name
