"""Chaos cases: the whole stack on real parts, with one part failing in each case."""
