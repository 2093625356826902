"""The subscriptions service: event-sourced webhook subscriptions and client certificates."""
