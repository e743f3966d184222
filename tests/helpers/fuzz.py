"""Shared settings and checks of the property-based (hypothesis) tests of the readers.

Every reader is given at least :data:`EXAMPLES` generated inputs (``slow`` tests). By
default the inputs are derandomized (the same on every run, so CI never turns red on a
new draw); ``IAE_FUZZ_RANDOM=1`` draws new ones on each run, and ``IAE_FUZZ_EXAMPLES=N``
changes their number, to search further. A failure found is fixed and kept as a named
regression case in the reader's plain tests.
"""

from __future__ import annotations

import os
import re

from hypothesis import HealthCheck, settings

EXAMPLES = int(os.environ.get("IAE_FUZZ_EXAMPLES", "1000"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=os.environ.get("IAE_FUZZ_RANDOM") != "1",
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def assert_one_line(err: BaseException, *names: str) -> None:
    """``err``'s message is one line (no line break of any kind, as ``str.splitlines``
    knows them: a log reader splits there too) and names each of ``names``."""
    message = str(err)
    assert len(message.splitlines()) == 1, repr(message)
    for name in names:
        assert str(name) in message, (name, message)


def kind(err: BaseException) -> str:
    """The kind of a refusal, for hypothesis' statistics (``--hypothesis-show-statistics``):
    its message without the file, numbers and quoted values."""
    text = re.sub(r"\S*/\S*|'[^']*'|\"[^\"]*\"", "", str(err))  # paths, quoted values
    text = re.sub(r"0x[0-9a-f]{2}|\d+", "N", text).lstrip(" :")
    return re.split(r"[;(\[]", text)[0].strip()[:50]
