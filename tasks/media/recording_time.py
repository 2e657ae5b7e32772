"""Which camera recorded a video and when: the wall-clock time of any offset into it.

A video id is the POSIX path of a video relative to the archive root (``cam07/2026-11-28/010000.mp4``). Reports
give analysts the camera and the wall-clock start and end of each event; `recording_of` finds them:

1. a `TimeTemplate` (setting ``reports.time_template``) read against the video id gives the camera and the start;
2. when the template does not match, or matches but gives no start (it has a ``{time}`` but no date, or no time
   field at all), the start is the container's creation time (`container_creation_time`: the MP4
   ``creation_time`` tag), asked for lazily since reading it may open a remote file;
3. else the start is unknown (``source == "none"``).

When the template does not match, or has no ``{camera}`` field, the camera is the id's first folder
(``Fighting/test003.mp4`` -> ``Fighting``), or ``""`` for an id without a folder.

Template syntax
---------------
The pattern is matched against the *whole* video id. Everything outside braces is literal text. Fields:

``{camera}``             the camera: one or more characters within one path component (no ``/``).
``{date:FMT}``           the recording date; FMT must give a year and a month and day (or a day of the year).
``{time:FMT}``           the time of day; FMT must contain ``%H``.
``{datetime:FMT}``       date and time in one field; FMT must give a full date and ``%H``.
``{*}`` or ``{any}``     any text (possibly empty) within one path component.
``{**}``                 any text, slashes included; ``{**}/`` matches zero or more whole folders.
``{ext}``                a file extension: one or more characters other than ``/`` and ``.``.
``{{`` and ``}}``        a literal ``{`` and ``}``.

FMT is a strftime-style format that may contain slashes and other literal text (``{date:%Y/%m/%d}``), with the
directives (each matched as a fixed number of digits, except ``%f``):

``%Y`` year (4 digits)  ``%y`` year (2 digits: 69-99 are 1969-1999, 00-68 are 2000-2068, as in strptime)
``%m`` month (2)  ``%d`` day of the month (2)  ``%j`` day of the year (3)
``%H`` hour, 24-hour clock (2)  ``%M`` minute (2)  ``%S`` second (2)  ``%f`` fraction of a second (1-6 digits)
``%%`` a literal ``%``

Other directives are refused (`UsageError` naming ``reports.time_template``). ``{date}`` takes date directives
only, ``{time}`` time directives only. A pattern holds each of ``{camera}``, ``{date}``, ``{time}`` and
``{datetime}`` at most once, and ``{datetime}`` cannot be combined with ``{date}`` or ``{time}``.

* A date without a time of day means midnight; missing minutes or seconds are zero.
* A ``{time}`` without a ``{date}`` cannot make a start: the camera still comes from the template, the start from
  the container's creation time.
* Digits in the right shape but out of range (month 13, 25:00) make the id not match: the fallbacks apply.
* Several patterns may be given separated by ``|`` (whitespace around each is ignored): the first that matches
  wins. A pattern therefore cannot contain a literal ``|``.
* An ambiguous pattern (``{camera}_{*}.mp4`` on ``a_b_c.mp4``) is resolved as a regular expression would: earlier
  fields take as much text as they can.

Time zones
----------
``reports.timezone`` is an IANA name (``Europe/Istanbul``, ``America/New_York``; default ``UTC``). Times read
from ids are local times in that zone. A local time that occurs twice (the hour repeated when clocks go back) is
read as its first occurrence; one that does not exist (skipped when clocks go forward) is read with the offset in
force before the change (02:30 on a spring-forward night in New York is 03:30 EDT). Creation times carry their
own offset (MP4 stores UTC) and are shown in the configured zone; a creation time without an offset is read in it.

ISO format
----------
`Recording.at` returns ISO 8601 with milliseconds and the numeric UTC offset of the instant, always the same
shape: ``2026-11-28T01:01:30.500+03:00`` (``+00:00`` for UTC, never ``Z``). The instant is ``start + offset``
in elapsed seconds, so the offset is right across a DST change; ``timespec="seconds"`` rounds to whole seconds.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from anomaly_models.errors import UsageError

TEMPLATE_FIELD = "reports.time_template"
TIMEZONE_FIELD = "reports.timezone"

SOURCES = ("template", "container", "none")

# strftime directive -> the digits it matches
_DIRECTIVES = {
    "Y": r"\d{4}",
    "y": r"\d{2}",
    "m": r"\d{2}",
    "d": r"\d{2}",
    "j": r"\d{3}",
    "H": r"\d{2}",
    "M": r"\d{2}",
    "S": r"\d{2}",
    "f": r"\d{1,6}",
}
_DATE_DIRECTIVES = frozenset("Yymdj")
_TIME_DIRECTIVES = frozenset("HMSf")
_TIME_FIELDS = ("date", "time", "datetime")
_PLAIN_FIELDS = {"camera": "(?P<camera>[^/]+)", "*": "[^/]*", "any": "[^/]*", "**": ".*", "ext": "[^/.]+"}
_EARLIEST_CREATION_YEAR = 1971  # 1904-01-01 (the MP4 epoch) and 1970-01-01 are what clockless cameras write
_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Recording:
    """Where and when one video was recorded."""

    camera: str  # "" when unknown
    start: datetime | None  # timezone-aware wall-clock start, None when unknown
    source: str  # "template" | "container" | "none": where `start` came from

    def at(self, offset_s: float, timespec: str = "milliseconds") -> str | None:
        """The wall-clock time `offset_s` seconds into the video as ISO 8601 in the start's time zone, e.g.
        ``2026-11-28T01:01:30.500+03:00``; None when the start is unknown. `timespec` is "milliseconds" (the
        default) or "seconds"; the instant is rounded (half up) to it. Raises ValueError for a non-finite offset."""
        if timespec not in ("milliseconds", "seconds"):
            raise ValueError(f"timespec: expected 'milliseconds' or 'seconds', got {timespec!r}")
        if self.start is None:
            return None
        if not math.isfinite(offset_s):
            raise ValueError(f"offset_s: must be finite, got {offset_s}")
        # elapsed time: add and round in UTC, then show in the start's zone (aware + timedelta within one zone is
        # wall-clock arithmetic, and it drops the `fold` that tells a repeated local hour's two offsets apart)
        instant = self.start.astimezone(timezone.utc) + timedelta(seconds=offset_s)
        unit = 1000 if timespec == "milliseconds" else 1_000_000
        rounded = (instant.microsecond + unit // 2) // unit * unit
        instant = (instant.replace(microsecond=0) + timedelta(microseconds=rounded)).astimezone(self.start.tzinfo)
        return instant.isoformat(timespec=timespec)


@dataclass(frozen=True)
class _Pattern:
    text: str
    regex: re.Pattern[str]
    formats: dict[str, str]  # time field -> its FMT


def _zone(name: str) -> tzinfo:
    if not isinstance(name, str) or not name.strip():
        raise UsageError(f"{TIMEZONE_FIELD}: expected an IANA time zone name such as 'Europe/Istanbul', got {name!r}")
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        if name.strip() == "UTC":  # no tz database on this machine
            return timezone.utc
        raise UsageError(
            f"{TIMEZONE_FIELD}: unknown time zone {name!r} (expected an IANA name such as 'Europe/Istanbul'): {exc}"
        ) from None


def _format_regex(field: str, fmt: str, pattern: str) -> str:
    """The regex of one time field's FMT, after checking its directives fit the field."""
    parts: list[str] = []
    seen: set[str] = set()
    i = 0
    while i < len(fmt):
        char = fmt[i]
        if char != "%":
            parts.append(re.escape(char))
            i += 1
            continue
        if i + 1 == len(fmt):
            raise UsageError(f"{TEMPLATE_FIELD}: {{{field}:{fmt}}} ends with a lone '%' in {pattern!r}")
        directive = fmt[i + 1]
        i += 2
        if directive == "%":
            parts.append("%")
            continue
        if directive not in _DIRECTIVES:
            raise UsageError(
                f"{TEMPLATE_FIELD}: %{directive} is not supported in {{{field}:{fmt}}} in {pattern!r}; "
                "use %Y %y %m %d %j %H %M %S %f"
            )
        allowed = {"date": _DATE_DIRECTIVES, "time": _TIME_DIRECTIVES}.get(field, _DATE_DIRECTIVES | _TIME_DIRECTIVES)
        if directive not in allowed:
            raise UsageError(f"{TEMPLATE_FIELD}: %{directive} does not belong in {{{field}:{fmt}}} in {pattern!r}")
        if directive in seen:
            raise UsageError(f"{TEMPLATE_FIELD}: %{directive} appears twice in {{{field}:{fmt}}} in {pattern!r}")
        seen.add(directive)
        parts.append(_DIRECTIVES[directive])
    has_date = bool(seen & {"Y", "y"}) and ({"m", "d"} <= seen or "j" in seen)
    if field in ("date", "datetime") and not has_date:
        raise UsageError(
            f"{TEMPLATE_FIELD}: {{{field}:{fmt}}} in {pattern!r} must give a full date: %Y or %y, and %m and %d or %j"
        )
    if field in ("time", "datetime") and "H" not in seen:
        raise UsageError(f"{TEMPLATE_FIELD}: {{{field}:{fmt}}} in {pattern!r} must contain %H")
    if ("j" in seen) and seen & {"m", "d"}:
        raise UsageError(f"{TEMPLATE_FIELD}: {{{field}:{fmt}}} in {pattern!r} mixes %j with %m/%d")
    return "".join(parts)


def _compile(pattern: str) -> _Pattern:
    if not pattern:
        raise UsageError(f"{TEMPLATE_FIELD}: empty pattern")
    parts: list[str] = []
    formats: dict[str, str] = {}
    has_camera = False
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("{{", i) or pattern.startswith("}}", i):
            parts.append(re.escape(char))
            i += 2
            continue
        if char == "}":
            raise UsageError(f"{TEMPLATE_FIELD}: unmatched '}}' at position {i} in {pattern!r} (write '}}}}' for '}}')")
        if char != "{":
            parts.append(re.escape(char))
            i += 1
            continue
        end = pattern.find("}", i + 1)
        if end < 0:
            raise UsageError(f"{TEMPLATE_FIELD}: unclosed '{{' at position {i} in {pattern!r} (write '{{{{' for '{{')")
        body = pattern[i + 1 : end]
        i = end + 1
        name, colon, fmt = body.partition(":")
        if name in _TIME_FIELDS:
            if not colon or not fmt:
                raise UsageError(
                    f"{TEMPLATE_FIELD}: {{{name}}} needs a format, e.g. {{{name}:%Y-%m-%d}}, in {pattern!r}"
                )
            if name in formats:
                raise UsageError(f"{TEMPLATE_FIELD}: {{{name}:...}} appears twice in {pattern!r}")
            formats[name] = fmt
            parts.append(f"(?P<{name}>{_format_regex(name, fmt, pattern)})")
        elif name in _PLAIN_FIELDS and not colon:
            if name == "camera":
                if has_camera:
                    raise UsageError(f"{TEMPLATE_FIELD}: {{camera}} appears twice in {pattern!r}")
                has_camera = True
            if name == "**" and pattern.startswith("/", i):  # {**}/ : zero or more whole folders
                parts.append("(?:.*/)?")
                i += 1
            else:
                parts.append(_PLAIN_FIELDS[name])
        else:
            raise UsageError(
                f"{TEMPLATE_FIELD}: unknown field {{{body}}} in {pattern!r}; known: {{camera}} {{date:FMT}} "
                "{time:FMT} {datetime:FMT} {*} {any} {**} {ext}"
            )
    if "datetime" in formats and len(formats) > 1:
        raise UsageError(
            f"{TEMPLATE_FIELD}: {{datetime:...}} cannot be combined with {{date}} or {{time}} in {pattern!r}"
        )
    if not has_camera and not formats:
        raise UsageError(f"{TEMPLATE_FIELD}: {pattern!r} has none of {{camera}} {{date}} {{time}} {{datetime}}")
    return _Pattern(pattern, re.compile("".join(parts)), formats)


class TimeTemplate:
    """Reads the camera and the recording start from video ids (syntax in the module docstring).

    `pattern` is one pattern or several separated by ``|`` (the first that matches wins); `timezone` is the IANA
    zone of the local times in the ids. Raises UsageError naming ``reports.time_template`` or ``reports.timezone``.
    """

    def __init__(self, pattern: str, timezone: str = "UTC") -> None:
        if not isinstance(pattern, str) or not pattern.strip():
            raise UsageError(
                f"{TEMPLATE_FIELD}: expected a pattern such as '{{camera}}/{{date:%Y-%m-%d}}/...', got {pattern!r}"
            )
        alternatives = [p.strip() for p in pattern.split("|")]
        if any(not p for p in alternatives):
            raise UsageError(f"{TEMPLATE_FIELD}: empty alternative in {pattern!r}")
        self.pattern = pattern
        self.timezone_name = timezone
        self.timezone: tzinfo = _zone(timezone)
        self._patterns = [_compile(p) for p in alternatives]

    @property
    def patterns(self) -> list[str]:
        """The alternatives, in the order they are tried."""
        return [p.text for p in self._patterns]

    def __repr__(self) -> str:
        return f"TimeTemplate({self.pattern!r}, timezone={self.timezone_name!r})"

    def match(self, video_id: str) -> tuple[str, datetime | None] | None:
        """(camera, start) read from `video_id`, or None when no pattern matches it. The camera is "" when the
        pattern has no {camera}; the start (aware, in the template's zone) is None when the pattern gives no
        date. A pattern whose date or time fields hold impossible values (month 13) does not match."""
        for pattern in self._patterns:
            found = pattern.regex.fullmatch(video_id)
            if found is None:
                continue
            try:
                values = {name: datetime.strptime(found[name], fmt) for name, fmt in pattern.formats.items()}
            except ValueError:  # the right shape, impossible values
                continue
            camera = found.groupdict().get("camera") or ""
            return camera, self._start(values)
        return None

    def _start(self, values: dict[str, datetime]) -> datetime | None:
        if "datetime" in values:
            naive = values["datetime"]
        elif "date" in values:
            day: date = values["date"].date()
            clock = values["time"].time() if "time" in values else time(0)
            naive = datetime.combine(day, clock)
        else:
            return None
        # fold=0: a repeated local time is its first occurrence; the UTC round trip normalises a skipped one
        return naive.replace(tzinfo=self.timezone).astimezone(timezone.utc).astimezone(self.timezone)


def first_folder(video_id: str) -> str:
    """The first folder of a video id ("Fighting/test003.mp4" -> "Fighting"), "" when the id has none."""
    head, sep, _ = video_id.partition("/")
    return head if sep else ""


def recording_of(
    video_id: str,
    template: TimeTemplate | None,
    creation_time: Callable[[], datetime | None] | None = None,
) -> Recording:
    """The camera and start of one video: from `template` when it matches and gives a start, else the start from
    `creation_time()` (called only then; e.g. ``lambda: container_creation_time(path, tz)``), else none. The camera
    is the template's, else the id's first folder. A container start is shown in the template's zone (UTC without
    a template); a naive one is read in that zone. Exceptions from `creation_time` propagate."""
    matched = template.match(video_id) if template is not None else None
    camera, start = matched if matched is not None else ("", None)
    camera = camera or first_folder(video_id)
    if start is not None:
        return Recording(camera, start, "template")
    if creation_time is not None:
        created = creation_time()
        if created is not None:
            zone = template.timezone if template is not None else timezone.utc
            created = created.replace(tzinfo=zone) if created.tzinfo is None else created.astimezone(zone)
            return Recording(camera, created, "container")
    return Recording(camera, None, "none")


def parse_creation_time(value: str | None, timezone_name: str = "UTC") -> datetime | None:
    """An ISO-like creation time ("2026-11-28T01:00:00.000000Z", "2026-11-28 01:00:00", "...+03:00") as an aware
    datetime in `timezone_name`; a value without an offset is read in that zone. None when missing, unparsable,
    impossible, or before 1971 (the 1904 and 1970 epochs clockless cameras write)."""
    if not value:
        return None
    found = _ISO.fullmatch(value.strip())
    if found is None:
        return None
    year, month, day, hour, minute, second, fraction, offset = found.groups()
    zone = _zone(timezone_name)
    try:
        naive = datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "0")[:6].ljust(6, "0")),
        )
        if offset is None:
            parsed = naive.replace(tzinfo=zone)
        elif offset.upper() == "Z":
            parsed = naive.replace(tzinfo=timezone.utc)
        else:
            sign = -1 if offset[0] == "-" else 1
            digits = offset[1:].replace(":", "")
            delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
            parsed = naive.replace(tzinfo=timezone(sign * delta))
    except ValueError:
        return None
    if parsed.year < _EARLIEST_CREATION_YEAR:
        return None
    return parsed.astimezone(zone)


def container_creation_time(path: str, timezone: str = "UTC") -> datetime | None:
    """The container's creation time (the ``creation_time`` tag of the container, else of its first video stream,
    as FFmpeg reads MP4/MOV/MKV headers) as an aware datetime shown in `timezone`; a value without an offset is read
    in it. None when the tag is missing or unparsable, or the file cannot be opened or demuxed: never raises for a
    bad file (an unknown `timezone` raises UsageError)."""
    import av

    _zone(timezone)  # a bad setting is a usage error, not a missing time
    try:
        with av.open(path) as container:
            values = [container.metadata.get("creation_time")]
            values += [stream.metadata.get("creation_time") for stream in container.streams.video[:1]]
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError):
        return None
    for value in values:
        parsed = parse_creation_time(value, timezone)
        if parsed is not None:
            return parsed
    return None
