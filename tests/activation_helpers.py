"""Hand-made gold for the activation tests: customer_profile_v2 and consent_status with
gold's real schemas, identity events, and sync definitions written as files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import yaml

from c360_assets.activation.spec import parse_sync
from c360_assets.lib import delta, layout

UTC = pl.Datetime("us", "UTC")
T0 = dt.datetime(2026, 6, 1, 9, 0, tzinfo=dt.UTC)
ATTRIBUTES = ["email", "first_name", "last_name", "full_name", "phone", "mobile_phone",
              "street", "city", "postal_code", "country", "birth_date", "email_consent"]


def profile_schema() -> dict[str, pl.DataType]:
    schema: dict[str, pl.DataType] = {"customer_id": pl.String()}
    for a in ATTRIBUTES:
        schema[a] = pl.Date() if a == "birth_date" else pl.String()
        schema[f"{a}_source"] = pl.String()
        schema[f"{a}_updated_at"] = UTC
    schema["extensions"] = pl.Map(pl.String(), pl.String())
    schema["source_record_count"] = pl.Int64()
    schema["profile_resolved_at"] = UTC
    return schema


def person(pid: str, *, source: str = "shopify", at: dt.datetime = T0,
           extensions: dict[str, str] | None = None, **values) -> dict:  # noqa: ANN003
    row: dict = {"customer_id": pid}
    for a in ATTRIBUTES:
        value = values.get(a)
        row[a] = value
        row[f"{a}_source"] = values.get(f"{a}_source", source) if value is not None else None
        row[f"{a}_updated_at"] = values.get(f"{a}_updated_at", at) if value is not None else None
    row["extensions"] = extensions or {}
    row["source_record_count"] = 1
    row["profile_resolved_at"] = dt.datetime.now(dt.UTC)
    return row


def write_profiles(lake: Path, rows: list[dict]) -> None:
    schema = profile_schema()
    frame = pl.DataFrame([{k: v for k, v in r.items() if k != "extensions"} for r in rows],
                         schema={k: v for k, v in schema.items() if k != "extensions"})
    ext = pl.Series("extensions", [[{"key": k, "value": v} for k, v in r["extensions"].items()]
                                   for r in rows],
                    dtype=pl.List(pl.Struct({"key": pl.String(), "value": pl.String()})))
    frame = frame.with_columns(ext.cast(schema["extensions"])).select(list(schema))
    if not rows:
        frame = pl.DataFrame(schema=schema)
    delta.write_rows(layout.gold_table(lake, "customer_profile_v2"), frame, append=False,
                     partition_col=None)


def write_consent(lake: Path, rows: list[tuple[str, bool, dt.datetime]],
                  purpose: str = "email_marketing", months: int = 24) -> None:
    """(person, granted, decided_at) -> consent_status as gold builds it, as of now."""
    now = dt.datetime.now(dt.UTC)
    out = []
    for pid, granted, at in rows:
        expires = (at + dt.timedelta(days=int(months * 30.44))) if granted and months else None
        allowed = granted and (expires is None or expires > now)
        status = "revoked" if not granted else ("granted" if allowed else "expired")
        out.append({"customer_id": pid, "purpose": purpose, "status": status, "allowed": allowed,
                    "decided_at": at, "decided_by_source": "shopify",
                    "decided_by_record": f"customer:shopify:{pid}", "expires_at": expires,
                    "status_as_of": now})
    schema = {"customer_id": pl.String(), "purpose": pl.String(), "status": pl.String(),
              "allowed": pl.Boolean(), "decided_at": UTC, "decided_by_source": pl.String(),
              "decided_by_record": pl.String(), "expires_at": UTC, "status_as_of": UTC}
    delta.write_rows(layout.gold_table(lake, "consent_status"),
                     pl.DataFrame(out, schema=schema), append=False, partition_col=None)


def write_merges(lake: Path, merges: list[tuple[str, str]], event: str = "MERGED_INTO") -> None:
    frame = pl.DataFrame([{"event_type": event, "from_person_id": a, "to_person_id": b,
                           "records_moved": 1, "resolved_at": dt.datetime.now(dt.UTC)}
                          for a, b in merges],
                         schema={"event_type": pl.String(), "from_person_id": pl.String(),
                                 "to_person_id": pl.String(), "records_moved": pl.Int64(),
                                 "resolved_at": UTC})
    delta.write_rows(layout.silver_table(lake, "identity_events"), frame, append=True,
                     partition_col=None)


def sync_spec(folder: Path, name: str, body: dict):  # noqa: ANN201 - SyncSpec
    """Write `config/syncs/<name>.yaml` under `folder` and parse it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False), encoding="utf-8")
    return parse_sync(path.read_text(encoding="utf-8"), str(path), name)


SALESFORCE_SYNC = {
    "model": "customer_profile_v2",
    "filter": "email is not null",
    "destination": {"type": "salesforce", "url_env": "SF_URL", "token_env": "SF_TOKEN",
                    "rate_per_s": 1000, "burst": 50, "timeout_s": 5},
    "match_on": [{"field": "Email", "from": "email"}],
    "fields": {"C360_Id__c": "customer_id", "FirstName": "first_name",
               "LastName": "last_name", "Phone": "phone", "MailingCity": "city"},
    "mode": "upsert",
    "limits": {"max_wait_s": 60, "retries": 3},
    "merges": {"loser": "repoint", "flag_field": "C360_Merged_Into__c"},
}
