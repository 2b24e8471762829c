"""Project the simulated world onto the five source systems as their connectors land it.

For each Tier 2 source a *state log* per record is built (creation, the changes the
source learned and when, touches that move the record time without changing a field,
deletes, merges), forward-filled into full states; connector syncs then cut it into
snapshots (the last state per record per sync) and periodic full re-syncs re-land every
record with a new `_fivetran_synced`. Segment gets identify events carrying only the
traits that changed. Noise (formats, case, spellings, typos) is applied at the end, so
canonical values stay available for the truth's `observed` flag.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from c360_assets.generator.reference import (
    ASSET_STATUSES,
    COUNTRIES,
    JUNK_EMAILS,
    PRODUCTS,
)
from c360_assets.generator.world import GROUP_COLUMNS, Habits, World

US = pl.Datetime("us", "UTC")
DAY_US = 86_400_000_000

# Connector sync hours (UTC) per Tier 2 source, and full re-sync days (fraction of window).
SYNC_HOURS = {
    "salesforce": (9 + 5 / 60, 21 + 5 / 60),
    "sap": (2.0,),
    "shopify": (0.5, 6.5, 12.5, 18.5),
    "zendesk": (4.0,),
}
RESYNC_AT = {"salesforce": (0.5,), "zendesk": (0.34,), "sap": (0.25, 0.75)}
RESYNC_FILE_BASE = 90_000  # a full re-sync lands as its own file: part-9xxxx
SEGMENT_LOAD_HOURS = (6.0, 18.0)
# Record touches per day that change no mapped field (automation, logins, orders).
TOUCH_RATE = {"salesforce": 0.01, "sap": 0.002, "shopify": 0.02, "zendesk": 0.03}
DELETE_RATE = 0.01  # share of records deleted during the window

CC = {c.code: c.calling_code for c in COUNTRIES}
TRUNK = {c.code: c.trunk for c in COUNTRIES}
SPELLINGS = {c.code: c.spellings for c in COUNTRIES}


@dataclass
class SourceOutput:
    """Landed rows per table (typed, with `_landing_date` and `_file`), plus truth."""

    tables: dict[str, pl.DataFrame] = field(default_factory=dict)
    records: list[pl.DataFrame] = field(default_factory=list)  # truth record -> person
    observed: list[pl.DataFrame] = field(default_factory=list)  # person_idx, attribute, value


# ---------------------------------------------------------------------------- ids


_B62 = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
_SUFFIX = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", dtype=np.uint8)


def salesforce_ids(prefix: str, numbers: np.ndarray) -> list[str]:
    """18-character Salesforce ids (15-char case-sensitive id + 3-char case checksum)."""
    n = numbers.size
    body = np.zeros((n, 12), dtype=np.uint8)
    x = numbers.astype(np.int64) * 7919 + 104729  # spread, keep unique
    for pos in range(11, -1, -1):
        body[:, pos] = _B62[x % 62]
        x //= 62
    chars = np.hstack([np.tile(np.frombuffer(prefix.encode(), dtype=np.uint8), (n, 1)), body])
    upper = (chars >= ord("A")) & (chars <= ord("Z"))
    weights = 1 << np.arange(5)
    suffix = np.stack([_SUFFIX[(upper[:, 5 * k:5 * k + 5] * weights).sum(axis=1)] for k in range(3)], axis=1)
    return np.hstack([chars, suffix]).view("S18").ravel().astype(str).tolist()


def _uuids(rng: np.random.Generator, n: int) -> list[str]:
    raw = rng.integers(0, 2**63, (n, 2), dtype=np.int64).view(np.uint64)
    return [f"{a:016x}{b:016x}" for a, b in raw]


def _uuid_fmt(hex32: pl.Expr) -> pl.Expr:
    return pl.format("{}-{}-{}-{}-{}", hex32.str.slice(0, 8), hex32.str.slice(8, 4),
                     hex32.str.slice(12, 4), hex32.str.slice(16, 4), hex32.str.slice(20, 12))


# ---------------------------------------------------------------------------- time helpers


def _us(ts: dt.datetime) -> int:
    return int(ts.timestamp() * 1_000_000)


def _sync_times(world: World, hours: tuple[float, ...]) -> np.ndarray:
    start = _us(world.spec.start_ts)
    return np.array(sorted(start + d * DAY_US + int(h * 3_600_000_000)
                           for d in range(world.spec.days) for h in hours), dtype=np.int64)


def _as_dt(col: str | pl.Expr) -> pl.Expr:
    e = pl.col(col) if isinstance(col, str) else col
    return e.cast(pl.Int64).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")


# ---------------------------------------------------------------------------- state logs


def _touch_rows(rng: np.random.Generator, records: pl.DataFrame, world: World, rate: float
                ) -> pl.DataFrame:
    """Record touches: 1-3 before the window (pre-history), Poisson(rate) per day in it."""
    start, end = _us(world.spec.start_ts), _us(world.spec.end_ts)
    created = records["created_at"].dt.epoch("us").to_numpy()
    stop = records["deleted_at"].dt.epoch("us").fill_null(end).to_numpy()
    pre = np.where(created < start, rng.integers(1, 4, records.height), 0)
    win = rng.poisson(rate * world.spec.days, records.height)
    idx_pre = np.repeat(np.arange(records.height), pre)
    t_pre = created[idx_pre] + (rng.random(idx_pre.size) * (start - created[idx_pre])).astype(np.int64)
    idx_win = np.repeat(np.arange(records.height), win)
    lo = np.maximum(created[idx_win], start)
    t_win = lo + (rng.random(idx_win.size) * np.maximum(stop[idx_win] - lo, 1)).astype(np.int64)
    idx = np.concatenate([idx_pre, idx_win])
    t = np.concatenate([t_pre, t_win])
    keep = t < stop[idx]
    return pl.DataFrame({"record_id": records["record_id"].gather(idx[keep]), "t": t[keep],
                         "kind": np.full(keep.sum(), 2, dtype=np.int8)})


def state_log(rng: np.random.Generator, world: World, source: str, records: pl.DataFrame,
              columns: list[str]) -> pl.DataFrame:
    """Full record states after every change, touch, delete and merge, in time order.

    `records`: record_id, person_idx, created_at, deleted_at, receives_changes,
    merged_into, scrub_at. Returns one row per event with the whole state.
    kind: 0 create, 1 change, 2 touch, 3 delete/merge, 4 scrub.
    """
    value_cols = [c for c in columns]
    init = records.join(world.persons.select(["person_idx", *value_cols]), on="person_idx",
                        how="left").select(
        "record_id", pl.col("created_at").dt.epoch("us").alias("t"),
        pl.lit(0, pl.Int8).alias("kind"), *value_cols, pl.lit(True).alias("_consent_set"))
    delay = f"delay_{source}"
    groups = [g for g, cols in GROUP_COLUMNS.items() if set(cols) & set(value_cols)]
    ev = world.events.filter(pl.col(delay).is_not_null() & pl.col("group").is_in(groups))
    live = records.filter("receives_changes").select(
        "record_id", "person_idx", pl.col("created_at").dt.epoch("us").alias("_c"),
        pl.col("deleted_at").dt.epoch("us").alias("_d"))
    changes = (ev.join(live, on="person_idx", how="inner")
               .with_columns((pl.col("t").dt.epoch("us") + (pl.col(delay) * 1e6).cast(pl.Int64)).alias("_t"))
               .with_columns(pl.max_horizontal("_t", "_c").alias("t"))
               .filter(pl.col("_d").is_null() | (pl.col("t") < pl.col("_d")))
               .select("record_id", "t", pl.lit(1, pl.Int8).alias("kind"),
                       *[pl.when(pl.col("group").is_in([g for g in groups if c in GROUP_COLUMNS[g]]))
                         .then(pl.col(c) if c in ev.columns else None)
                         .cast(world.persons.schema[c]).alias(c) for c in value_cols],
                       (pl.col("group") == "consent").alias("_consent_set")))
    touches = _touch_rows(rng, records, world, TOUCH_RATE[source])
    ends = records.filter(pl.col("deleted_at").is_not_null()).select(
        "record_id", pl.col("deleted_at").dt.epoch("us").alias("t"), pl.lit(3, pl.Int8).alias("kind"),
        pl.col("merged_into").alias("_master"))
    masters = records.filter(pl.col("merged_into").is_not_null()).select(
        pl.col("merged_into").alias("record_id"), pl.col("deleted_at").dt.epoch("us").alias("t"),
        pl.lit(2, pl.Int8).alias("kind"))
    scrubs = records.filter(pl.col("scrub_at").is_not_null()).select(
        "record_id", pl.col("scrub_at").dt.epoch("us").alias("t"), pl.lit(4, pl.Int8).alias("kind"))
    log = pl.concat([init, changes, touches.with_columns(pl.col("kind").cast(pl.Int8)),
                     ends, masters, scrubs], how="diagonal_relaxed")
    # Nothing happens to a record before it exists.
    created = records.select("record_id", pl.col("created_at").dt.epoch("us").alias("_created"))
    log = log.join(created, on="record_id", how="inner").filter(
        pl.col("t") >= pl.col("_created")).drop("_created")
    log = log.sort(["record_id", "t", "kind"]).with_columns(
        *[pl.col(c).forward_fill().over("record_id") for c in value_cols],
        pl.col("_master").forward_fill().over("record_id").alias("master_record_id"),
        (pl.col("kind") == 3).cum_max().over("record_id").alias("deleted"),
        (pl.col("kind") == 4).cum_max().over("record_id").alias("scrubbed"),
        pl.when(pl.col("_consent_set").fill_null(False)).then(pl.col("t")).forward_fill()
        .over("record_id").alias("consent_t"),
    ).drop("_master", "_consent_set")
    if "email_consent" in value_cols:
        log = log.with_columns(pl.col("email_consent").cum_max().over("record_id").alias("ever_consent"))
    contact = [c for c in ("email", "phone", "mobile_phone") if c in value_cols]
    if world.spec.habits.no_contact_share and contact:
        hidden = no_contact("record_id", world.spec.habits)
        log = log.with_columns(pl.when(hidden).then(None).otherwise(pl.col(c)).alias(c)
                               for c in contact)
    return log


def _resyncs(world: World, source: str) -> list[tuple[int, int]]:
    """(file sync id, time) of each full re-sync: an hour after a regular sync."""
    syncs = _sync_times(world, SYNC_HOURS[source])
    out = []
    for fraction in RESYNC_AT.get(source, ()):
        k = min(int(fraction * syncs.size), syncs.size - 1)
        out.append((RESYNC_FILE_BASE + k, int(syncs[k]) + 3_600_000_000))
    return out


def snapshots(world: World, log: pl.DataFrame, source: str) -> pl.DataFrame:
    """Cut a state log into connector syncs and full re-syncs.

    Returns the landed snapshot rows with `record_time` (time of the record's last event),
    `synced` (the `_fivetran_synced`), and the sync it belongs to.
    """
    syncs = _sync_times(world, SYNC_HOURS[source])
    t = log["t"].to_numpy()
    idx = np.searchsorted(syncs, t, side="left")
    snap = (log.with_columns(pl.Series("_sync", idx))
            .filter(pl.col("_sync") < syncs.size)
            .group_by("record_id", "_sync", maintain_order=True).last()
            .with_columns(pl.lit(pl.Series("_s", syncs)).gather(pl.col("_sync")).alias("synced")))
    parts = [snap]
    for sync_id, at in _resyncs(world, source):
        parts.append(log.filter(pl.col("t") <= at).group_by("record_id", maintain_order=True).last()
                     .with_columns(pl.lit(sync_id, pl.Int64).alias("_sync"), pl.lit(at).alias("synced")))
    out = pl.concat([p.with_columns(pl.col("_sync").cast(pl.Int64)) for p in parts], how="diagonal_relaxed")
    return out.with_columns(
        _as_dt("t").alias("record_time"),
        _as_dt(pl.col("synced") + pl.col("record_id").hash(7).mod(5_000_000).cast(pl.Int64)).alias("synced"),
        _as_dt("synced").dt.date().alias("_landing_date"),
    )


# ---------------------------------------------------------------------------- noise


def _nfd_map(values: pl.Series) -> dict[str, str]:
    return {v: unicodedata.normalize("NFD", v) for v in values.unique().drop_nulls().to_list()}


def noisy_email(col: str, style: pl.Expr) -> pl.Expr:
    c = pl.col(col)
    return (pl.when(style < 70).then(c)
            .when(style < 80).then(c.str.to_titlecase())
            .when(style < 88).then(c.str.to_uppercase())
            .otherwise(pl.lit(" ") + c + pl.lit(" ")))


def noisy_name(col: str, style: pl.Expr, frame: pl.DataFrame) -> pl.Expr:
    c = pl.col(col)
    nfd = _nfd_map(frame[col]) if col in frame.columns else {}
    return (pl.when(style < 5).then(c.replace(nfd))  # decomposed accents (NFD)
            .when(style < 8).then(c + pl.lit(" "))
            .otherwise(c))


def formatted_phone(col: str, record_country: str | pl.Expr, style: pl.Expr,
                    national_ok: bool = True) -> pl.Expr:
    """An E.164 phone as a person or system typed it: E.164, national, spaced, digits."""
    e164 = pl.col(col)
    rc = pl.col(record_country) if isinstance(record_country, str) else record_country
    cc = rc.replace_strict(CC, default=None, return_dtype=pl.String)
    trunk = rc.replace_strict(TRUNK, default="", return_dtype=pl.String)
    own = e164.str.starts_with(pl.lit("+") + cc) & cc.is_not_null()
    nsn = e164.str.slice(cc.str.len_chars() + 1)
    nanp = cc == "1"
    national = (pl.when(nanp).then(pl.format("({}) {}-{}", nsn.str.slice(0, 3), nsn.str.slice(3, 3), nsn.str.slice(6)))
                .when(rc == "FR").then(pl.format("0{} {} {} {} {}", nsn.str.slice(0, 1), nsn.str.slice(1, 2),
                                                 nsn.str.slice(3, 2), nsn.str.slice(5, 2), nsn.str.slice(7)))
                .when(rc == "ES").then(pl.format("{} {} {}", nsn.str.slice(0, 3), nsn.str.slice(3, 3), nsn.str.slice(6)))
                .otherwise(pl.format("{}{} {}", trunk, nsn.str.slice(0, 3), nsn.str.slice(3))))
    digits = pl.when(nanp).then(nsn).otherwise(trunk + nsn)
    spaced = pl.format("+{} {} {}", cc, nsn.str.slice(0, 3), nsn.str.slice(3))
    if not national_ok:
        return pl.when(style < 50).then(e164).when(own).then(spaced).otherwise(e164)
    return (pl.when(style < 35).then(e164)
            .when(~own).then(e164)
            .when(style < 65).then(national)
            .when(style < 85).then(spaced)
            .otherwise(digits))


def intl_spaced(col: str) -> pl.Expr:
    """+4915112345678 -> +49 151 12345678 (the calling code read off the number)."""
    return pl.col(col).str.replace(r"^\+(1|\d{2})(\d{3})", "+${1} ${2} ")


def spelled_country(col: str, style: pl.Expr) -> pl.Expr:
    """A free-text country as typed: one of the country's usual spellings."""
    out = pl.lit(None, pl.String)
    for code, spellings in SPELLINGS.items():
        pick = pl.lit(spellings[0])
        for k in range(len(spellings) - 1, 0, -1):
            pick = pl.when(style % len(spellings) == k).then(pl.lit(spellings[k])).otherwise(pick)
        out = pl.when(pl.col(col) == code).then(pick).otherwise(out)
    return out


def _typo(col: str) -> pl.Expr:
    """Swap the 2nd and 3rd letters (a typical keying typo)."""
    c = pl.col(col)
    return pl.when(c.str.len_chars() > 3).then(
        c.str.slice(0, 1) + c.str.slice(2, 1) + c.str.slice(1, 1) + c.str.slice(3)).otherwise(c)


# ---------------------------------------------------------------------------- records


def _base_records(rng: np.random.Generator, world: World, source: str) -> pl.DataFrame:
    """One record per member person: created after the person, maybe deleted in the window."""
    start, end = _us(world.spec.start_ts), _us(world.spec.end_ts)
    members = world.persons.filter(pl.col(f"in_{source}")).select("person_idx", "created_at")
    n = members.height
    created = members["created_at"].dt.epoch("us").to_numpy() + (rng.exponential(3 * DAY_US, n)).astype(np.int64)
    deleted = np.where(rng.random(n) < DELETE_RATE, start + (rng.random(n) * (end - start)).astype(np.int64), -1)
    deleted = np.where(deleted > created, deleted, -1)
    frame = members.with_columns(
        _as_dt(pl.Series(created)).alias("created_at"),
        _as_dt_series(pl.Series("deleted_at", deleted).replace(-1, None).cast(pl.Int64)),
        pl.lit(True).alias("receives_changes"),
        pl.lit(None, pl.String).alias("merged_into"),
        pl.lit(None, US).alias("scrub_at"),
        pl.Series("style", rng.integers(0, 10_000, n), dtype=pl.Int64),
    )
    return frame.filter(pl.col("created_at").dt.epoch("us") < end)


def _as_dt_series(s: pl.Series) -> pl.Series:
    return s.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")


def _truth_records(records: pl.DataFrame, world: World, source: str, table: str) -> pl.DataFrame:
    return records.join(world.persons.select("person_idx", "person_id"), on="person_idx").select(
        pl.lit(source).alias("source"), pl.lit(table).alias("table"),
        pl.col("record_id"), "person_id", "created_at", "deleted_at",
        pl.col("merged_into"))


def _observe(frame: pl.DataFrame, mapping: dict[str, str | pl.Expr]) -> pl.DataFrame:
    """(person_idx, attribute, canonical value) for every non-deleted landed state."""
    live = frame.filter(~pl.col("deleted")) if "deleted" in frame.columns else frame
    parts = []
    for attribute, expr in mapping.items():
        e = pl.col(expr) if isinstance(expr, str) else expr
        parts.append(live.select("person_idx", pl.lit(attribute).alias("attribute"),
                                 e.cast(pl.String).alias("value")).drop_nulls("value"))
    return pl.concat(parts).unique()


def _full_name() -> pl.Expr:
    return pl.format("{} {}", pl.col("first_name"), pl.col("last_name"))


PERSON_ATTRS = {
    "email": "email", "firstName": "first_name", "lastName": "last_name", "phone": "phone",
    "street": "street", "city": "city", "postalCode": "postal_code", "country": "country",
}


def _static_landings(world: World, source: str, frame: pl.DataFrame) -> pl.DataFrame:
    """Rows that change rarely (companies, assets): the initial load and each re-sync."""
    landings = [(0, int(_sync_times(world, SYNC_HOURS[source])[0])), *_resyncs(world, source)]
    parts = [frame.with_columns(pl.lit(i, pl.Int64).alias("_sync"), _as_dt(pl.lit(t)).alias("synced"))
             for i, t in landings]
    return pl.concat(parts).with_columns(pl.col("synced").dt.date().alias("_landing_date"))


def _typo_mask(habits: Habits) -> pl.Expr:
    """Which Salesforce records are keyed with a first-name typo: duplicates (rank > 0)
    at `duplicate_typo_share`, primaries at `primary_typo_share`. A share of 0.5 keeps
    the parity rule the default world always used (its files stay byte for byte)."""
    def share(p: float) -> pl.Expr:
        if p == 0.5:
            return pl.col("style") % 2 == 0
        return pl.col("style") % 1000 < int(round(1000 * p))
    return (pl.when(pl.col("rank") > 0).then(share(habits.duplicate_typo_share))
            .otherwise(share(habits.primary_typo_share)))


def no_contact(key: str | pl.Expr, habits: Habits) -> pl.Expr:
    """The records (by `key`) that land with neither e-mail nor phone."""
    k = pl.col(key) if isinstance(key, str) else key
    return k.cast(pl.String).hash(13) % 1000 < int(round(1000 * habits.no_contact_share))


def build_salesforce(rng: np.random.Generator, world: World, out: SourceOutput) -> None:
    start, end = _us(world.spec.start_ts), _us(world.spec.end_ts)
    base = _base_records(rng, world, "salesforce")
    n = base.height
    dup1 = rng.random(n) < 0.035
    dup2 = dup1 & (rng.random(n) < 0.15)

    def dupes(mask: np.ndarray) -> pl.DataFrame:
        d = base.filter(pl.Series(mask))
        lag = (rng.random(d.height) * 200 * DAY_US).astype(np.int64)
        return d.with_columns(
            _as_dt(pl.col("created_at").dt.epoch("us") + pl.Series(lag)).alias("created_at"),
            pl.lit(False).alias("receives_changes"), pl.lit(None, US).alias("deleted_at"),
            pl.Series("style", rng.integers(0, 10_000, d.height), dtype=pl.Int64))
    primary, first, second = base, dupes(dup1), dupes(dup2)
    records = pl.concat([primary.with_columns(pl.lit(0).alias("rank")),
                         first.with_columns(pl.lit(1).alias("rank")),
                         second.with_columns(pl.lit(2).alias("rank"))])
    records = records.with_columns(pl.Series("record_id", salesforce_ids("003", np.arange(records.height))))
    # Merges: a duplicate merged into the primary; chains A -> B -> C for the triples.
    ids = records.select("person_idx", "rank", "record_id", pl.col("created_at").dt.epoch("us").alias("c"))
    wide = ids.pivot(on="rank", index="person_idx", values=["record_id", "c"])
    merges = []
    if "record_id_1" in wide.columns:
        pair = wide.filter(pl.col("record_id_1").is_not_null())
        m = pair.height
        t1 = start + (rng.random(m) * (end - start)).astype(np.int64)
        t2 = t1 + (rng.random(m) * (end - t1)).astype(np.int64)
        has2 = pair["record_id_2"].is_not_null().to_numpy() if "record_id_2" in pair.columns else np.zeros(m, bool)
        go = rng.random(m) < np.where(has2, 0.6, 0.5)
        c1 = pair["c_1"].fill_null(0).to_numpy()
        c2 = pair["c_2"].fill_null(0).to_numpy() if has2.any() else np.zeros(m, np.int64)
        hour = 3_600_000_000
        # A merge happens after both records exist; in a chain A -> B comes before B -> C.
        at2 = np.maximum(t1, np.maximum(c1, c2)) + hour
        at1 = np.where(has2, np.maximum(t2, at2 + hour), np.maximum(t1, c1 + hour))
        merges.append(pl.DataFrame({"record_id": pair["record_id_1"], "_m": pair["record_id_0"],
                                    "_t": at1, "_go": go}))
        if has2.any():
            merges.append(pl.DataFrame({"record_id": pair["record_id_2"], "_m": pair["record_id_1"],
                                        "_t": at2, "_go": go & has2}).filter(pl.col("record_id").is_not_null()))
    if merges:
        mg = pl.concat(merges).filter(pl.col("_go") & (pl.col("_t") < end))
        records = records.join(mg.select("record_id", "_m", "_t"), on="record_id", how="left").with_columns(
            pl.coalesce(pl.col("_m"), pl.col("merged_into")).alias("merged_into"),
            pl.coalesce(_as_dt("_t"), pl.col("deleted_at")).alias("deleted_at")).drop("_m", "_t")
    companies = world.companies
    records = records.join(world.persons.select("person_idx", "company_idx"), on="person_idx", how="left"
                           ).join(companies.select("company_idx", "role_mailbox"), on="company_idx", how="left"
                           ).with_columns(
        pl.when((pl.col("style") % 100 < 40) & pl.col("role_mailbox").is_not_null())
        .then(pl.col("role_mailbox")).alias("role_email"),
        _typo_mask(world.spec.habits).alias("typo"),
    ).drop("company_idx", "role_mailbox")
    out.records.append(_truth_records(records, world, "salesforce", "contact"))

    cols = ["first_name", "last_name", "email", "phone", "mobile_phone", "street", "city",
            "postal_code", "country", "birth_date", "email_consent", "company_idx"]
    log = state_log(rng, world, "salesforce", records, cols)
    snap = snapshots(world, log, "salesforce").join(
        records.select("record_id", "person_idx", "style", "role_email", "typo", "created_at"),
        on="record_id", how="left")
    accounts = companies.with_columns(pl.Series("account_id", salesforce_ids("001", companies["company_idx"].to_numpy())))
    snap = snap.join(accounts.select("company_idx", "account_id"), on="company_idx", how="left").with_columns(
        pl.when("typo").then(_typo("first_name")).otherwise(pl.col("first_name")).alias("first_name"),
        pl.coalesce("role_email", "email").alias("email"),
    )
    s = pl.col("style") % 100
    out.tables["salesforce/contact"] = snap.select(
        pl.col("record_id").alias("id"), "account_id",
        noisy_name("first_name", s, snap).alias("first_name"),
        noisy_name("last_name", (s + 37) % 100, snap).alias("last_name"),
        noisy_email("email", (s * 7) % 100).alias("email"),
        formatted_phone("phone", "country", (s * 3) % 100).alias("phone"),
        formatted_phone("mobile_phone", "country", (s * 11) % 100).alias("mobile_phone"),
        pl.col("street").alias("mailing_street"), pl.col("city").alias("mailing_city"),
        pl.col("postal_code").alias("mailing_postal_code"),
        spelled_country("country", s).alias("mailing_country"),
        pl.when(s % 10 < 7).then(pl.col("country")).alias("mailing_country_code"),
        pl.col("birth_date").alias("birthdate"),
        (~pl.col("email_consent")).alias("has_opted_out_of_email"),
        pl.col("deleted").alias("is_deleted"), "master_record_id",
        pl.col("created_at").alias("created_date"),
        pl.col("record_time").alias("last_modified_date"),
        pl.col("record_time").alias("system_modstamp"),
        pl.col("synced").alias("_fivetran_synced"), "_landing_date", "_sync")
    out.observed.append(_observe(snap, {
        **PERSON_ATTRS, "mobilePhone": "mobile_phone",
        "birthDate": pl.col("birth_date").cast(pl.String),
        "emailConsent": pl.when(~pl.col("email_consent")).then(pl.lit("false")),
    }))

    # Accounts (companies with contacts) and the assets they own.
    used = snap.select(pl.col("company_idx").unique()).drop_nulls()
    acc = accounts.join(used, on="company_idx", how="semi")
    acc_rows = _static_landings(world, "salesforce", acc.select(
        pl.col("account_id").alias("id"), "name", pl.format("www.{}", "domain").alias("website"),
        "industry", pl.col("city").alias("billing_city"),
        spelled_country("country", pl.col("company_idx") % 100).alias("billing_country"),
        pl.lit(False).alias("is_deleted"), pl.lit(None, pl.String).alias("master_record_id"),
        _as_dt(pl.col("created_at").dt.epoch("us") + 10 * DAY_US).alias("last_modified_date"),
        _as_dt(pl.col("created_at").dt.epoch("us") + 10 * DAY_US).alias("system_modstamp")))
    out.tables["salesforce/account"] = acc_rows.rename({"synced": "_fivetran_synced"})
    first_contact = (snap.filter(pl.col("company_idx").is_not_null()).group_by("company_idx")
                     .agg(pl.col("record_id").min().alias("contact_id")))
    assets = (acc.join(first_contact, on="company_idx", how="left")
              .with_columns(pl.int_ranges(0, pl.col("asset_count")).alias("k")).explode("k")
              .drop_nulls("k").with_row_index("asset_no"))
    assets = assets.with_columns(pl.Series("asset_id", salesforce_ids("02i", assets["asset_no"].to_numpy())))
    install = pl.col("created_at").dt.epoch("us") + (pl.col("k") + 1) * 40 * DAY_US
    first_sync = int(_sync_times(world, SYNC_HOURS["salesforce"])[0])
    asset_rows = _static_landings(world, "salesforce", assets.select(
        pl.col("asset_id").alias("id"), "account_id", "contact_id",
        pl.lit(pl.Series(PRODUCTS)).gather((pl.col("asset_no") % len(PRODUCTS)).cast(pl.UInt32)).alias("name"),
        pl.format("SN-{}", pl.col("asset_no").cast(pl.String).str.zfill(8)).alias("serial_number"),
        _as_dt(install).dt.date().alias("install_date"),
        _as_dt(install + 365 * DAY_US).dt.date().alias("usage_end_date"),
        pl.lit(pl.Series(ASSET_STATUSES)).gather((pl.col("asset_no") % len(ASSET_STATUSES)).cast(pl.UInt32)).alias("status"),
        ((pl.col("asset_no") % 50) * 5 + 5).cast(pl.Float64).alias("quantity"),
        pl.lit(False).alias("is_deleted"),
        # Last edited a day after the install was entered, and never after the first sync
        # that carries it (a planned install date lies in the future; an edit cannot).
        _as_dt(pl.min_horizontal(install + DAY_US, pl.lit(first_sync))).alias("last_modified_date")))
    out.tables["salesforce/asset"] = asset_rows.rename({"synced": "_fivetran_synced"})


def build_sap(rng: np.random.Generator, world: World, out: SourceOutput) -> None:
    records = _base_records(rng, world, "sap")
    i = np.arange(records.height)
    records = records.with_columns(
        pl.Series("kunnr", [f"{100000 + k:010d}" for k in i]),
        pl.Series("adrnr", [f"{620000 + k:010d}" for k in i]),
    ).with_columns(pl.format("100:{}", "kunnr").alias("record_id"))
    out.records.append(_truth_records(records, world, "sap", "kna1"))
    cols = ["first_name", "last_name", "phone", "street", "city", "postal_code", "country", "company_idx"]
    snap = snapshots(world, state_log(rng, world, "sap", records, cols), "sap").join(
        records.select("record_id", "person_idx", "kunnr", "adrnr", "style", "created_at"), on="record_id")
    snap = snap.join(world.companies.select("company_idx", pl.col("name").alias("company")),
                     on="company_idx", how="left")
    s = pl.col("style") % 100
    berlin_day = pl.col("record_time").dt.convert_time_zone("Europe/Berlin").dt.date()
    out.tables["sap/kna1"] = snap.select(
        pl.lit("100").alias("mandt"), "kunnr",
        _full_name().alias("name1"), pl.col("company").fill_null("").alias("name2"),
        pl.col("street").alias("stras"), pl.col("city").alias("ort01"),
        pl.col("postal_code").alias("pstlz"), pl.col("country").alias("land1"),
        formatted_phone("phone", "country", (s * 3) % 100).str.slice(0, 16).alias("telf1"),
        "adrnr", pl.col("created_at").dt.date().alias("erdat"),
        pl.when(s % 10 < 8).then(berlin_day).alias("laeda"),
        pl.when("deleted").then(pl.lit("X")).otherwise(pl.lit("")).alias("loevm"),
        pl.lit(False).alias("_fivetran_deleted"), pl.col("synced").alias("_fivetran_synced"),
        "_landing_date", "_sync")
    out.observed.append(_observe(snap, {
        "fullName": _full_name(), "phone": "phone", "street": "street", "city": "city",
        "postalCode": "postal_code", "country": "country"}))
    # ADR6 keeps the e-mail; it changes only when the e-mail does, deletes stay on KNA1.
    adr = records.with_columns(pl.lit(None, US).alias("deleted_at"))
    mail = snapshots(world, state_log(rng, world, "sap", adr, ["email"]).filter(pl.col("kind") != 2), "sap"
                     ).join(records.select("record_id", "person_idx", "adrnr", "style"), on="record_id")
    out.tables["sap/adr6"] = mail.select(
        pl.lit("100").alias("client"), pl.col("adrnr").alias("addrnumber"),
        pl.lit("").alias("persnumber"), pl.lit("001").alias("consnumber"), pl.lit("X").alias("flgdefault"),
        noisy_email("email", (pl.col("style") * 7) % 100).alias("smtp_addr"),
        pl.lit(False).alias("_fivetran_deleted"), pl.col("synced").alias("_fivetran_synced"),
        "_landing_date", "_sync")
    out.observed.append(_observe(mail.with_columns(pl.lit(False).alias("deleted")), {"email": "email"}))


def build_shopify(rng: np.random.Generator, world: World, out: SourceOutput) -> None:
    end = _us(world.spec.end_ts)
    base = _base_records(rng, world, "shopify")
    # Deleted customers (no orders) sometimes come back: same e-mail, new id.
    gone = base.filter(pl.col("deleted_at").is_not_null())
    lag = ((1 + rng.random(gone.height) * 4) * DAY_US).astype(np.int64)
    back = gone.with_columns(
        _as_dt(pl.col("deleted_at").dt.epoch("us") + pl.Series(lag)).alias("created_at"),
        pl.lit(None, US).alias("deleted_at"),
        pl.Series("style", rng.integers(0, 10_000, gone.height), dtype=pl.Int64),
    ).filter(pl.Series(rng.random(gone.height) < 0.3))
    back = back.filter(pl.col("created_at").dt.epoch("us") < end)
    records = pl.concat([base, back]).with_row_index("_i").with_columns(
        (pl.lit(7_064_055_069_303_700_000, pl.Int64) + pl.col("_i").cast(pl.Int64) * 13).alias("shop_id"),
    ).with_columns(pl.col("shop_id").cast(pl.String).alias("record_id")).drop("_i")
    out.records.append(_truth_records(records, world, "shopify", "customer"))
    cols = ["first_name", "last_name", "email", "phone", "street", "city", "postal_code", "country",
            "email_consent"]
    snap = snapshots(world, state_log(rng, world, "shopify", records, cols), "shopify").join(
        records.select("record_id", "person_idx", "shop_id", "style", "created_at"), on="record_id")
    s = pl.col("style") % 100
    consent_state = (pl.when("email_consent").then(pl.lit("subscribed"))
                     .when("ever_consent").then(pl.lit("unsubscribed"))
                     .otherwise(pl.lit("not_subscribed")))
    out.tables["shopify/customer"] = snap.select(
        pl.col("shop_id").alias("id"), noisy_email("email", (s * 7) % 100).alias("email"),
        noisy_name("first_name", s, snap).alias("first_name"),
        noisy_name("last_name", (s + 37) % 100, snap).alias("last_name"),
        pl.col("phone"),  # Shopify stores E.164
        pl.when(s < 80).then(pl.lit("enabled")).otherwise(pl.lit("disabled")).alias("state"),
        pl.col("email_consent").alias("accepts_marketing"),
        _as_dt("consent_t").alias("accepts_marketing_updated_at"),
        consent_state.alias("email_marketing_consent_state"),
        _as_dt("consent_t").alias("email_marketing_consent_updated_at"),
        "created_at", pl.col("record_time").alias("updated_at"),
        pl.col("deleted").alias("_fivetran_deleted"), pl.col("synced").alias("_fivetran_synced"),
        "_landing_date", "_sync")
    out.tables["shopify/customer_address"] = snap.filter(pl.col("street").is_not_null()).select(
        pl.col("shop_id").alias("customer_id"),
        (pl.col("shop_id") // 1000 + 9_000_000).alias("id"),
        pl.col("street").alias("address_1"), "city", pl.col("postal_code").alias("zip"),
        spelled_country("country", s).alias("country"),
        pl.when(s % 10 < 9).then(pl.col("country")).alias("country_code"),
        formatted_phone("phone", "country", (s * 3) % 100).alias("phone"),
        pl.lit(True).alias("is_default"), pl.col("synced").alias("_fivetran_synced"),
        "_landing_date", "_sync")
    out.observed.append(_observe(snap, {
        **PERSON_ATTRS,
        "emailConsent": pl.when("email_consent").then(pl.lit("true")).otherwise(pl.lit("false"))}))


def build_zendesk(rng: np.random.Generator, world: World, out: SourceOutput) -> None:
    end = _us(world.spec.end_ts)
    records = _base_records(rng, world, "zendesk")
    # Half of the deleted users are later erased for good (GDPR): 1-5 days after the delete.
    scrub = records["deleted_at"].dt.epoch("us").to_numpy() + ((1 + rng.random(records.height) * 4) * DAY_US).astype(np.int64)
    scrub_ok = (rng.random(records.height) < 0.5) & (scrub < end)
    records = records.with_row_index("_i").with_columns(
        (pl.lit(360_000_000_000, pl.Int64) + pl.col("_i").cast(pl.Int64) * 7).alias("zd_id"),
        pl.when(pl.Series(scrub_ok) & pl.col("deleted_at").is_not_null())
        .then(_as_dt(pl.Series(np.nan_to_num(scrub, nan=0).astype(np.int64)))).alias("scrub_at"),
    ).with_columns(pl.col("zd_id").cast(pl.String).alias("record_id")).drop("_i")
    out.records.append(_truth_records(records, world, "zendesk", "user"))
    cols = ["first_name", "last_name", "email", "phone", "company_idx"]
    snap = snapshots(world, state_log(rng, world, "zendesk", records, cols), "zendesk").join(
        records.select("record_id", "person_idx", "zd_id", "style", "created_at"), on="record_id")
    s = pl.col("style") % 1000
    junk_email = pl.lit(pl.Series(JUNK_EMAILS)).gather((pl.col("style") % len(JUNK_EMAILS)).cast(pl.UInt32))
    snap = snap.with_columns(
        pl.when(s < 3).then(junk_email).otherwise(pl.col("email")).alias("email"),
        pl.when((s >= 3) & (s < 6)).then(pl.lit("000-000-0000")).alias("junk_phone"),
    )
    name = (pl.when(s % 100 < 15).then(pl.format("{}, {}", "last_name", "first_name"))
            .otherwise(_full_name()))
    out.tables["zendesk/user"] = snap.select(
        pl.col("zd_id").alias("id"),
        pl.when("scrubbed").then(pl.lit("Permanently Deleted User")).otherwise(name).alias("name"),
        pl.when("scrubbed").then(None).otherwise(noisy_email("email", (s * 7) % 100)).alias("email"),
        pl.when("scrubbed").then(None).otherwise(pl.coalesce(
            "junk_phone", pl.when(s % 100 < 50).then(pl.col("phone")).otherwise(intl_spaced("phone")))
        ).alias("phone"),
        pl.lit(None, pl.String).alias("external_id"),
        pl.when(pl.col("company_idx") >= 0).then(pl.lit(370_000_000_000, pl.Int64) + pl.col("company_idx")).alias("organization_id"),
        pl.lit("end-user").alias("role"), (~pl.col("deleted")).alias("active"),
        "created_at", pl.col("record_time").alias("updated_at"),
        pl.lit(False).alias("_fivetran_deleted"), pl.col("synced").alias("_fivetran_synced"),
        "_landing_date", "_sync")
    live = snap.filter(~pl.col("scrubbed"))
    out.observed.append(_observe(live, {
        "email": "email", "fullName": _full_name(),
        "phone": pl.when(pl.col("junk_phone").is_null()).then(pl.col("phone"))}))
    orgs = world.companies.join(snap.select(pl.col("company_idx").unique()).drop_nulls(), on="company_idx", how="semi")
    out.tables["zendesk/organization"] = _static_landings(world, "zendesk", orgs.select(
        (pl.lit(370_000_000_000, pl.Int64) + pl.col("company_idx")).alias("id"), "name",
        pl.lit(None, pl.String).alias("external_id"),
        pl.when(pl.col("company_idx") % 5 == 0).then(pl.format("{};{}", "domain", pl.col("domain").str.replace(r"\.com$", ".co.uk")))
        .otherwise(pl.col("domain")).alias("domain_names"),
        _as_dt(pl.col("created_at").dt.epoch("us") + 5 * DAY_US).alias("updated_at"),
    )).rename({"synced": "_fivetran_synced"})


SEGMENT_TRAITS = ("email", "first_name", "last_name", "name", "phone", "address_street",
                  "address_city", "address_postal_code", "address_country", "birthday")
_CHANGED_TRAITS = {
    "email": ("email",),
    "phone": ("phone",),
    "address": ("address_street", "address_city", "address_postal_code", "address_country"),
    "last_name": ("last_name", "name"),
    "first_name": ("first_name", "name"),
}


def build_segment(rng: np.random.Generator, world: World, out: SourceOutput) -> None:
    """identify() calls: sign-up with the traits known then, later only what changed."""
    end = _us(world.spec.end_ts)
    p = world.persons.filter(pl.col("in_segment"))
    n = p.height
    u = rng.random(n)
    mode = np.where(u < 0.1, "anon_only", np.where(u < 0.4, "anon_first", "identified"))
    created = p["created_at"].dt.epoch("us").to_numpy() + rng.exponential(2 * DAY_US, n).astype(np.int64)
    link = created + (rng.random(n) * 30 * DAY_US).astype(np.int64)
    hexes = _uuids(rng, n)
    people = p.select("person_idx", "first_name", "last_name", "email", "phone", "street", "city",
                      "postal_code", "country", "birth_date").with_columns(
        pl.Series("mode", mode), pl.Series("created", created), pl.Series("link", link),
        pl.Series("user_id", [f"usr_{h[:12]}" for h in hexes]),
        _uuid_fmt(pl.Series("h", hexes)).alias("anon"),
        pl.Series("mask", rng.integers(0, 1 << 12, n), dtype=pl.Int64),
        pl.Series("device", rng.random(n) < 0.5),
    ).filter(pl.col("created") < end)
    bit = lambda k: (pl.col("mask") // (1 << k)) % 2 == 1  # noqa: E731
    full = [
        pl.col("email"),
        pl.when(bit(0) | bit(1)).then(pl.col("first_name")).alias("first_name"),
        pl.when(bit(0) | bit(1)).then(pl.col("last_name")).alias("last_name"),
        pl.when(bit(2) & bit(3)).then(_full_name()).alias("name"),
        pl.when(bit(4)).then(pl.col("phone")).alias("phone"),
        *[pl.when(bit(5) | bit(6)).then(pl.col(c)).alias(a) for c, a in
          (("street", "address_street"), ("city", "address_city"),
           ("postal_code", "address_postal_code"), ("country", "address_country"))],
        pl.when(bit(7) & bit(8)).then(pl.col("birth_date").cast(pl.String)).alias("birthday"),
    ]
    ids = ["person_idx", "mode", "user_id", "anon", "device", "mask"]
    signup = people.select(
        *ids, pl.col("created").alias("t"),
        pl.when(pl.col("mode") == "identified").then(pl.col("user_id")).alias("uid"),
        pl.when((pl.col("mode") != "identified") | pl.col("device")).then(pl.col("anon")).alias("aid"),
        pl.when(pl.col("mode") == "identified").then(pl.struct(full)).otherwise(
            pl.struct([pl.col("email")] + [pl.lit(None, pl.String).alias(t) for t in SEGMENT_TRAITS[1:]])).alias("traits"))
    linked = people.filter((pl.col("mode") == "anon_first") & (pl.col("link") < end)).select(
        *ids, pl.col("link").alias("t"), pl.col("user_id").alias("uid"), pl.col("anon").alias("aid"),
        pl.struct(full).alias("traits"))
    ev = world.events.filter(pl.col("delay_segment").is_not_null() & pl.col("group").is_in(list(_CHANGED_TRAITS)))
    ch = ev.join(people.select(*ids, "created", "link", pl.col("first_name").alias("_fn0"),
                               pl.col("last_name").alias("_ln0")),
                 on="person_idx", how="inner").with_columns(
        pl.max_horizontal(pl.col("t").dt.epoch("us") + (pl.col("delay_segment") * 1e6).cast(pl.Int64),
                          pl.col("created") + 1_000_000).alias("t"))
    identified_now = (pl.col("mode") == "identified") | ((pl.col("mode") == "anon_first") & (pl.col("t") >= pl.col("link")))
    changes = ch.select(
        *ids, "t",
        pl.when(identified_now).then(pl.col("user_id")).alias("uid"),
        pl.when(~identified_now | pl.col("device")).then(pl.col("anon")).alias("aid"),
        pl.struct(
            pl.when(pl.col("group") == "email").then(pl.col("email")).alias("email"),
            pl.when(pl.col("group") == "first_name").then(pl.col("first_name"))
            .alias("first_name"),
            pl.when(pl.col("group") == "last_name").then(pl.col("last_name")).alias("last_name"),
            pl.when((pl.col("group") == "last_name") & bit(2)).then(
                pl.format("{} {}", "_fn0", "last_name"))
            .when((pl.col("group") == "first_name") & bit(2)).then(
                pl.format("{} {}", "first_name", "_ln0")).alias("name"),
            pl.when(pl.col("group") == "phone").then(pl.col("phone")).alias("phone"),
            pl.when(pl.col("group") == "address").then(pl.col("street")).alias("address_street"),
            pl.when(pl.col("group") == "address").then(pl.col("city")).alias("address_city"),
            pl.when(pl.col("group") == "address").then(pl.col("postal_code")).alias("address_postal_code"),
            pl.when(pl.col("group") == "address").then(pl.col("country")).alias("address_country"),
            pl.lit(None, pl.String).alias("birthday"),
        ).alias("traits"))
    calls = pl.concat([signup, linked, changes], how="vertical_relaxed").filter(pl.col("t") < end)
    m = calls.height
    offline = rng.random(m) < 0.03
    skew = rng.random(m) < 0.01
    t = calls["t"].to_numpy()
    received = t + np.where(offline, (1 + rng.random(m) * 3) * DAY_US, 50_000 + rng.random(m) * 2_000_000).astype(np.int64)
    sent = received - (10_000 + rng.random(m) * 290_000).astype(np.int64)
    ten_years = 3652 * DAY_US
    loads = _sync_times(world, SEGMENT_LOAD_HOURS)
    load_idx = np.searchsorted(loads, received + 600_000_000, side="left")
    calls = calls.with_columns(
        _as_dt(pl.Series(t)).alias("timestamp"), _as_dt(pl.Series(received)).alias("received_at"),
        _as_dt(pl.Series(sent + np.where(skew, ten_years, 0))).alias("sent_at"),
        _as_dt(pl.Series(t + np.where(skew, ten_years, 0))).alias("original_timestamp"),
        pl.Series("_sync", load_idx, dtype=pl.Int64),
        _uuid_fmt(pl.Series("h", _uuids(rng, m))).alias("id"),
    ).filter(pl.col("_sync") < loads.size).with_columns(
        _as_dt(pl.lit(pl.Series(loads)).gather(pl.col("_sync").cast(pl.UInt32))).dt.date().alias("_landing_date"))
    records = pl.concat([
        calls.filter(pl.col("uid").is_not_null()).select("person_idx", pl.col("uid").alias("record_id"),
                                                         pl.col("timestamp")),
        calls.filter(pl.col("uid").is_null()).select("person_idx", pl.format("anon:{}", "aid").alias("record_id"),
                                                     pl.col("timestamp")),
    ]).group_by("person_idx", "record_id").agg(pl.col("timestamp").min().alias("created_at")).with_columns(
        pl.lit(None, US).alias("deleted_at"), pl.lit(None, pl.String).alias("merged_into"))
    out.records.append(_truth_records(records.sort("record_id"), world, "segment", "identifies"))
    flat = calls.unnest("traits")
    if world.spec.habits.no_contact_share:
        hidden = no_contact(pl.coalesce("uid", pl.format("anon:{}", "aid")), world.spec.habits)
        flat = flat.with_columns(pl.when(hidden).then(None).otherwise(pl.col(c)).alias(c)
                                 for c in ("email", "phone"))
    s = pl.col("mask") % 100
    out.tables["segment/identifies"] = flat.select(
        "id", pl.col("aid").alias("anonymous_id"), pl.col("uid").alias("user_id"),
        "timestamp", "received_at", "sent_at", "original_timestamp",
        pl.when(pl.col("mask") % 3 == 0).then(pl.lit("analytics-ios")).otherwise(pl.lit("analytics.js")).alias("context_library_name"),
        noisy_email("email", (s * 7) % 100).alias("email"),
        noisy_name("first_name", s, flat).alias("first_name"),
        noisy_name("last_name", (s + 37) % 100, flat).alias("last_name"), "name",
        pl.when(s < 60).then(pl.col("phone")).otherwise(intl_spaced("phone")).alias("phone"),
        "address_street", "address_city", "address_postal_code",
        spelled_country("address_country", s).alias("address_country"), "birthday",
        "_landing_date", "_sync")
    out.observed.append(_observe(flat, {
        "email": "email", "firstName": "first_name", "lastName": "last_name", "fullName": "name",
        "phone": "phone", "street": "address_street", "city": "address_city",
        "postalCode": "address_postal_code", "country": "address_country", "birthDate": "birthday"}))
