"""The subscription domain: aggregates, their events and rules. Imports no I/O library."""
