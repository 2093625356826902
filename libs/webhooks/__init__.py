"""Generated contracts (package ``webhooks.v1``): regenerate with ``make protos``."""
