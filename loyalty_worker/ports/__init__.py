"""The small interfaces the services need, one module per capability; adapters implement
them, fakes stand in for tests. Nothing here imports a service or an adapter."""
