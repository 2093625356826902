"""The sender: turns delivery jobs into HTTPS requests, records every attempt, retries."""
