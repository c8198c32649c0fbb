"""The development kit: harnesses the test suite and the benchmarks share.

Real programs on loopback, started and stopped by whoever uses them: Celery workers and
beat (`workers`, with the worker app `celery`), a private Redis (`redis_server`), an SMTP
sink (`smtp`), webhook receivers (`receivers`), deterministic keys, bundles and tokens
(`keykit`), and people with OTP devices and verified sessions (`factories`).

Not shipped: `pyproject.toml` packages only `breakglass`, `drills` and `comms`, and no
runtime code path imports this package.
"""
