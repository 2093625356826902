"""A subscription's retry policy: its defaults and bounds.

The subscriptions service fills an unset policy with the defaults and refuses values out of
bounds; the sender applies the defaults to a state whose policy fields are unset; the CLI
and the console offer them. The lowest
interval is the operator's (``WEBHOOKS_MIN_RETRY_INTERVAL_SECONDS``), not a fact of the
policy.
"""

DEFAULT_RETRIES = 3  # attempts after the first
DEFAULT_INTERVAL_SECONDS = 300
MAX_RETRIES = 5
MAX_INTERVAL_SECONDS = 86400
