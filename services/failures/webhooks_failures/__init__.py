"""The failures service: the failed-events view projected from ATTEMPTS, its queries,
redelivery and rebuild."""
