"""What every command-line tool shares: logging set-up, thread limits, error reporting."""

from __future__ import annotations

import functools
import logging
import os
import signal
import sys
import threading
from typing import Callable

# Errors that users cause (bad input, missing files, wrong options): printed as one clear
# line, without a traceback. Anything else is a bug and keeps its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, FileExistsError, KeyError)


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )


def limit_threads(num_threads: int | None = None) -> int:
    """Set torch's intra-op threads from OMP_NUM_THREADS (or ``num_threads``); returns the count."""
    n = num_threads or int(os.environ.get("OMP_NUM_THREADS", "0") or 0) or os.cpu_count() or 1
    try:
        import torch

        torch.set_num_threads(n)
    except ImportError:
        pass
    return n


def split_names(values: list[str] | None) -> list[str]:
    """Names given as separate arguments or as space-separated strings (a recipe passes lists
    either way), flattened."""
    return [name for value in values or () for name in value.split()]


def cli_main(func: Callable[[list[str] | None], int | None]) -> Callable[[list[str] | None], int]:
    """Decorate a tool's ``main(argv)``: logging on, user errors printed as ``ERROR: ...``."""

    @functools.wraps(func)
    def wrapper(argv: list[str] | None = None) -> int:
        setup_logging()
        if threading.current_thread() is threading.main_thread():
            # A job started in the background of a shell script (run_job.sh runs its jobs with
            # "&") inherits SIGINT ignored, so Ctrl-C would leave it running: stop on it anyway.
            signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            return func(argv) or 0
        except USER_ERRORS as err:
            message = err.args[0] if isinstance(err, KeyError) and err.args else err
            print(f"ERROR: {message}", file=sys.stderr)
            return 1

    return wrapper
