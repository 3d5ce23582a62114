"""Sans-IO HTTP/1.1: bytes in, request heads and body events out; responses to bytes.

Nothing in this package touches a socket, a transport or an event loop.
"""
