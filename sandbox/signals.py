"""Process lifetime of the long-running sandbox: SIGINT, SIGTERM and SIGHUP all unwind it like Ctrl-C.

``myositis-cds sandbox`` holds a FHIR child process and temp dirs in ``with`` blocks; raising
KeyboardInterrupt on each of these signals lets those blocks stop the child and remove the dirs,
wherever start-up or the run loop happens to be.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["STOP_SIGNALS", "stop_on_signals"]

# SIGHUP too: closing the terminal must not leave the FHIR child running.
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Make SIGINT, SIGTERM and SIGHUP unwind the ``with`` blocks like Ctrl-C, whatever the process inherited.

    SIGINT is set explicitly because a shell starts a background job with SIGINT ignored, and Python
    then never installs its KeyboardInterrupt handler: Ctrl-C / ``kill -INT`` did nothing at all.
    """
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    for signum in STOP_SIGNALS:
        signal.signal(signum, _interrupt)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _interrupt(signum: int, frame: Any) -> None:
    # The first signal starts the shutdown; later ones are ignored so they cannot cut short the clean-up
    # (stopping the FHIR child, removing the temp dirs), which is itself bounded by the child's stop grace.
    for other in STOP_SIGNALS:
        signal.signal(other, signal.SIG_IGN)
    raise KeyboardInterrupt
