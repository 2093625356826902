"""The router: ingests platform events, matches them to subscriptions, fans out delivery jobs."""
