"""What `carpose` commands print on the terminal besides their results: progress bars, and none of the libraries'
deprecation noise.

Progress goes to stderr (results go to stdout, so `carpose predict ... > rows.jsonl` stays clean) and only where
stderr is a terminal, or where CARPOSE_PROGRESS=1 asks for it (a log file, a benchmark reading the bar's timing);
`--quiet` turns it off whatever the rest says. Long-running steps call `progress(...)` and need not
know about either.

The library warnings silenced here are each matched by message, category and emitting module, and only for the
CLI process (`quiet_library_warnings`, called by service.cli.run): all of them come from code that is not ours
(fvcore, detectron2 and OpenVINO's converter calling torch APIs that torch has deprecated), say nothing a user
can act on, and print on every command. Anything else still prints.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_state = {"quiet": False}

# (message regex, category, module regex) of warnings.warn calls in the libraries, as filterwarnings takes them.
LIBRARY_WARNINGS: tuple[tuple[str, type[Warning], str], ...] = (
    # fvcore (focal_loss.py) and detectron2 decorate functions with @torch.jit.script at import time.
    (r"`torch\.jit\.script` is deprecated", FutureWarning, r"torch\.jit\._script"),
    # detectron2's anchor generator calls torch.meshgrid(y, x) without `indexing` (it means "ij", the default).
    (r"torch\.meshgrid: in an upcoming release", UserWarning, r"torch\.functional"),
    # OpenVINO's convert_model traces each network with torch.jit.trace when the engine converts it.
    (r"`torch\.jit\.trace(_method)?` is deprecated", FutureWarning, r"torch\.jit\._trace"),
)
# (logger, message prefix) of log records: torch logs this once when detectron2's poolers ask is_fx_tracing().
LIBRARY_LOG_RECORDS: tuple[tuple[str, str], ...] = (
    ("torch.fx._symbolic_trace", "is_fx_tracing will return true for both fx.symbolic_trace and torch.export"),
)


class _DropMessages(logging.Filter):
    def __init__(self, prefixes: tuple[str, ...]) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefixes)


def quiet_library_warnings() -> None:
    for message, category, module in LIBRARY_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
    for logger, prefix in LIBRARY_LOG_RECORDS:
        logging.getLogger(logger).addFilter(_DropMessages((prefix,)))


def set_quiet(quiet: bool) -> None:
    """`--quiet`: no progress bars, whatever stderr is."""
    _state["quiet"] = quiet


PROGRESS_VARIABLE = "CARPOSE_PROGRESS"


def progress_enabled() -> bool:
    return not _state["quiet"] and (sys.stderr.isatty() or os.environ.get(PROGRESS_VARIABLE) == "1")


def progress(iterable: Iterable[T], total: int | None = None, desc: str | None = None, unit: str = "it") -> Iterator[T]:
    """`iterable`, with a tqdm bar on stderr while it is consumed (where progress_enabled())."""
    from tqdm import tqdm

    yield from tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr, disable=not progress_enabled())
