"""Platform configuration (`config/c360.yaml`) and lake/landing locations.

Configuration is data: it is read and validated once (pydantic), and every key
has a default so the demo runs with no file at all. Locations come from the
environment (`C360_LANDING`, `C360_LAKE`, `C360_CONFIG_DIR`) because they differ
per machine, never per business decision.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
from pathlib import Path
from typing import Literal

import polars as pl
import yaml
from croniter import croniter
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_LANDING = Path("data/landing")
DEFAULT_LAKE = Path("data/lake")


class ConfigError(ValueError):
    """A configuration file is missing, malformed or fails validation."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceConfig(_Strict):
    start_date: dt.date = dt.date(2020, 1, 1)
    # A source that does not ship with c360: the Python module declaring it (`SOURCE`, a
    # SourceSpec; docs/adding-a-source.md).
    module: str | None = None


class BronzeConfig(_Strict):
    """Landing validation (what a row must be to enter bronze) and bronze reporting."""

    quarantine_warn_rate: float = Field(0.01, ge=0.0, le=1.0)
    preview_rows: int = Field(5, ge=0, le=100)
    # Record and change times before this are implausible (0001-01-01, 1900-01-01 and
    # epoch-zero sentinels, in any time zone): the row is quarantined, so a sentinel
    # never becomes a record's "oldest" time (which fixes a person's id).
    earliest_time: dt.datetime = dt.datetime(1970, 1, 2, tzinfo=dt.UTC)
    # A record or change time later than the end of its landing day plus this many hours
    # is implausible (9999-12-31, a source clock years ahead): the row is quarantined, so
    # a future time never outranks every real change. 24 h covers any time zone's
    # landing day.
    future_tolerance_hours: float = Field(24.0, ge=0.0)
    # A landed value longer than this many characters quarantines its row: no contract
    # field is anywhere near this long, and a multi-megabyte cell must not reach gold.
    max_value_chars: int = Field(65_536, ge=256)

    @field_validator("earliest_time", mode="before")
    @classmethod
    def _day_is_midnight(cls, value: object) -> object:
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return dt.datetime.combine(value, dt.time(), tzinfo=dt.UTC)
        return value

    @field_validator("earliest_time")
    @classmethod
    def _utc(cls, value: dt.datetime) -> dt.datetime:
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class IdentityConfig(_Strict):
    """Identity resolution guards and alarms (architecture, "Silver: identity")."""

    # An identifying value held by more distinct records than this in one source
    # system does not link by itself (a role mailbox, a switchboard number).
    shared_value_limit: int = Field(5, ge=1)
    # Regexes (Rust syntax, as polars runs them) per link kind (email, phone,
    # anonymous_id) on the normalised value: a match never links by itself.
    blocklist: dict[str, list[str]] = Field(default_factory=dict)
    # Jaro-Winkler similarity of folded first names below which two records contradict.
    first_name_min_similarity: float = Field(0.8, gt=0.0, le=1.0)
    # Contradictions that veto a link outright (first_names_differ, birth_dates_differ,
    # last_names_differ_on_phone). Off by default: the model weighs them as evidence.
    hard_rules: list[str] = Field(default_factory=list)
    # A held pair (sharing only contested values) whose first names differ, with no
    # birth date or earlier first name agreeing: linkable when it shares an e-mail *and*
    # a phone (one person whose first name changed). False where households share both a
    # mailbox and a landline: such a pair then stays two people.
    two_identifiers_link: bool = True
    # Alarms: a person with more records than this, or a largest person growing by more
    # than this factor since the previous run.
    cluster_size_alarm: int = Field(25, ge=2)
    cluster_jump_alarm: float = Field(2.0, gt=1.0)

    @field_validator("blocklist")
    @classmethod
    def _patterns_compile(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for kind, patterns in value.items():
            if kind not in ("email", "phone", "anonymous_id"):
                raise ValueError(f"unknown kind {kind!r} (email, phone, anonymous_id)")
            for pattern in patterns:
                try:  # the patterns run in polars (Rust regex: no backreferences)
                    pl.Series([""]).str.contains(pattern)
                except pl.exceptions.ComputeError as exc:
                    raise ValueError(f"{kind}: bad pattern {pattern!r}: "
                                     f"{str(exc).splitlines()[0]}") from exc
        return value

    @field_validator("hard_rules")
    @classmethod
    def _known_rules(cls, value: list[str]) -> list[str]:
        from c360_assets.silver.identity import CONTRADICTIONS

        unknown = sorted(set(value) - set(CONTRADICTIONS))
        if unknown:
            raise ValueError(f"unknown hard rules {unknown} (known: {', '.join(CONTRADICTIONS)})")
        return value


class SurvivorshipRule(_Strict):
    """How one attribute's winner is chosen among a person's current values.

    * `most_recent` (the default for every attribute): latest field time, then higher
      confidence, then source priority, then later ingestion.
    * `source_priority`: the best source first (`sources`, else `source_priority.csv`),
      then the default order within it.
    * `most_frequent`: the value held by most of the person's records first, then the
      default order.
    * `most_recent_unless_typo` (names): the latest value wins unless it is a typo away
      from an older value another record holds (a duplicate's typo: Jmaes next to
      James): among the spellings a typo away from the latest, the one most records
      hold, then the older. A clearly different value is a real change: the latest
      wins.
    """

    rule: Literal["most_recent", "source_priority", "most_frequent",
                  "most_recent_unless_typo"] = "most_recent"
    sources: list[str] | None = None  # source_priority only: this attribute's own order

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: object) -> object:
        return {"rule": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _sources_distinct(self) -> SurvivorshipRule:
        if self.sources is not None:
            if self.rule != "source_priority":
                raise ValueError("`sources` applies to rule source_priority only")
            if not self.sources or len(set(self.sources)) != len(self.sources):
                raise ValueError(f"sources must be distinct known sources, got {self.sources}")
        return self


class GoldConfig(_Strict):
    """Gold resolution (architecture, "Resolution (gold)")."""

    # Per canonical attribute (registry `canonical_name`): its survivorship rule.
    # Attributes not listed use `most_recent`.
    survivorship: dict[str, SurvivorshipRule] = Field(default_factory=dict)
    # Values matching identity.blocklist (role mailboxes, noreply/test addresses,
    # all-zero phones) never win over a real value of the same attribute: a person's
    # e-mail is not info@their-employer.com. They still win where nothing else exists.
    demote_placeholders: bool = True
    # Implausible values (over their attribute's length limit - an e-mail longer than
    # RFC 5321 allows, a 300-character name - or holding control characters) lose to
    # any other value, whatever their field time. They still win where nothing else
    # exists (kept, never dropped). A value that merely fails its format (a mistyped
    # e-mail, a phone no numbering plan assigns) is not demoted: it competes as usual.
    demote_implausible: bool = True
    # The dbt recency test on customer_profile.profile_resolved_at: gold older than this
    # fails it (a pipeline that stopped rebuilding).
    profile_recency_hours: int = Field(26, ge=1)


class FreshnessConfig(_Strict):
    """When a source counts as stale: its newest event is older than this many hours."""

    stale_after_hours: float = Field(4.0, gt=0)
    sources: dict[str, float] = Field(default_factory=dict)  # per-source override

    @field_validator("sources")
    @classmethod
    def _positive(cls, value: dict[str, float]) -> dict[str, float]:
        for name, hours in value.items():
            if hours <= 0:
                raise ValueError(f"{name}: hours must be positive, got {hours}")
        return value

    def stale_after(self, source: str) -> float:
        return self.sources.get(source, self.stale_after_hours)


class ChecksConfig(_Strict):
    """Asset-check thresholds that are not a layer's own (architecture, "Operations")."""

    # attribute_conflicts check: warn when persons with sources disagreeing on a current
    # value grew by more than this share since the previous evaluation.
    conflict_growth_alarm: float = Field(0.10, ge=0.0)


class AutomationConfig(_Strict):
    """The schedule and the sensors (`dagster dev`)."""

    # Runs what is stale: landing day folders not ingested as they are now, then the
    # data-staleness checks. Cron in `timezone`.
    schedule_cron: str = "0 */2 * * *"
    timezone: str = "Europe/Berlin"
    # Seconds between landing-sensor and alert-sensor evaluations.
    landing_sensor_interval_s: int = Field(60, ge=10)
    alert_sensor_interval_s: int = Field(60, ge=10)
    # Start the schedule and sensors as soon as the code location loads (else turn them
    # on in the UI: Automation).
    running_by_default: bool = True

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (IANA name, e.g. Europe/Berlin)") from None
        return value

    @field_validator("schedule_cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        if len(value.split()) != 5 or not croniter.is_valid(value):
            raise ValueError(f"not a cron expression: {value!r}")
        return value


class AlertsConfig(_Strict):
    """Where alerts go: always the JSONL log under the lake, plus a webhook if set."""

    # The environment variable holding the webhook URL (Slack-compatible JSON); unset or
    # empty: no webhook. A URL is a secret, so it never lives in this file.
    webhook_env: str = "C360_ALERT_WEBHOOK_URL"
    webhook_timeout_s: float = Field(10.0, gt=0)
    webhook_retries: int = Field(3, ge=0, le=10)
    # The alert log, relative to the lake root.
    log_path: str = "_ops/alerts.jsonl"


class LockConfig(_Strict):
    """The lake's one-writer lock (`lib/lock.py`) as Dagster steps meet it."""

    # A step that finds another writer (a `c360 materialize`, another run's step) waits
    # this long, then asks Dagster to retry it after `step_retry_s` - releasing its pool
    # slot meanwhile - up to `step_max_retries` times (the default: about two hours).
    step_wait_s: float = Field(10.0, ge=0)
    step_retry_s: float = Field(30.0, gt=0)
    step_max_retries: int = Field(240, ge=0)


class MaintenanceConfig(_Strict):
    """Keeping the lake lean (`c360 vacuum`, the `c360_maintenance` job and its schedule)."""

    # Files no longer referenced (replaced, deleted, change data, left by a dead writer)
    # and log entries are kept this long - the time-travel window - then deleted.
    retention_hours: int = Field(168, ge=0)
    # When the maintenance job runs (cron, in automation.timezone).
    schedule_cron: str = "30 3 * * *"

    @field_validator("schedule_cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        return AutomationConfig._valid_cron(value)


class ConsentPurpose(_Strict):
    """One purpose customers consent to: the canonical attribute (kind `consent`) that
    records their decisions, and how long a grant lasts."""

    attribute: str
    # A grant expires this many months after the customer gave it (the field time of the
    # decision); a revocation never expires. 0: grants do not expire.
    expires_after_months: int = Field(24, ge=0)


class PrivacyConfig(_Strict):
    """Erasure, suppression and consent (`c360 erase`, docs/privacy.md)."""

    # An erasure request is due this many days after it was received (GDPR: one month).
    request_due_days: int = Field(30, ge=1)
    # Purpose -> the attribute holding its decisions and when a grant expires.
    consent: dict[str, ConsentPurpose] = Field(default_factory=lambda: {
        "email_marketing": ConsentPurpose(attribute="emailConsent")})

    @field_validator("consent")
    @classmethod
    def _purpose_names(cls, value: dict[str, ConsentPurpose]) -> dict[str, ConsentPurpose]:
        for name in value:
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,62}", name):
                raise ValueError(f"purpose {name!r}: lower-case letters, digits and _ only "
                                 "(it is a value in gold and a name in SQL)")
        return value


class ServingConfig(_Strict):
    """`c360 serve`: the profile API (docs/serving.md)."""

    host: str = "127.0.0.1"  # loopback: another host needs --host and API keys
    port: int = Field(8360, ge=1, le=65535)
    # API keys (read-only): a comma-separated list in this environment variable, and/or
    # a file with one key per line (# comments), relative to the working directory.
    # With neither, the API answers without a key (loopback only, unless told).
    api_keys_env: str = "C360_API_KEYS"
    api_keys_file: str | None = None


class C360Config(_Strict):
    # Per source (a built-in one, or a new one naming its module); unlisted built-in
    # sources take the defaults.
    sources: dict[str, SourceConfig] = Field(default_factory=dict)
    bronze: BronzeConfig = BronzeConfig()
    identity: IdentityConfig = IdentityConfig()
    gold: GoldConfig = GoldConfig()
    freshness: FreshnessConfig = FreshnessConfig()
    checks: ChecksConfig = ChecksConfig()
    automation: AutomationConfig = AutomationConfig()
    alerts: AlertsConfig = AlertsConfig()
    lock: LockConfig = LockConfig()
    maintenance: MaintenanceConfig = MaintenanceConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    serving: ServingConfig = ServingConfig()

    def source(self, name: str) -> SourceConfig:
        return self.sources.get(name, SourceConfig())


def config_dir() -> Path:
    return Path(os.environ.get("C360_CONFIG_DIR", REPO_ROOT / "config"))


def yaml_mapping(text: str, origin: str) -> dict:
    """A YAML document that must be a mapping (empty: {}); errors name `origin`."""
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{origin}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: expected a mapping at top level, got {type(raw).__name__}")
    return raw


def parse_config(text: str, origin: str = "<string>") -> C360Config:
    raw = yaml_mapping(text, origin)
    try:
        config = C360Config.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{origin}: {problems}") from exc
    from c360_assets.bronze import check_sources  # the source catalogue imports this module

    try:
        check_sources(config)
    except ConfigError as exc:
        raise ConfigError(f"{origin}: {str(exc).removeprefix('c360.yaml: ')}") from exc
    return config


def load_config(path: Path | None = None) -> C360Config:
    """Load and validate `config/c360.yaml` (defaults when the file is absent); read once
    per path."""
    return _load_config(path or config_dir() / "c360.yaml")


@functools.cache
def _load_config(path: Path) -> C360Config:
    if not path.exists():
        return C360Config()
    return parse_config(path.read_text(encoding="utf-8"), origin=str(path))


def landing_root() -> Path:
    return Path(os.environ.get("C360_LANDING", DEFAULT_LANDING)).absolute()


def lake_root() -> Path:
    return Path(os.environ.get("C360_LAKE", DEFAULT_LAKE)).absolute()
