"""The ``webhooks`` command line: ``up`` and ``serve`` run the platform, the other commands
are a gRPC client of the subscriptions service (subscriptions, certificates, catalogue)."""
