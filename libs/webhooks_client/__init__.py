"""What the platform's clients (the CLI, the console) share: building requests from plain
values, so each client only turns its own input (flags, a form) into those values, and
how results read (``subscription_text``, ``failure_text``, ``health_text``, ``protos``,
``triggers``)."""
