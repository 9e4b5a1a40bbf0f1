"""Which model draft nails the annotation page proposes (issue #18): a nail whose outline confidence (mean nail
probability, ``Prediction.nails[i]["confidence"]``) is under ``PROPOSE_BELOW`` is proposed, to
accept or reject with one key, not as a nail to fix (``prelabel/drafts.py``, ``api.OpenView``). Plain Python,
no Django: the effort bench quotes the threshold too.

``PROPOSE_BELOW`` was chosen on the draft nails of the effort bench's weak CPU model on the 32 photos it was
trained on (not the held-out ones): 89 % of the nails under 0.6 have IoU < 0.5 with every answer (spurious or
badly drawn), 53 % of those above.
"""
from __future__ import annotations

PROPOSE_BELOW = 0.6    # outline confidence under which a draft nail is proposed, not shown as a nail


def is_proposed(entry: dict) -> bool:
    """Whether a draft nail (an entry of ``Prediction.nails``) is proposed to accept or reject rather than shown as
    a nail: its outline confidence is under ``PROPOSE_BELOW`` (a nail without one is shown as a nail)."""
    confidence = entry.get("confidence")
    return confidence is not None and confidence < PROPOSE_BELOW
