"""A local stand-in for Alleaves, Alpine IQ and Discord, on one port, for tests and benchmarks.

It speaks exactly the shapes of EXTERNAL_APIS.md, quirks included, from a deterministic dataset
(``data``), and can be told to misbehave (``faults``): latency, 5xx errors, rate limits, short-lived
tokens, a failing webhook. ``loyalty-worker sandbox`` runs it; pointing the worker's base URLs
at production is the only change the real services need. With ``--count-calls-by-org``
(``org_calls``) it also counts each org's requests, for benchmarks of many orgs at once.
"""
