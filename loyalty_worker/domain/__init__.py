"""The pure loyalty rules: standard library only, no I/O."""
