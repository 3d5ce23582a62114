"""Rooms and broadcast for WebSockets, across workers (``local``) and hosts (``redis``)."""
