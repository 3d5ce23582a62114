"""The Covet web framework: routing, requests, responses."""
