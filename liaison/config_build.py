"""Typed configuration from YAML: a dataclass tree built from a mapping, `${VARIABLE}` read from the environment
inside any text, every error naming its dotted key (liaison/config.py declares the tree).

Each secret belongs to one service (`secret("bot")`, `secret("bridge")`): a service builds the tree reading its own
secrets only. The other's are neither read in the file nor looked up in the environment (they stay ""), so the
bridge starts without the bot's password, store key or trace key in its environment, and never holds them."""
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


def secret(owner: str, *, min_length: int = 0, use: str = "") -> dict:
    """A field's metadata: a secret of `owner` ("bot" or "bridge"), refused empty or left at an example value, and
    shorter than `min_length` (`use` says what it protects, in the message); only its owner reads it."""
    return {"secret": owner, "min_length": min_length, "use": use}


_PLACEHOLDER = re.compile(r"^(|changeme|change[-_ ]?me|xxx+|todo|secret|password|<.*>|\.\.\.)$", re.I)
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def build(cls, raw, prefix: str, environ, owners: frozenset[str] | None = None):
    """An instance of the dataclass `cls` from a YAML mapping: unknown keys, missing ones, wrong types, empty or
    placeholder secrets refused, each naming its dotted key. `owners`: whose secrets are read (None: every one);
    another service's secret is left "" without a look at its value."""
    if not isinstance(raw, dict):
        raise ConfigError(prefix or "(racine)", "une section (clé: valeur) est attendue")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(join(prefix, unknown[0]), f"clé inconnue (clés possibles : {', '.join(fields)})")
    values = {}
    for name, f in fields.items():
        key, owner = join(prefix, name), f.metadata.get("secret")
        if owner and owners is not None and owner not in owners:
            continue   # another service's: never read
        if name not in raw:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(key, "clé obligatoire absente")
            if owner and f.metadata["min_length"]:
                raise ConfigError(key, _too_short(f.metadata))
            continue
        value = _convert(hints[name], raw[name], key, environ, owners)
        if owner and not value.strip():
            raise ConfigError(key, "secret vide : mettez la vraie valeur ou ${VARIABLE}")
        if owner and _PLACEHOLDER.match(value.strip()):
            raise ConfigError(key, "secret laissé à sa valeur d'exemple : mettez la vraie valeur ou ${VARIABLE}")
        if owner and len(value) < f.metadata["min_length"]:
            raise ConfigError(key, _too_short(f.metadata))
        values[name] = value
    try:
        return cls(**values)
    except ConfigError as err:
        raise ConfigError(join(prefix, err.key), str(err).split(" : ", 2)[-1]) from None


def _too_short(meta: typing.Mapping[str, typing.Any]) -> str:
    return (f"clé obligatoire, d'au moins {meta['min_length']} caractères (par exemple : openssl rand -hex 32), donnée "
            f"par ${{VARIABLE}}" + (f" : {meta['use']}" if meta["use"] else ""))


def _convert(tp, value, key: str, environ, owners: frozenset[str] | None = None):
    if dataclasses.is_dataclass(tp):
        return build(tp, value, key, environ, owners)
    if isinstance(value, str) and "${" in value:
        value = _expand(value.strip() if _ENV_REF.fullmatch(value.strip()) else value, key, environ)
    origin = typing.get_origin(tp)
    if origin in (list, typing.List):
        (item,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(key, "une liste est attendue")
        return [_convert(item, v, f"{key}[{i}]", environ, owners) for i, v in enumerate(value)]
    if origin in (types.UnionType, typing.Union):
        inner = [t for t in typing.get_args(tp) if t is not type(None)]
        if value is None:
            return None
        return _convert(inner[0], value, key, environ, owners) if len(inner) == 1 else value
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
