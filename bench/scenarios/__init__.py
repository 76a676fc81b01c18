"""The benchmark scenarios, one module each, each a :class:`bench.harness.Scenario`."""
