"""pytest fixtures for eventhub plugin authors (registered through ``pytest11``)."""
