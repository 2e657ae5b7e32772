"""Names that come from outside (video ids, model ids, extractor and detector ids, anything read from a model
folder) become parts of output paths only after passing here: they are data, never paths that escape the root."""

from __future__ import annotations

from anomaly_models.errors import UsageError


class InvalidName(UsageError):
    """A name that cannot be used as part of an output path."""


def _check_part(part: str, value: str, what: str) -> None:
    if part in ("", ".", ".."):
        raise InvalidName(f"invalid {what} {value!r}: empty, '.' or '..' path parts are not allowed")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in part):
        raise InvalidName(f"invalid {what} {value!r}: control characters are not allowed")


def safe_relpath(value: str, what: str = "video id") -> str:
    """A relative POSIX path (video ids): no absolute paths, no backslashes, no '..', no empty parts."""
    if not isinstance(value, str) or not value or value.startswith("/") or "\\" in value:
        raise InvalidName(f"invalid {what} {value!r}: must be a relative POSIX path")
    for part in value.split("/"):
        _check_part(part, value, what)
    return value


def safe_name(value: str, what: str = "id") -> str:
    """One path component (model, extractor and detector ids, run ids)."""
    if not isinstance(value, str) or "/" in value or "\\" in value:
        raise InvalidName(f"invalid {what} {value!r}: must be a single name without '/'")
    _check_part(value, value, what)
    return value
