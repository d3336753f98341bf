"""Cleanup that a signal cannot cut in half.

A Ctrl-C or SIGTERM that arrives while a temporary container is being stopped and deleted used to
raise in the middle and leave it STOPPED (found by tests/faults: verify, SIGTERM at 5.8 s). Inside
`deferred()` the signal is only recorded; it is delivered, through the handler that was in place,
as soon as the cleanup is done.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Iterator

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM until the block ends, then deliver the first one that came."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread receives signals (and may set handlers)
        return
    previous: dict[int, Any] = {int(s): signal.getsignal(s) for s in _SIGNALS}
    caught: list[int] = []

    def hold(signum: int, frame: Any) -> None:
        caught.append(signum)

    for sig in _SIGNALS:
        signal.signal(sig, hold)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if caught:
            handler = previous[caught[0]]
            if callable(handler):
                handler(caught[0], None)
            elif handler == signal.SIG_DFL and caught[0] == signal.SIGINT:
                raise KeyboardInterrupt
