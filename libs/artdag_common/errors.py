"""The error hierarchy every service shares.

`PermanentError` means "never retry: the input is wrong"; `RetryableError` means
"the world hiccuped: try again, within a bound". One place in the bus layer maps
these to message fate and one place in the gateway maps them to HTTP status codes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pydantic import ValidationError


class ArtdagError(Exception):
    """Root of every error artdag raises on purpose."""

    code = "internal"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message

    def __reduce__(self) -> tuple[object, ...]:
        # Keep `field` when the error crosses a process-pool boundary.
        return (self.__class__, (self.message,), {"field": self.field})


class PermanentError(ArtdagError):
    """Retrying cannot help: bad input, unsupported media, a broken recipe."""

    code = "permanent"


class RetryableError(ArtdagError):
    """A transient failure (I/O, timeouts, a busy peer): retry with back-off."""

    code = "retryable"


class InvalidInputError(PermanentError, ValueError):
    """Input from outside failed validation; `field` names what was wrong."""

    code = "invalid"


class SyntaxInputError(InvalidInputError):
    """Input that could not even be parsed (YAML or JSON syntax)."""

    code = "syntax"


class InvalidCidError(InvalidInputError):
    """A string that is not a well-formed CID."""

    code = "invalid_cid"


class NotFoundError(PermanentError, LookupError):
    """The named object (content, run, recipe) does not exist."""

    code = "not_found"


class PayloadTooLargeError(PermanentError):
    """An upload or message exceeded its configured limit."""

    code = "too_large"


class InvalidMediaError(PermanentError, ValueError):
    """Media that cannot be decoded, or lacks a stream the operation needs."""

    code = "invalid_media"


class BadRequestError(InvalidInputError):
    """A request that cannot be served as asked (a directory or device where a file is expected)."""

    code = "bad_request"


class ForbiddenError(PermanentError):
    """The caller may not do this (a path outside the import directories)."""

    code = "forbidden"


class UnauthorizedError(PermanentError):
    """No valid credentials: a token is missing, malformed, unknown, expired or revoked (never echoed)."""

    code = "unauthorized"


class RateLimitedError(PermanentError):
    """Too many failed attempts from one client: wait `retry_after_s` before trying again."""

    code = "rate_limited"

    def __init__(self, message: str, *, field: str | None = None, retry_after_s: float = 60.0) -> None:
        super().__init__(message, field=field)
        self.retry_after_s = retry_after_s


class ConflictError(PermanentError):
    """The request conflicts with the object's state (deleting content a run still refers to)."""

    code = "conflict"


class ServiceUnavailableError(RetryableError):
    """A service did not answer over the bus in time."""

    code = "unavailable"


class InsufficientStorageError(RetryableError):
    """Free disk space is below the reserve (``ARTDAG_MIN_FREE_BYTES``): nothing new is taken in until some is freed."""

    code = "insufficient_storage"


class NoAnswerInTimeError(ServiceUnavailableError):
    """A service took the request but did not answer in time (it may still carry it out)."""


ERRORS_BY_CODE: dict[str, type[ArtdagError]] = {
    cls.code: cls
    for cls in (
        ArtdagError,
        PermanentError,
        RetryableError,
        InvalidInputError,
        SyntaxInputError,
        InvalidCidError,
        NotFoundError,
        PayloadTooLargeError,
        InvalidMediaError,
        BadRequestError,
        ForbiddenError,
        UnauthorizedError,
        RateLimitedError,
        ConflictError,
        ServiceUnavailableError,
        InsufficientStorageError,
    )
}


def error_from_code(code: str, message: str, field: str | None = None) -> ArtdagError:
    """Rebuild a typed error from its wire form (see `artdag_common.rpc`)."""
    return ERRORS_BY_CODE.get(code, ArtdagError)(message, field=field)


def field_path(parts: Iterable[str | int]) -> str:
    """The name an error gives a nested field: keys joined by dots, list indices in brackets
    (`steps[2].config.width`); empty for the whole document."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def first_problem(exc: ValidationError) -> tuple[str, tuple[str | int, ...]]:
    """The first problem pydantic found: its message and where (keys and list indices; empty for the whole value)."""
    first = exc.errors(include_url=False)[0]
    return first["msg"], tuple(first["loc"])


def invalid_input(
    exc: ValidationError, *, prefix: str | None = None, unknown: str | None = None, count_more: bool = False
) -> InvalidInputError:
    """The first problem pydantic found as an `InvalidInputError` whose `field` names the culprit.

    The field is where the problem is, parts joined by dots, under `prefix` when given
    (``params.size.0``; the prefix alone for the whole value; None with neither). `unknown`
    replaces pydantic's message for a key the model does not know; `count_more` adds how many
    other problems there are.
    """
    first = exc.errors(include_url=False)[0]
    message = unknown if unknown is not None and first["type"] == "extra_forbidden" else first["msg"]
    more = exc.error_count() - 1
    if count_more and more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    field = ".".join([*([prefix] if prefix is not None else []), *(str(part) for part in first["loc"])])
    return InvalidInputError(message, field=field or None)


# An absolute path on a server's disk: under one of the usual roots, up to a quote, space or bracket;
# or any absolute path a decoder quotes (`… processing input: '/srv/artdag/store/Qm…'`).
_SERVER_PATH = re.compile(
    r"(?<![\w.:/~-])/(?:home|tmp|var|data|root|srv|mnt|opt|usr|etc|run|proc|dev|private|Users|nix)"
    r"(?:/[^\s'\"()\[\]<>,;]*)+"
    r"|(?<=')/[^'\s]+/[^'\s]+(?=')"
)


def public_message(message: str) -> str:
    """`message` without the absolute paths of a server's files (a store path in a decoder's error,
    say): each is cut to its last part, the file's name. An error says what failed, not where."""

    def name_only(match: re.Match[str]) -> str:
        return match.group(0).rstrip("/").rsplit("/", 1)[-1] or "(a file)"

    return _SERVER_PATH.sub(name_only, message)
