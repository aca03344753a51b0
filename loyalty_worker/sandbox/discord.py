"""Discord's limits on a webhook message, and the 400 bodies Discord answers when one is broken."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NotRequired, TypeAlias, TypedDict

MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_FIELDS = 25
MAX_EMBED_TOTAL = 6000


class FieldError(TypedDict):
    code: str
    message: str


# Errors nested along the path of the offending value: {"embeds": {"0": {"_errors": [...]}}}.
ErrorTree: TypeAlias = "dict[str, ErrorTree | list[FieldError]]"


class DiscordError(TypedDict):
    """The body of Discord's 400 answer."""

    message: str
    code: int
    errors: NotRequired[ErrorTree]


_EMPTY_MESSAGE: DiscordError = {"message": "Cannot send an empty message", "code": 50006}


@dataclass(frozen=True, slots=True)
class _EmbedSize:
    fields: int
    characters: int  # what Discord counts towards the 6,000 that a message's embeds share


def _invalid_form(path: list[str], code: str, message: str) -> DiscordError:
    """Discord's "Invalid Form Body": errors nested along the path of the offending value."""
    errors: ErrorTree = {"_errors": [{"code": code, "message": message}]}
    for key in reversed(path):
        errors = {key: errors}
    return {"message": "Invalid Form Body", "code": 50035, "errors": errors}


def _too_long(path: list[str], limit: int) -> DiscordError:
    return _invalid_form(path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")


def _embed_size(value: object) -> _EmbedSize | None:
    """What Discord measures of an embed; None when the value is not an object whose
    ``fields``, when present, are objects (Discord cannot measure it)."""
    if not isinstance(value, dict):
        return None
    fields = value.get("fields")
    if fields is not None and not (
        isinstance(fields, list) and all(isinstance(field, dict) for field in fields)
    ):
        return None
    parts = [value.get("title"), value.get("description")]
    for block, key in (("footer", "text"), ("author", "name")):
        if isinstance(value.get(block), dict):
            parts.append(value[block].get(key))
    for field in fields or ():
        parts.extend((field.get("name"), field.get("value")))
    characters = sum(len(str(part)) for part in parts if part is not None)
    return _EmbedSize(len(fields or ()), characters)


def payload_error(payload: object) -> DiscordError | None:
    """Discord's 400 body for a message it would refuse, or None when it would post it."""
    if not isinstance(payload, dict):
        return _EMPTY_MESSAGE
    content = payload.get("content")
    embeds = payload.get("embeds")
    if content is not None and not isinstance(content, str):
        return _invalid_form(["content"], "STRING_TYPE_CONVERT", "Must be a string.")
    if embeds is not None and not isinstance(embeds, list):
        return _invalid_form(["embeds"], "LIST_TYPE_CONVERT", "Must be an array.")
    sizes = []
    for position, embed in enumerate(embeds or ()):
        size = _embed_size(embed)
        if size is None:
            return _invalid_form(
                ["embeds", str(position)], "MODEL_TYPE_CONVERT", "Must be a valid embed."
            )
        sizes.append(size)
    if not content and not embeds:
        return _EMPTY_MESSAGE
    if content is not None and len(content) > MAX_CONTENT:
        return _too_long(["content"], MAX_CONTENT)
    if len(sizes) > MAX_EMBEDS:
        return _too_long(["embeds"], MAX_EMBEDS)
    for position, size in enumerate(sizes):
        if size.fields > MAX_FIELDS:
            return _too_long(["embeds", str(position), "fields"], MAX_FIELDS)
    if sum(size.characters for size in sizes) > MAX_EMBED_TOTAL:
        message = f"Embed size exceeds maximum size of {MAX_EMBED_TOTAL}"
        return _invalid_form(["embeds"], "MAX_EMBED_SIZE_EXCEEDED", message)
    return None
