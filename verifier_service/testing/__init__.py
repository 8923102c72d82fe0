"""Stand-ins for what Sieve talks to, for tests and benchmarks (see :mod:`.repl_double`)."""
