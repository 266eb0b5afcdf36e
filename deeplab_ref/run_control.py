"""What a long training run needs besides the step itself: stopping cleanly and saying how far it is.

* ``StopRequests``: while it is active, Ctrl-C (SIGINT) and SIGTERM (what ``kill``, a job
  scheduler or ``torchrun`` send) do not kill the process mid-step; they set a flag the trainer
  reads after each step, so it can finish the step, write a checkpoint and raise
  ``TrainingInterrupted``. A second Ctrl-C while a request is pending stops at once.
* ``Progress``: a tqdm bar when standard error is a terminal; otherwise, as in a CI log or
  ``make demo > log 2>&1``, one plain line every ``every`` iterations, so a redirected log stays
  a few hundred lines long instead of thousands of carriage-return updates.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from types import FrameType, TracebackType

from tqdm import tqdm

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingInterrupted(Exception):
    """Training stopped on a signal after writing a checkpoint at ``iteration``."""

    def __init__(self, iteration: int, signal_name: str) -> None:
        super().__init__(
            f"interrupted ({signal_name}) at iteration {iteration}: continue with --resume"
        )
        self.iteration = iteration
        self.signal_name = signal_name


class StopRequests:
    """A context manager that turns SIGINT and SIGTERM into a request (``requested``) instead of
    an exception in the middle of a step. Outside the main thread, where Python cannot install
    signal handlers, it does nothing and signals behave as usual."""

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signal_name is not None

    def _handle(self, number: int, frame: FrameType | None) -> None:
        if self.requested and number == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: the user does not want to wait
        self.signal_name = signal.Signals(number).name

    def __enter__(self) -> StopRequests:
        if threading.current_thread() is threading.main_thread():
            for number in STOP_SIGNALS:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()


class Progress:
    """Iterations ``start`` .. ``total``: a bar on a terminal, else a line every ``every``."""

    def __init__(self, start: int, total: int, every: int, enabled: bool = True) -> None:
        self.total, self.every, self.enabled = total, every, enabled
        self.interactive = enabled and sys.stderr.isatty()
        self._bar = tqdm(initial=start, total=total, disable=not self.interactive)
        self._start_time, self._start = time.perf_counter(), start

    def update(self, iteration: int, loss: float, lr: float) -> None:
        """Report that ``iteration`` (counted from 1) is done."""
        if self.interactive:
            self._bar.update(1)
            self._bar.set_postfix(loss=f"{loss:.3f}", lr=f"{lr:.2e}", refresh=False)
        elif self.enabled and (iteration % self.every == 0 or iteration == self.total):
            rate = (iteration - self._start) / max(time.perf_counter() - self._start_time, 1e-9)
            print(
                f"iteration {iteration}/{self.total}  loss {loss:.4f}  lr {lr:.2e}  "
                f"{rate:.1f} it/s",
                file=sys.stderr,
                flush=True,
            )

    def close(self) -> None:
        self._bar.close()
