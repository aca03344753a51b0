"""The one check every secret setting passes at start-up: long enough, not a placeholder, and not
guessable from its own characters.

Both settings classes (``config.Settings``, ``api.settings.ApiSettings``) call ``check_secret``
for each of their secrets, naming the environment variable; the message never repeats the value
(settings errors are printed and logged).

The entropy is an estimate made from the value alone: the Shannon entropy of its characters
times its length, or of the steps between neighbouring characters when that is lower (so
``abcdef…``, ``0123…`` and a short pattern repeated count for little). A random value scores
about its real strength, a made-up one far less: ``aaaaaaaaaaaaabcd`` scores 11 bits,
``secrets.token_urlsafe(24)`` about 145 and ``openssl rand -hex 24`` about 180.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from itertools import pairwise

# Words that sample files, tutorials and first tries use: a value holding one (in any case) is
# refused, wherever the word stands in it.
PLACEHOLDERS = (
    "changeme",
    "change-me",
    "change_me",
    "password",
    "passwd",
    "secret",
    "example",
    "token",
    "admin",
    "placeholder",
    "qwerty",
    "letmein",
)

# What to run for a value that passes; said in every refusal.
GENERATE = "generate one with `openssl rand -hex 32`"


@dataclass(frozen=True)
class Strength:
    """What one kind of secret must reach."""

    min_length: int
    min_bits: float


# Keys and bearer tokens (the phone-hash key, API tokens, webhook secrets): only machines type
# them. `secrets.token_urlsafe(16)` and `openssl rand -hex 16` score 74+ bits.
KEY = Strength(min_length=16, min_bits=64)
# A password a person may type (Flower's basic auth): shorter, but still no placeholder and no
# pattern; 16 random letters and digits score 44+ bits.
PASSWORD = Strength(min_length=12, min_bits=32)


def _shannon_bits(symbols: Sequence[Hashable]) -> float:
    """The Shannon entropy of ``symbols``' frequencies, times their number."""
    n = len(symbols)
    if n == 0:
        return 0.0
    return -sum(count * math.log2(count / n) for count in Counter(symbols).values())


def _steps(value: str) -> list[int]:
    """How far each character is from the one before it (``abc``: ``[1, 1]``)."""
    return [ord(b) - ord(a) for a, b in pairwise(value)]


def estimated_bits(value: str) -> float:
    """How many bits ``value`` is worth, judged from its own characters (see the module)."""
    return max(0.0, min(_shannon_bits(value), _shannon_bits(_steps(value))))


def weakness(value: str, strength: Strength = KEY) -> str | None:
    """Why ``value`` is refused, in words that never quote it; None when it is strong enough."""
    if len(value) < strength.min_length:
        return f"has fewer than {strength.min_length} characters"
    lowered = value.lower()
    if any(word in lowered for word in PLACEHOLDERS):
        return "holds a placeholder word (such as change-me, password, secret, token or admin)"
    if len(set(_steps(value))) <= 1:
        return "is one character repeated or a straight run (like abcdef or 123456)"
    bits = estimated_bits(value)
    if bits < strength.min_bits:
        return (
            f"is too predictable (about {bits:.0f} bits of entropy from its characters, "
            f"{strength.min_bits:.0f} needed)"
        )
    return None


def check_secret(value: str, variable: str, strength: Strength = KEY, *, whose: str = "") -> None:
    """Raise ``ValueError`` naming ``variable`` (and ``whose`` value within it) when ``value`` is
    weak. The message never holds the value."""
    reason = weakness(value, strength)
    if reason is not None:
        subject = f"{variable} ({whose})" if whose else variable
        raise ValueError(f"{subject} {reason}: {GENERATE}")


def is_strong(value: str, strength: Strength = KEY) -> bool:
    """Whether ``value`` passes ``check_secret``."""
    return weakness(value, strength) is None
