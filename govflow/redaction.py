"""A formatter wrapper that keeps personal data out of every log line (issue 14: the door).

Installed around the formatter of the one handler of :func:`govflow.logs.configure`
(serve and worker), it formats a rewritten copy of each record:

* an exception attached to the record (``exc_info``) is replaced by its type and stack
  frames (:func:`govflow.api.faults`-style): the message of a driver's or library's
  exception can quote a failed statement's parameters or a validator's input (a
  reporter's name, phone or description); govflow's own errors keep their message;
* SQLAlchemy's ``[parameters: ...]`` sections are removed (the engine is also created
  with ``hide_parameters=True``);
* mobile and landline phone numbers are masked wherever they appear.
"""

from __future__ import annotations

import copy
import logging
import re
import traceback

from govflow.engine.model.errors import GovflowError

_PARAMETERS = re.compile(r"\[parameters: .*?\]\n?", re.DOTALL)
#: Chinese mobile numbers (11 digits from 1[3-9]) and landlines (0xx-xxxxxxx), not inside longer tokens
_PHONE = re.compile(r"(?<![0-9A-Za-z])(?:\+?86[- ]?)?(?:1[3-9]\d{9}|0\d{2,3}-\d{7,8})(?![0-9A-Za-z])")


def redact(text: str) -> str:
    """``text`` without SQL parameter dumps and with phone numbers masked."""
    return _PHONE.sub("[phone]", _PARAMETERS.sub("[parameters hidden]", text))


def describe_exception(exc: BaseException) -> str:
    """Type and frames of ``exc`` and its causes; the message only for govflow's own errors."""
    parts: list[str] = []
    current: BaseException | None = exc
    while current is not None and len(parts) < 5:
        name = f"{type(current).__module__}.{type(current).__qualname__}"
        head = f"{name}: {current.message}" if isinstance(current, GovflowError) else f"{name} (message withheld)"
        frames = "".join(traceback.format_list(traceback.extract_tb(current.__traceback__)))
        parts.append(f"{head}\n{frames}".rstrip())
        current = current.__cause__ or current.__context__
    return "\nwhile handling:\n".join(reversed(parts))


class Redacting(logging.Formatter):
    """Wraps a handler's formatter: formats a redacted copy of each record (see the module docstring).

    The record itself is left as it is, for any other handler (a test's capture, say).
    """

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        clean = copy.copy(record)
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: keep only its template
            message = str(record.msg)
        if record.exc_info and record.exc_info[1] is not None:
            message = f"{message}\n{describe_exception(record.exc_info[1])}"
        clean.msg, clean.args, clean.exc_info, clean.exc_text = redact(message), None, None, None
        return self.inner.format(clean)


__all__ = ["Redacting", "describe_exception", "redact"]
