"""Bronze: every landed snapshot and event, typed, as Delta tables per source table."""

from c360_assets.bronze import salesforce, sap, segment, shopify, zendesk
from c360_assets.bronze.contract import SourceSpec

SOURCES: tuple[SourceSpec, ...] = (
    salesforce.SOURCE,
    sap.SOURCE,
    shopify.SOURCE,
    segment.SOURCE,
    zendesk.SOURCE,
)
SOURCES_BY_NAME = {s.name: s for s in SOURCES}
