"""Sync definitions: `config/syncs/<name>.yaml`, one file per sync, validated once.

A sync sends rows of a gold relation (the model) to a destination: which rows (`filter`,
`when`, `consent`), how each destination record is found (`match_on`, ordered), what it
gets (`fields`: explicit mappings, never auto-mapped), how (`mode`), how often
(`schedule`) and where it must stop (`limits`). docs/activation.md describes every key;
errors name the file and the key (`config/syncs/x.yaml: fields.Phone.null_policy: ...`).

Locations and secrets of destinations come from environment variables named in the file
(`url_env`, `dsn_env`, `secret_env`, `token_env`), never from the file itself.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import Literal

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from c360_assets.activation.destinations import DestinationConfigs
from c360_assets.lib.config import ConfigError, config_dir, yaml_mapping

NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Mapping(_Strict):
    """One destination field: from a model column (`from`) or a static `value`."""

    source: str | None = Field(None, alias="from")
    value: str | int | float | bool | None = None
    # Booleans only: send the opposite (consent `allowed` -> `unsubscribed`).
    invert: bool = False
    # A null in the model: `skip` (leave the destination's value alone), `clear` (send
    # null), `set_if_empty` (write only where the destination has no value: what c360
    # last wrote there was null, or, for destinations that can tell, the field is empty).
    null_policy: Literal["skip", "clear", "set_if_empty"] = "skip"
    # SQL over the model's columns: the field is sent only for rows where it holds
    # (`city_source != 'sap'`); elsewhere it counts as null under `skip`.
    when: str | None = None

    @model_validator(mode="after")
    def _one_origin(self) -> Mapping:
        if (self.source is None) == (self.value is None):
            raise ValueError("give exactly one of `from` (a model column) or `value` (static)")
        if self.invert and self.source is None:
            raise ValueError("`invert` needs `from`")
        return self


class MatchKey(_Strict):
    field: str  # the destination field (an external id for Salesforce-like APIs)
    source: str = Field(alias="from")  # the model column holding the value
    # The column holds a list joined by this separator (customer_profile `extensions`
    # ids): a row holding several values is ambiguous and rejected, never one picked.
    separator: str | None = None


class Limits(_Strict):
    # Mirror mode: refuse a run that would delete more than this share of the records
    # c360 holds in the destination (percent).
    max_delete_pct: float = Field(10.0, ge=0, le=100)
    # Refuse a run that would change (update, re-point, flag, delete) more than this
    # share of the records c360 holds in the destination (percent; 100 = no limit).
    # Creates do not count: they touch no record the destination had.
    max_change_pct: float = Field(100.0, ge=0, le=100)
    # Refuse to run on an empty model (a failed or filtered-out build) when the
    # destination holds records.
    refuse_empty: bool = True
    # The run fails (asset check) when more than this share of the rows it sent were
    # rejected.
    max_reject_pct: float = Field(5.0, ge=0, le=100)
    # How long one run may wait on rate limits (Retry-After) before giving up.
    max_wait_s: float = Field(900.0, ge=0)
    # Retries of a batch after a 5xx or a timeout, before it is halved.
    retries: int = Field(3, ge=0, le=20)


class Merges(_Strict):
    # A person merged into another (silver/identity_events MERGED_INTO) whose record in
    # the destination is not the survivor's: `repoint` it to the survivor when the
    # survivor has no record there (else flag it), `flag` it (write `flag_field`: the
    # survivor's id), `delete` it (mirror mode only), or `keep` it untouched (reported).
    loser: Literal["repoint", "flag", "delete", "keep"] = "repoint"
    flag_field: str | None = None

    @model_validator(mode="after")
    def _flag_needs_field(self) -> Merges:
        if self.loser == "flag" and not self.flag_field:
            raise ValueError("loser: flag needs `flag_field` (the destination field to set)")
        return self


class Echo(_Strict):
    """The destination is also a source c360 ingests: its records are that source's
    records (the destination's record id is the source's record id). A landed change of
    a record's attribute to the value a sync sent it, within `window_hours` of the send,
    is an echo, never news (c360_assets/silver/echo.py)."""

    source: str
    window_hours: float = Field(72.0, gt=0)


class SyncSpec(_Strict):
    name: str = ""
    origin: str = ""  # the file it came from (messages)
    description: str = ""
    model: str  # a gold relation (`customer_profile_v2`, `consent_status`)
    # Other gold relations joined to the model on customer_id (left join, same pinned
    # publish), with the columns to take: `join: {customer_profile_v2: [email]}`.
    join: dict[str, list[str]] = Field(default_factory=dict)
    # Extra model columns computed in SQL (DuckDB) over the model's own:
    # `sap_kunnr: "extensions['sap_kunnr']"`.
    columns: dict[str, str] = Field(default_factory=dict)
    filter: str | None = None  # SQL over the model's columns
    when: str | None = None  # SQL guard per row (on provenance: `city_source != 'sap'`)
    consent: str | None = None  # a purpose of c360.yaml privacy.consent
    destination: DestinationConfigs
    match_on: list[MatchKey] = Field(min_length=1)
    fields: dict[str, Mapping | str]
    mode: Literal["insert", "update", "upsert", "mirror"] = "upsert"
    schedule: str | None = None  # cron (automation.timezone)
    limits: Limits = Limits()
    merges: Merges = Merges()
    echo: Echo | None = None
    enabled: bool = True

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None and not croniter.is_valid(value):
            raise ValueError(f"not a cron expression: {value!r}")
        return value

    @field_validator("fields")
    @classmethod
    def _fields(cls, value: dict[str, Mapping | str]) -> dict[str, Mapping | str]:
        if not value:
            raise ValueError("map at least one field (mappings are explicit, never automatic)")
        for name in value:
            if not FIELD.match(name):
                raise ValueError(f"{name!r} is not a field name (letters, digits, _)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SyncSpec:
        mapped = set(self.fields)
        for key in self.match_on:
            if key.field in mapped:
                raise ValueError(f"match_on field {key.field!r} is also under fields: the key "
                                 "is sent from match_on alone")
        if self.merges.loser == "delete" and self.mode != "mirror":
            raise ValueError("merges.loser: delete needs mode: mirror (never delete blindly)")
        if self.merges.flag_field and self.merges.flag_field in mapped:
            raise ValueError(f"merges.flag_field {self.merges.flag_field!r} is also mapped")
        return self

    def mappings(self) -> dict[str, Mapping]:
        return {name: Mapping(**{"from": m}) if isinstance(m, str) else m
                for name, m in self.fields.items()}

    def model_columns(self) -> set[str]:
        """The model columns the sync reads (mappings and keys)."""
        return ({m.source for m in self.mappings().values() if m.source}
                | {k.source for k in self.match_on})


def parse_sync(text: str, origin: str, name: str) -> SyncSpec:
    if not NAME.match(name):
        raise ConfigError(f"{origin}: the file name {name!r} is not a sync name "
                          "(lower case letters, digits and _, starting with a letter)")
    raw = yaml_mapping(text, origin)
    try:
        return SyncSpec.model_validate({**raw, "name": name, "origin": origin})
    except ValidationError as exc:
        # A union (a mapping or a column name) fails both ways: keep the deeper error.
        tags = {"Mapping", "str", "MatchKey"}
        errors = [(".".join(str(p) for p in e["loc"]
                            if str(p) not in tags and not str(p).startswith("function-")),
                   e["msg"]) for e in exc.errors()]
        deepest = [(loc, msg) for loc, msg in errors
                   if not any(other.startswith(loc + ".") for other, _ in errors)]
        problems = "; ".join(f"{loc}: {msg}" for loc, msg in deepest)
        raise ConfigError(f"{origin}: {problems}") from exc


def syncs_dir() -> Path:
    return Path(os.environ.get("C360_SYNCS_DIR", config_dir() / "syncs"))


def load_syncs(folder: Path | None = None) -> dict[str, SyncSpec]:
    """Every sync of `config/syncs/*.yaml` ({} when the folder is absent), by name."""
    return dict(_load(folder or syncs_dir()))


@functools.cache
def _load(folder: Path) -> tuple[tuple[str, SyncSpec], ...]:
    if not folder.is_dir():
        return ()
    specs = []
    for path in sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml")):
        specs.append((path.stem, parse_sync(path.read_text(encoding="utf-8"), str(path),
                                            path.stem)))
    return tuple(specs)


def get_sync(name: str, folder: Path | None = None) -> SyncSpec:
    syncs = load_syncs(folder)
    if name not in syncs:
        known = ", ".join(sorted(syncs)) or "none"
        raise ConfigError(f"no sync named {name!r} in {folder or syncs_dir()} (syncs: {known})")
    return syncs[name]
