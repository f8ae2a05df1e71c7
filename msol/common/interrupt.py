"""Clean interruption: SIGINT (Ctrl-C), SIGTERM (how SLURM cancels jobs) and submitit's preemption/timeout
signal (SIGUSR2 unless ``SUBMITIT_PREEMPT_SIGNAL`` names another).

The first signal only raises a flag; the training loop finishes its current update, writes a checkpoint and raises
:class:`Interrupted`, and ``python -m msol.train`` prints the ``resume=`` command and exits with ``128 + signal``
(130 for SIGINT, 143 for SIGTERM, 140 for SIGUSR2). A second Ctrl-C aborts at once (the last checkpoint stays the last
good one). Inside a submitit job the preemption signal is then handed to submitit's own handler
(:func:`hand_over`), which requeues the job; the requeued sweep job finds its run directory and continues it.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11 on
from types import FrameType, TracebackType


def preemption_signal() -> signal.Signals:
    """The signal submitit (and its SLURM ``--signal``) sends before a timeout or preemption."""
    return signal.Signals[f"SIG{os.environ.get('SUBMITIT_PREEMPT_SIGNAL', 'USR2')}"]


class Interrupted(Exception):
    """Training stopped on a signal after writing a checkpoint."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.signum = signum

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


class StopSignals:
    """Context manager: while active, SIGINT, SIGTERM and the preemption signal set :attr:`signum` instead of stopping
    the process.

    Outside the main thread (where Python cannot install handlers) it does nothing.
    """

    def __init__(self) -> None:
        self.signals = (signal.SIGINT, signal.SIGTERM, preemption_signal())
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # the second Ctrl-C: stop now
        self.signum = signum

    def __enter__(self) -> Self:
        if threading.current_thread() is threading.main_thread():
            for sig in self.signals:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


def hand_over(signum: int) -> None:
    """After the checkpoint of an interruption by the preemption signal: call the handler that was installed before
    ours (submitit's: it requeues the job and exits). Does nothing for other signals or without such a handler."""
    if signum != preemption_signal():
        return
    handler = signal.getsignal(signum)
    if callable(handler):
        handler(signum, None)
