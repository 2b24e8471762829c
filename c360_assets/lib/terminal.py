"""Text bound for a terminal: data never gets to drive it.

Landed values and file names are attacker-controlled. Printed raw, an escape sequence
in a name could rewrite the screen, retitle the window or hide lines; a bidirectional
override could reorder what is shown. `safe` shows every such character as a visible
escape (`\\x1b`, `\\u202e`) and leaves line breaks, which only the program itself writes
into its output, alone.
"""

from __future__ import annotations

import re

# C0 controls but line feed, DEL, C1 controls, Unicode line/paragraph separators and the
# bidirectional embedding, override and isolate controls.
_UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def safe(text: str) -> str:
    """`text` with every character that could drive a terminal shown as an escape."""
    return _UNSAFE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)
