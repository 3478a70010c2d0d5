"""uvicorn's HTTP/1.1 protocol with a deadline for a request's headers: uvicorn closes idle
keep-alive connections, but a client that sends its headers a byte at a time (or sends part
of them and stops) holds a connection forever. Here a connection with no request under way
for ``header_timeout`` seconds is closed."""

from __future__ import annotations

from uvicorn.protocols.http.h11_impl import H11Protocol


def timed_protocol(header_timeout: float) -> type[H11Protocol]:
    """An H11Protocol class whose connections close after ``header_timeout`` seconds
    without a request under way (headers not complete, or idle after a response)."""

    class TimedH11Protocol(H11Protocol):
        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._seen_cycle = None
            self._deadline = self.loop.call_later(header_timeout, self._check_progress)

        def _check_progress(self) -> None:
            cycle = self.cycle
            busy = cycle is not None and not cycle.response_complete
            if not busy and cycle is self._seen_cycle:  # no new request since the last check
                self.transport.close()
                return
            self._seen_cycle = cycle
            self._deadline = self.loop.call_later(header_timeout, self._check_progress)

        def connection_lost(self, exc) -> None:
            self._deadline.cancel()
            super().connection_lost(exc)

    return TimedH11Protocol
