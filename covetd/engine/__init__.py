"""The hot path: one asyncio protocol per connection feeding a sans-IO HTTP/1.1 core."""
