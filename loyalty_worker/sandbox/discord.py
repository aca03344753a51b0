"""Discord's limits on a webhook message, and the 400 bodies Discord answers when one is broken."""

from __future__ import annotations

from typing import Any

MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_FIELDS = 25
MAX_EMBED_TOTAL = 6000
_EMPTY_MESSAGE = {"message": "Cannot send an empty message", "code": 50006}


def _invalid_form(path: list[str], code: str, message: str) -> dict[str, Any]:
    """Discord's "Invalid Form Body": errors nested along the path of the offending value."""
    errors: dict[str, Any] = {"_errors": [{"code": code, "message": message}]}
    for key in reversed(path):
        errors = {key: errors}
    return {"message": "Invalid Form Body", "code": 50035, "errors": errors}


def _too_long(path: list[str], limit: int) -> dict[str, Any]:
    return _invalid_form(path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")


def _embed_text(embed: dict[str, Any]) -> int:
    """Characters Discord counts towards the 6,000 that a message's embeds share."""
    parts = [embed.get("title"), embed.get("description")]
    for block, key in (("footer", "text"), ("author", "name")):
        if isinstance(embed.get(block), dict):
            parts.append(embed[block].get(key))
    for field in embed.get("fields") or ():
        parts.extend((field.get("name"), field.get("value")))
    return sum(len(str(part)) for part in parts if part is not None)


def _is_embed(value: Any) -> bool:
    """An object whose ``fields``, when present, are objects: what the limits below can measure."""
    if not isinstance(value, dict):
        return False
    fields = value.get("fields")
    return fields is None or (
        isinstance(fields, list) and all(isinstance(field, dict) for field in fields)
    )


def payload_error(payload: Any) -> dict[str, Any] | None:
    """Discord's 400 body for a message it would refuse, or None when it would post it."""
    if not isinstance(payload, dict):
        return _EMPTY_MESSAGE
    content = payload.get("content")
    embeds = payload.get("embeds")
    if content is not None and not isinstance(content, str):
        return _invalid_form(["content"], "STRING_TYPE_CONVERT", "Must be a string.")
    if embeds is not None and not isinstance(embeds, list):
        return _invalid_form(["embeds"], "LIST_TYPE_CONVERT", "Must be an array.")
    for position, embed in enumerate(embeds or ()):
        if not _is_embed(embed):
            return _invalid_form(
                ["embeds", str(position)], "MODEL_TYPE_CONVERT", "Must be a valid embed."
            )
    if not content and not embeds:
        return _EMPTY_MESSAGE
    if content is not None and len(content) > MAX_CONTENT:
        return _too_long(["content"], MAX_CONTENT)
    embeds = embeds or []
    if len(embeds) > MAX_EMBEDS:
        return _too_long(["embeds"], MAX_EMBEDS)
    for position, embed in enumerate(embeds):
        if len(embed.get("fields") or ()) > MAX_FIELDS:
            return _too_long(["embeds", str(position), "fields"], MAX_FIELDS)
    if sum(_embed_text(embed) for embed in embeds) > MAX_EMBED_TOTAL:
        message = f"Embed size exceeds maximum size of {MAX_EMBED_TOTAL}"
        return _invalid_form(["embeds"], "MAX_EMBED_SIZE_EXCEEDED", message)
    return None
