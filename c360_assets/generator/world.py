"""The simulated world: persons, companies and what really happened to them (truth).

Everything is vectorised (numpy + polars) and driven by one seeded generator, so a
world of 1M persons builds in seconds and the same seed always gives the same world.
Values here are canonical (the normalised form silver will produce); the noise a
source adds when it stores a value is applied later, in `sources.py`.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from dataclasses import dataclass

import numpy as np
import polars as pl

from c360_assets.generator.reference import (
    COMPANY_SUFFIXES,
    COMPANY_WORDS,
    COUNTRIES,
    INDUSTRIES,
    ROLE_MAILBOXES,
)

SOURCES = ("salesforce", "sap", "shopify", "segment", "zendesk")
UTC = dt.UTC
HISTORY_START = dt.datetime(2019, 1, 1, tzinfo=UTC)

# Which truth change groups each source stores (the contract's mapping table).
CARRIES: dict[str, frozenset[str]] = {
    "salesforce": frozenset({"email", "phone", "mobile", "address", "last_name", "first_name",
                             "consent", "employer"}),
    "sap": frozenset({"email", "phone", "address", "last_name", "first_name"}),
    "shopify": frozenset({"email", "phone", "address", "last_name", "first_name", "consent"}),
    "segment": frozenset({"email", "phone", "address", "last_name", "first_name"}),
    "zendesk": frozenset({"email", "phone", "last_name", "first_name", "employer"}),
}
GROUP_COLUMNS: dict[str, tuple[str, ...]] = {
    "email": ("email",),
    "phone": ("phone",),
    "mobile": ("mobile_phone",),
    "address": ("street", "city", "postal_code", "country"),
    "last_name": ("last_name",),
    "first_name": ("first_name",),
    "consent": ("email_consent",),
    "employer": ("company_idx",),
}
# Changes per person per day, by group (the default world: first names never change).
CHANGE_RATES = {"email": 0.002, "phone": 0.0015, "mobile": 0.0005, "address": 0.001,
                "last_name": 0.0003, "consent": 0.002, "employer": 0.0005}
PROPAGATION = {"salesforce": 0.5, "sap": 0.4, "shopify": 0.5, "segment": 0.3, "zendesk": 0.5}
MEMBERSHIP = {"sap": 0.25, "shopify": 0.55, "segment": 0.45, "zendesk": 0.35}


@dataclass(frozen=True)
class Habits:
    """How a world's people and its sources behave: the generator's knobs. Two profiles
    ship (`PROFILES`); c360's figures are reported on both, so no default is tuned to
    one world's habits."""

    change_rates: dict[str, float]
    membership: dict[str, float]  # share of persons in each source (Salesforce: B2B-driven)
    propagation: dict[str, float]  # chance a source learns a change made elsewhere
    household_rate: float = 0.01  # persons heading a household (a partner shares mailbox)
    household_shares_phone: bool = False  # the partner also shares the landline
    no_contact_share: float = 0.0  # records landing with neither e-mail nor phone
    primary_typo_share: float = 0.0  # Salesforce records keyed with a first-name typo
    duplicate_typo_share: float = 0.5  # Salesforce duplicates keyed with one


PROFILES: dict[str, Habits] = {
    # c360's own generator: stable first names, typo'd Salesforce duplicates.
    "default": Habits(CHANGE_RATES, MEMBERSHIP, PROPAGATION),
    # A differently minded world: people really change first names, households share a
    # mailbox *and* a landline and are three times as common, 15% of records carry no
    # e-mail or phone, heavier typos, another source mix and propagation.
    "changes": Habits(
        {**CHANGE_RATES, "first_name": 0.0015},
        {"sap": 0.45, "shopify": 0.35, "segment": 0.6, "zendesk": 0.2},
        {"salesforce": 0.3, "sap": 0.6, "shopify": 0.4, "segment": 0.5, "zendesk": 0.3},
        household_rate=0.03, household_shares_phone=True, no_contact_share=0.15,
        primary_typo_share=0.03, duplicate_typo_share=1.0),
}
EVENT_VALUE_SCHEMA: dict[str, pl.DataType] = {
    "email": pl.String(), "phone": pl.String(), "mobile_phone": pl.String(), "street": pl.String(),
    "city": pl.String(), "postal_code": pl.String(), "country": pl.String(),
    "last_name": pl.String(), "first_name": pl.String(), "company_idx": pl.Int64(),
}

@dataclass(frozen=True)
class WorldSpec:
    persons: int
    days: int
    seed: int
    start: dt.date
    profile: str = "default"

    @property
    def habits(self) -> Habits:
        return PROFILES[self.profile]

    @property
    def start_ts(self) -> dt.datetime:
        return dt.datetime.combine(self.start, dt.time(), tzinfo=UTC)

    @property
    def end_ts(self) -> dt.datetime:
        return self.start_ts + dt.timedelta(days=self.days)


@dataclass
class World:
    spec: WorldSpec
    persons: pl.DataFrame  # initial canonical values + membership flags
    companies: pl.DataFrame
    events: pl.DataFrame  # truth changes: person_idx, t, group, new values, origin, delays


def ascii_slug(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum())


def _slug_series(values: pl.Series) -> pl.Series:
    mapping = {v: ascii_slug(v) for v in values.unique().to_list() if v is not None}
    return values.replace_strict(mapping, return_dtype=pl.String)


def _times(rng: np.random.Generator, lo: dt.datetime, hi: dt.datetime | np.ndarray, n: int
           ) -> np.ndarray:
    """Uniform random UTC instants (microseconds) in [lo, hi)."""
    lo_us = int(lo.timestamp() * 1e6)
    hi_us = (np.asarray(hi, dtype="datetime64[us]").astype(np.int64) if isinstance(hi, np.ndarray)
             else int(hi.timestamp() * 1e6))
    span = np.maximum(np.asarray(hi_us) - lo_us, 1)
    return lo_us + (rng.random(n) * span).astype(np.int64)


def strs(values: object, name: str = "") -> pl.Series:
    """A String series from a numpy object array (or any sequence) of str/None."""
    if isinstance(values, np.ndarray):
        values = values.tolist()
    return pl.Series(name, values, dtype=pl.String)


def _us_to_series(name: str, us: np.ndarray) -> pl.Series:
    return pl.Series(name, us, dtype=pl.Int64).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")


def random_phones(rng: np.random.Generator, countries: np.ndarray) -> np.ndarray:
    """Valid E.164 mobile numbers for each country code in `countries`."""
    out = np.empty(len(countries), dtype=object)
    for c in COUNTRIES:
        idx = np.flatnonzero(countries == c.code)
        if not idx.size:
            continue
        prefixes = np.asarray(c.mobile_prefixes, dtype=object)[rng.integers(0, len(c.mobile_prefixes), idx.size)]
        digits = rng.integers(0, 10**c.subscriber_digits, idx.size)
        out[idx] = [f"+{c.calling_code}{p}{d:0{c.subscriber_digits}d}" for p, d in zip(prefixes, digits, strict=True)]
    return out


def _postal(rng: np.random.Generator, pattern: str, n: int) -> list[str]:
    parts = []
    for ch in pattern:
        if ch == "9":
            parts.append(np.char.mod("%d", rng.integers(0, 10, n)))
        elif ch == "A":
            parts.append(np.asarray(list("ABCDEFGHJKLMNPRSTUVWXYZ"))[rng.integers(0, 23, n)])
        else:
            parts.append(np.full(n, ch))
    joined = parts[0].astype(object)
    for p in parts[1:]:
        joined = joined + p.astype(object)
    return list(joined)


def random_addresses(rng: np.random.Generator, countries: np.ndarray) -> dict[str, np.ndarray]:
    n = len(countries)
    street = np.empty(n, dtype=object)
    city = np.empty(n, dtype=object)
    postal = np.empty(n, dtype=object)
    for c in COUNTRIES:
        idx = np.flatnonzero(countries == c.code)
        if not idx.size:
            continue
        numbers = rng.integers(1, 300, idx.size)
        names = np.asarray(c.streets, dtype=object)[rng.integers(0, len(c.streets), idx.size)]
        if c.code in ("US", "GB", "CA", "FR"):  # number before the street name
            street[idx] = [f"{num} {s}" for num, s in zip(numbers, names, strict=True)]
        else:
            street[idx] = [f"{s} {num}" for num, s in zip(numbers, names, strict=True)]
        city[idx] = np.asarray(c.cities, dtype=object)[rng.integers(0, len(c.cities), idx.size)]
        postal[idx] = _postal(rng, c.postal, idx.size)
    return {"street": street, "city": city, "postal_code": postal}


def _pick(rng: np.random.Generator, countries: np.ndarray, field: str) -> np.ndarray:
    out = np.empty(len(countries), dtype=object)
    for c in COUNTRIES:
        idx = np.flatnonzero(countries == c.code)
        values = np.asarray(getattr(c, field), dtype=object)
        out[idx] = values[rng.integers(0, len(values), idx.size)]
    return out


def _emails(rng: np.random.Generator, first: pl.Series, last: pl.Series, countries: np.ndarray
            ) -> pl.Series:
    domains = _pick(rng, countries, "domains")
    style = rng.integers(0, 4, len(countries))
    number = rng.integers(1, 10000, len(countries))
    frame = pl.DataFrame({"f": _slug_series(first), "l": _slug_series(last),
                          "d": strs(domains), "s": style, "n": number})
    local = (pl.when(pl.col("s") == 0).then(pl.format("{}.{}", "f", "l"))
             .when(pl.col("s") == 1).then(pl.format("{}{}{}", pl.col("f").str.slice(0, 1), "l", "n"))
             .when(pl.col("s") == 2).then(pl.format("{}_{}{}", "f", "l", "n"))
             .otherwise(pl.format("{}.{}{}", "f", "l", "n")))
    return frame.select(pl.format("{}@{}", local, "d").alias("email")).to_series()


def build_world(spec: WorldSpec) -> World:
    rng = np.random.default_rng(spec.seed)
    n = spec.persons
    weights = np.array([c.weight for c in COUNTRIES])
    countries = np.asarray([c.code for c in COUNTRIES], dtype=object)[
        rng.choice(len(COUNTRIES), n, p=weights / weights.sum())]
    first = strs(_pick(rng, countries, "first_names"), "first_name")
    last = strs(_pick(rng, countries, "last_names"), "last_name")
    addresses = random_addresses(rng, countries)

    # 95% of persons exist before the window, 5% sign up during it.
    in_window = rng.random(n) < 0.05
    created = np.where(in_window,
                       _times(rng, spec.start_ts, spec.end_ts, n),
                       _times(rng, HISTORY_START, spec.start_ts - dt.timedelta(days=1), n))
    birth = (np.datetime64("1950-01-01") + rng.integers(0, 20_000, n).astype("timedelta64[D]"))

    n_companies = max(2, n // 25)
    b2b = rng.random(n) < 0.3
    company_idx = np.where(b2b, rng.integers(0, n_companies, n), -1)

    persons = pl.DataFrame({
        "person_idx": np.arange(n, dtype=np.int64),
        "country": strs(countries),
        "first_name": first,
        "last_name": last,
        "phone": strs(random_phones(rng, countries)),
        "mobile_phone": strs(np.where(rng.random(n) < 0.5, random_phones(rng, countries), None)),
        "street": strs(addresses["street"]),
        "city": strs(addresses["city"]),
        "postal_code": strs(addresses["postal_code"]),
        "birth_date": pl.Series(birth.astype("datetime64[D]")).cast(pl.Date),
        "email_consent": rng.random(n) < 0.55,
        "company_idx": company_idx.astype(np.int64),
    }).with_columns(
        _us_to_series("created_at", created),
        _emails(rng, first, last, countries),
        pl.format("P{}", pl.col("person_idx").cast(pl.String).str.zfill(8)).alias("person_id"),
    )

    # Households: a partner shares last name, address and a family mailbox (and, in
    # some worlds, the landline).
    habits = spec.habits
    heads = np.flatnonzero(rng.random(n) < habits.household_rate)
    heads = heads[heads + 1 < n]
    heads = heads[np.concatenate(([True], np.diff(heads) > 1))] if heads.size else heads
    partners = heads + 1
    if heads.size:
        head_rows = persons[heads]
        fam_email = (head_rows.select(
            pl.format("{}.family{}@gmail.com", _slug_series(head_rows["last_name"]),
                      pl.Series(rng.integers(1, 100, heads.size)))).to_series())
        shared_cols = ("last_name", "street", "city", "postal_code", "country",
                       *(("phone",) if habits.household_shares_phone else ()))
        for col_name in shared_cols:
            values = persons[col_name].to_numpy().copy()
            values[partners] = values[heads]
            persons = persons.with_columns(pl.Series(col_name, values, dtype=persons[col_name].dtype))
        emails = persons["email"].to_numpy().copy()
        emails[heads] = fam_email.to_numpy()
        emails[partners] = fam_email.to_numpy()
        persons = persons.with_columns(strs(emails, "email"))

    # Source membership.
    member = {
        "salesforce": np.where(b2b, rng.random(n) < 0.9, rng.random(n) < 0.2),
        **{s: rng.random(n) < p for s, p in habits.membership.items()},
    }
    is_partner = np.isin(np.arange(n), partners)
    member["shopify"][is_partner] = False  # one Shopify customer per e-mail per shop
    none = ~np.any(np.vstack(list(member.values())), axis=0)
    member["shopify"] |= none & ~is_partner  # everyone is known to at least one source
    member["zendesk"] |= none & is_partner
    persons = persons.with_columns(
        [pl.Series(f"in_{s}", member[s]) for s in SOURCES]
        + [pl.Series("household_partner_of", np.where(is_partner, np.arange(n) - 1, -1)).cast(pl.Int64)]
    )

    companies = _companies(rng, n_companies, spec)
    events = _events(rng, spec, persons, n_companies)
    persons, events = _unique_emails(persons, events)
    return World(spec, persons, companies, events)


def _unique_emails(persons: pl.DataFrame, events: pl.DataFrame
                   ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """An address belongs to one mailbox owner, as providers enforce: the first holder
    (initial values, then changes in time order) keeps it; anyone else who drew the same
    address gets it with a unique number added. A household shares its family mailbox."""
    owner = pl.when(pl.col("household_partner_of") >= 0).then(
        pl.col("household_partner_of")).otherwise(pl.col("person_idx"))
    initial = persons.select(pl.lit(0).alias("part"), pl.col("person_idx").alias("row"),
                             owner.alias("owner"), "email")
    changed = (events.with_row_index("row").filter(pl.col("email").is_not_null())
               .join(persons.select("person_idx", owner.alias("owner")), on="person_idx")
               .select(pl.lit(1).alias("part"), pl.col("row").cast(pl.Int64), "owner", "email"))
    rows = pl.concat([initial, changed]).with_row_index("order")
    first = rows.group_by("email").agg(pl.col("owner").sort_by("order").first().alias("first"))
    fixed = rows.join(first, on="email").with_columns(
        pl.when(pl.col("owner") == pl.col("first")).then(pl.col("email")).otherwise(
            pl.format("{}.{}@{}", pl.col("email").str.extract(r"^([^@]+)@"),
                      pl.col("order"), pl.col("email").str.extract(r"@(.+)$")))
        .alias("email"))

    def apply(frame: pl.DataFrame, part: int) -> pl.DataFrame:
        new = fixed.filter(pl.col("part") == part).select(pl.col("row").alias("_row"),
                                                          pl.col("email").alias("_email"))
        return (frame.with_row_index("_row").with_columns(pl.col("_row").cast(pl.Int64))
                .join(new, on="_row", how="left", maintain_order="left")
                .with_columns(pl.coalesce("_email", "email").alias("email"))
                .drop("_row", "_email"))

    return apply(persons, 0), apply(events, 1)


def _companies(rng: np.random.Generator, count: int, spec: WorldSpec) -> pl.DataFrame:
    i = np.arange(count)
    words = np.asarray(COMPANY_WORDS, dtype=object)[i % len(COMPANY_WORDS)]
    suffixes = np.asarray(COMPANY_SUFFIXES, dtype=object)[(i // len(COMPANY_WORDS)) % len(COMPANY_SUFFIXES)]
    serial = i // (len(COMPANY_WORDS) * len(COMPANY_SUFFIXES))
    names = [f"{w} {s}" + (f" {k}" if k else "") for w, s, k in zip(words, suffixes, serial, strict=True)]
    domains = [ascii_slug(w) + ascii_slug(s) + (str(k) if k else "") + ".com"
               for w, s, k in zip(words, suffixes, serial, strict=True)]
    countries = np.asarray([c.code for c in COUNTRIES], dtype=object)[rng.integers(0, len(COUNTRIES), count)]
    role = rng.random(count) < 0.3
    mailbox = np.asarray(ROLE_MAILBOXES, dtype=object)[rng.integers(0, len(ROLE_MAILBOXES), count)]
    return pl.DataFrame({
        "company_idx": i.astype(np.int64),
        "name": names,
        "domain": domains,
        "industry": np.asarray(INDUSTRIES, dtype=object)[rng.integers(0, len(INDUSTRIES), count)],
        "country": strs(countries),
        "city": strs(_pick(rng, countries, "cities")),
        "role_mailbox": strs([f"{m}@{d}" if r else None for m, d, r in zip(mailbox, domains, role, strict=True)]),
        "asset_count": rng.integers(0, 4, count),
    }).with_columns(_us_to_series("created_at", _times(rng, HISTORY_START, spec.start_ts - dt.timedelta(days=30), count)))


def _events(rng: np.random.Generator, spec: WorldSpec, persons: pl.DataFrame, n_companies: int
            ) -> pl.DataFrame:
    """Truth changes in the window, each with its origin source and propagation delays."""
    n = persons.height
    created_us = persons["created_at"].dt.epoch("us").to_numpy()
    frames = []
    for group, rate in spec.habits.change_rates.items():
        counts = rng.poisson(rate * spec.days, n)
        if group == "employer":
            counts = np.where(persons["company_idx"].to_numpy() >= 0, counts, 0)
        if group == "mobile":
            counts = np.where(persons["mobile_phone"].is_not_null().to_numpy(), counts, 0)
        idx = np.repeat(np.arange(n), counts)
        if not idx.size:
            continue
        lo = np.maximum(created_us[idx], int(spec.start_ts.timestamp() * 1e6))
        hi = int(spec.end_ts.timestamp() * 1e6)
        t = lo + (rng.random(idx.size) * np.maximum(hi - lo, 1)).astype(np.int64)
        countries = persons["country"].to_numpy()[idx]
        values: dict[str, object] = {}
        if group == "email":
            sub = persons[idx]
            values["email"] = _emails(rng, sub["first_name"], sub["last_name"], countries)
        elif group in ("phone", "mobile"):
            values[GROUP_COLUMNS[group][0]] = strs(random_phones(rng, countries))
        elif group == "address":
            moved = rng.random(idx.size) < 0.1
            new_country = np.where(moved, np.asarray([c.code for c in COUNTRIES], dtype=object)[
                rng.integers(0, len(COUNTRIES), idx.size)], countries)
            addr = random_addresses(rng, new_country)
            values.update({k: strs(v) for k, v in addr.items()})
            values["country"] = strs(new_country)
        elif group == "last_name":
            values["last_name"] = strs(_pick(rng, countries, "last_names"))
        elif group == "first_name":
            values["first_name"] = strs(_pick(rng, countries, "first_names"))
        elif group == "employer":
            values["company_idx"] = pl.Series(rng.integers(0, n_companies, idx.size), dtype=pl.Int64)
        frames.append(pl.DataFrame({"person_idx": idx.astype(np.int64), "group": group})
                      .with_columns(_us_to_series("t", t), *[
                          (v.alias(k) if isinstance(v, pl.Series) else pl.Series(k, v))
                          for k, v in values.items()]))
    events = pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame(
        schema={"person_idx": pl.Int64, "group": pl.String, "t": pl.Datetime("us", "UTC")})
    # A fixed schema whatever happened: a small world may have no event of some group.
    events = events.with_columns([
        pl.lit(None, dtype).alias(name) for name, dtype in EVENT_VALUE_SCHEMA.items()
        if name not in events.columns
    ]).sort(["t", "person_idx", "group"])
    events = _consent_toggles(events, persons)
    events = _recycle_phones(rng, events, persons)
    events = events.with_row_index("event_idx").with_columns(pl.col("event_idx").cast(pl.Int64))
    return _origins(rng, events, persons, spec.habits)


def _consent_toggles(events: pl.DataFrame, persons: pl.DataFrame) -> pl.DataFrame:
    """Each consent event flips the person's consent (revoked, re-granted, ...)."""
    initial = persons.select("person_idx", pl.col("email_consent").alias("_initial"))
    flips = (events.join(initial, on="person_idx", how="left")
             .with_columns(pl.when(pl.col("group") == "consent").then(
                 (pl.col("group") == "consent").cast(pl.Int32).cum_sum().over("person_idx"))
                 .alias("_n")))
    return flips.with_columns(
        pl.when(pl.col("group") == "consent")
        .then(pl.col("_initial") ^ ((pl.col("_n") % 2) == 1))
        .alias("email_consent")
    ).drop("_initial", "_n")


def _recycle_phones(rng: np.random.Generator, events: pl.DataFrame, persons: pl.DataFrame
                    ) -> pl.DataFrame:
    """5% of new phone numbers are numbers another person gave up earlier (recycled)."""
    phone_rows = np.flatnonzero((events["group"] == "phone").to_numpy())
    if phone_rows.size < 2:
        return events
    person = events["person_idx"].to_numpy()[phone_rows]
    t = events["t"].dt.epoch("us").to_numpy()[phone_rows]
    # A number is released by a person's first phone change: its old value is the initial phone.
    first_change = pl.Series(person).is_first_distinct().to_numpy()
    released_at = t[first_change]
    released_phone = persons["phone"].to_numpy()[person[first_change]]
    released_country = persons["country"].to_numpy()[person[first_change]]
    released_person = person[first_change]
    country_of = persons["country"].to_numpy()
    phones = events["phone"].to_numpy().copy()
    for k in np.flatnonzero(rng.random(phone_rows.size) < 0.05):
        # Numbers of the same country released before this change, by someone else.
        pool = np.flatnonzero((released_at < t[k]) & (released_country == country_of[person[k]])
                              & (released_person != person[k]))
        if pool.size:
            phones[phone_rows[k]] = released_phone[pool[rng.integers(0, pool.size)]]
    return events.with_columns(strs(phones, "phone"))


def _origins(rng: np.random.Generator, events: pl.DataFrame, persons: pl.DataFrame,
             habits: Habits) -> pl.DataFrame:
    """Where each change is first recorded, and when (if ever) each other source learns it."""
    member = persons.select(["person_idx"] + [f"in_{s}" for s in SOURCES])
    ev = events.join(member, on="person_idx", how="left")
    propagation = habits.propagation
    m = ev.height
    group = ev["group"].to_numpy()
    carries = {s: np.isin(group, list(CARRIES[s])) & ev[f"in_{s}"].to_numpy() for s in SOURCES}
    # Origin: consent changes start in Shopify when the person is a customer there.
    weight = np.vstack([carries[s].astype(float) for s in SOURCES]).T
    weight[group == "consent", SOURCES.index("shopify")] *= 8
    total = weight.sum(axis=1)
    u = rng.random(m) * total
    origin_idx = (np.cumsum(weight, axis=1) < u[:, None]).sum(axis=1)
    origin = np.where(total > 0, np.asarray(SOURCES, dtype=object)[np.minimum(origin_idx, len(SOURCES) - 1)], None)
    delays = {}
    for s in SOURCES:
        is_origin = origin == s
        learns = carries[s] & (is_origin | (rng.random(m) < propagation[s]))
        delay_s = np.where(is_origin, 0.0, 60.0 + rng.exponential(2 * 86_400, m))
        delays[f"delay_{s}"] = pl.Series(np.where(learns, delay_s, np.nan)).fill_nan(None)
    return ev.drop([f"in_{s}" for s in SOURCES]).with_columns(
        strs(origin, "origin"), *[v.alias(k) for k, v in delays.items()])
