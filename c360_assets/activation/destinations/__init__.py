"""Destinations: where syncs write. One module per kind (`postgres`, `salesforce`,
`webhook`, `files`), each with its sync-file keys (`Config`, its `type` literal) and its
`Destination` class; what they share is in `base.py`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from pydantic import Field

from c360_assets.activation.destinations import files, postgres, salesforce, webhook
from c360_assets.activation.destinations.base import (
    NOT_FOUND,
    OK,
    REJECTED,
    BatchRejected,
    Destination,
    DestinationError,
    Outcome,
    RateLimited,
    TokenBucket,
    Transient,
    sent_fields,
)

if TYPE_CHECKING:
    from c360_assets.activation.spec import SyncSpec

KINDS = (postgres, salesforce, webhook, files)
# The `destination:` of a sync file: one of the kinds' configs, told apart by `type`.
DestinationConfigs = Annotated[postgres.Config | salesforce.Config | webhook.Config
                               | files.Config, Field(discriminator="type")]
_BY_TYPE = {m.Config.model_fields["type"].annotation.__args__[0]: m for m in KINDS}


def open_destination(spec: SyncSpec, lake: Path) -> Destination:
    return _BY_TYPE[spec.destination.type].connect(spec, Path(lake))


__all__ = ["NOT_FOUND", "OK", "REJECTED", "BatchRejected", "Destination",
           "DestinationConfigs", "DestinationError", "Outcome", "RateLimited", "TokenBucket",
           "Transient", "open_destination", "sent_fields"]
