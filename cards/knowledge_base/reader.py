"""Reads one YAML knowledge file and its entries' fields, collecting every problem of an entry."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from .model import KnowledgeError

# libyaml's safe loader is ~12x faster than the pure-Python one: it is most of start-up time.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


# --- field reader -------------------------------------------------------------------


class _Entry:
    """Reads one mapping, collecting every problem instead of stopping at the first."""

    def __init__(self, data: Any, allowed: set[str]) -> None:
        self.problems: list[str] = []
        if not isinstance(data, dict):
            self.data: dict[str, Any] = {}
            self.problems.append(f"expected a mapping, got {type(data).__name__}")
            return
        self.data = data
        for key in sorted(set(data) - allowed, key=str):
            self.problems.append(f"unknown field {key!r}")

    def _get(self, key: str, required: bool) -> Any:
        if key not in self.data or self.data[key] is None:
            if required:
                self.problems.append(f"missing field {key!r}")
            return None
        return self.data[key]

    def text(self, key: str, required: bool = True) -> str:
        value = self._get(key, required)
        if value is None:
            return ""
        if not isinstance(value, str) or not value.strip():
            self.problems.append(f"{key!r} must be non-empty text")
            return ""
        return value.strip()

    def opt_text(self, key: str) -> str | None:
        return self.text(key, required=False) or None

    def integer(self, key: str, required: bool = True, minimum: int = 0) -> int | None:
        value = self._get(key, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.problems.append(f"{key!r} must be an integer >= {minimum}")
            return None
        return value

    def flag(self, key: str, required: bool = True, default: bool = False) -> bool:
        value = self._get(key, required)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.problems.append(f"{key!r} must be true or false")
            return default
        return value

    def choice(self, key: str, allowed: Iterable[str], required: bool = True) -> str:
        value = self.text(key, required)
        allowed = set(allowed)
        if value and value not in allowed:
            self.problems.append(f"{key!r} is {value!r}, expected one of {sorted(allowed)}")
        return value

    def day(self, key: str = "reviewed") -> date:
        value = self._get(key, True)
        if value is None:
            return date.min
        if not isinstance(value, date):
            self.problems.append(f"{key!r} must be a date (YYYY-MM-DD)")
            return date.min
        return value

    def strings(self, key: str, allowed: Iterable[str] | None = None, required: bool = True) -> tuple[str, ...]:
        value = self._get(key, required)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.problems.append(f"{key!r} must be a list of text")
            return ()
        if len(set(value)) != len(value):
            self.problems.append(f"{key!r} lists an item twice")
        if allowed is not None:
            bad = [v for v in value if v not in allowed]
            if bad:
                self.problems.append(f"{key!r} has unknown value(s) {bad}")
        return tuple(value)

    def mappings(self, key: str, required: bool = True) -> list[Any]:
        value = self._get(key, required)
        if value is None:
            return []
        if not isinstance(value, list):
            self.problems.append(f"{key!r} must be a list")
            return []
        return value

    def sub(self, key: str, item: Any, allowed: set[str], reader: Callable[[_Entry], Any]) -> Any:
        inner = _Entry(item, allowed)
        result = reader(inner)
        self.problems.extend(f"{key}: {p}" for p in inner.problems)
        return result


def _read_body(directory: Path, name: str) -> tuple[str, Any]:
    file = f"{name}.yaml"
    path = directory / file
    try:
        with path.open("r", encoding="utf-8") as fh:
            data = yaml.load(fh, Loader=_YAML_LOADER)
    except FileNotFoundError:
        raise KnowledgeError(file, None, ["file is missing"]) from None
    except yaml.YAMLError as exc:
        raise KnowledgeError(file, None, [f"not valid YAML: {exc}"]) from None
    if not isinstance(data, dict) or name not in data:
        raise KnowledgeError(file, None, [f"top-level key {name!r} is missing"])
    body = data[name]
    if name == "meta":
        if not isinstance(body, dict):
            raise KnowledgeError(file, None, ["'meta' must be a mapping"])
    elif not isinstance(body, list) or not body:
        raise KnowledgeError(file, None, [f"{name!r} must be a non-empty list"])
    return file, body


def _read_yaml(directory: Path, name: str) -> tuple[str, list[Any]]:
    """A knowledge file's list of entries (every file but meta.yaml)."""
    file, body = _read_body(directory, name)
    assert isinstance(body, list)  # _read_body checked it
    return file, body


def _read_meta(directory: Path) -> tuple[str, dict[str, Any]]:
    file, body = _read_body(directory, "meta")
    assert isinstance(body, dict)  # _read_body checked it
    return file, body
