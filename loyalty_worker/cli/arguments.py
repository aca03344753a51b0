"""What the commands share: the type of the subcommands they add themselves to, the values
the generated datasets default to, and argument types that refuse out-of-range values."""

from __future__ import annotations

import argparse
import re
from typing import TypeAlias

# The subcommands of ``loyalty-worker``, to which each command module adds its own.
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

DEFAULT_CUSTOMERS = 200
DEFAULT_SEED = 1
DEFAULT_ORGS = 2
# An entry of --org-sizes: a size, or COUNTxSIZE.
_ORG_SIZE = re.compile(r"(?:(\d+)x)?(\d+)")


def fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def org_sizes(text: str) -> tuple[int, ...]:
    """Each org's customers, in order: ``50000,4x10000,30x300`` (``COUNTxSIZE`` repeats a size)."""
    sizes: list[int] = []
    for item in text.split(","):
        match = _ORG_SIZE.fullmatch(item.strip())
        repeat, customers = (int(match[1] or 1), int(match[2])) if match else (0, 0)
        if repeat < 1 or customers < 1:
            raise argparse.ArgumentTypeError(
                f"{item.strip()!r} is neither a size (>= 1) nor COUNTxSIZE "
                "(e.g. 50000,4x10000,30x300)"
            )
        sizes += [customers] * repeat
    return tuple(sizes)
