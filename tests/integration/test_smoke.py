from support.rawhttp import RawConnection


def test_serves_get_and_keeps_the_connection_alive(covetd) -> None:
    server = covetd("basic:app")
    with RawConnection(server.host, server.port) as conn:
        for _ in range(3):
            conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            response = conn.read_response()
            assert (response.status, response.body) == (200, b"hello")
