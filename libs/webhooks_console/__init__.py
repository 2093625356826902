"""The admin console."""
