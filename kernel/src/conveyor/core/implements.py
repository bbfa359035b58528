"""``implements``: a runtime protocol check, made once per class.

``isinstance`` against a ``runtime_checkable`` protocol looks up every member the protocol
declares, each time (tens of microseconds on Python 3.11). Building a ``Messaging`` asks it a
dozen times (is the transport inspectable, renewable, is the clock steppable), and a test suite
builds one per test. What a class implements does not change while the class lives, so the answer
is kept per class, and dropped with the class.
"""

from __future__ import annotations

import threading
from weakref import WeakKeyDictionary

__all__ = ["implements"]

_ANSWERS: WeakKeyDictionary[type, dict[type, bool]] = WeakKeyDictionary()
_LOCK = threading.Lock()


def implements(value: object, protocol: type) -> bool:
    """``isinstance(value, protocol)``, asked of ``protocol`` once per class of ``value``.

    For protocols whose members are all methods or properties of the class: an attribute set on
    one instance only is not seen (the kernel's seams never rely on one).
    """
    kind = type(value)
    answers = _ANSWERS.get(kind)
    if answers is None:
        with _LOCK:
            answers = _ANSWERS.setdefault(kind, {})
    answer = answers.get(protocol)
    if answer is None:
        answer = answers[protocol] = isinstance(value, protocol)
    return answer
