"""The key two spellings of one catalogue name share, so a person may type either."""

from __future__ import annotations

import re

# Spaces, separators and the guide's tick marks do not tell two names apart.
_IGNORED = re.compile(r"[\s_\-./()✓]+")


def catalogue_key(text: str) -> str:
    """``On Message Status``, ``onmessagestatus`` and ``OnMessageStatus`` all give
    ``onmessagestatus``; ``Sent ✓`` gives ``sent``; ``Google My Business`` gives
    ``googlemybusiness``."""
    return _IGNORED.sub("", text).casefold()
