"""Value normalisation: one canonical form per attribute value, vectorised over polars.

Every function returns `(value, valid)` expressions (or series): `value` is the
normalised form used for comparison, hashing and value nodes; `valid` says whether it
passed the attribute's rules. Invalid values are kept in a best-effort form, never
dropped (the raw value is kept next to them by the callers).

* email: trimmed, lower-cased; valid when it has the shape of an addr-spec
  (dot-atom local part, a domain of letter/digit/hyphen labels and a letter TLD).
* phone: E.164. The record's country (ISO alpha-2) is the region hint for national
  forms. Validity is libphonenumber's rule: the national number matches one of the
  number-type patterns (fixed line, mobile, ...) of its calling code's regions, from
  `phonenumbers`' metadata, applied as one vectorised regex per calling code to each
  distinct candidate (`phonenumbers.parse` per value is ~80 us, far too slow for
  millions of values; a property test holds the two to the same answers). A number
  that cannot be read keeps `+` and its digits.
* country: ISO-3166 alpha-2 from codes, names and official/common names
  (`pycountry`) plus the spellings in `config/country_aliases.csv`.
* names, street, city: trimmed, inner whitespace collapsed, Unicode NFC; a full name
  in directory order ("Last, First") reads as "First Last".
* postal code: trimmed, collapsed, upper-case. Dates: ISO `YYYY-MM-DD`.
* consent: `true` / `false` (Shopify subscribed -> true; not_subscribed,
  unsubscribed, pending, redacted, invalid -> false; booleans as themselves).

Every kind has content and length limits (`MAX_CHARS`; e-mail: RFC 5321's 254
characters, a local part of at most 64 and domain labels of at most 63). Control
characters (C0 but tab, line feed and carriage return; DEL; C1: NUL, terminal escapes)
are removed from the normalised value, and a value that held one, or is longer than its
limit, is invalid: it never links identities. Such a value (`breaks_limits`) is also
implausible - no customer's real value - and loses to any other value in gold, while a
value that merely fails its format (a mistyped e-mail) competes as usual.
"""

from __future__ import annotations

import csv
import functools
import re

import phonenumbers
import polars as pl
import pycountry

from c360_assets.lib.config import ConfigError, config_dir

Kind = str  # email, phone, country, name, full_name, postal, date, consent, id, text


_EMAIL = (r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
          r"@([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")

# Control characters: C0 except tab, LF and CR (whitespace, collapsed like spaces), DEL
# and C1. NUL bytes and terminal escape sequences (ESC, CSI) are among them.
# Written so that polars (Rust regex) and Python's `re` read it alike.
CONTROL = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]"

# The longest valid normalised value per kind, in characters: e-mail per RFC 5321 (a
# forward-path of 256 octets holds an address of at most 254), names and addresses at
# the 255 most systems store, postal codes far above any country's (at most 10), a phone
# as landed (E.164 itself has at most 15 digits, checked on its own).
MAX_CHARS: dict[Kind, int] = {
    "email": 254, "name": 255, "full_name": 255, "postal": 20, "country": 60, "date": 40,
    "consent": 40, "id": 255, "text": 1_000, "phone": 64,
}

CONSENT_TRUE = ("subscribed", "true")
CONSENT_FALSE = ("not_subscribed", "unsubscribed", "pending", "redacted", "invalid", "false")


def kind_expr(attribute: pl.Expr, kinds: dict[str, Kind]) -> pl.Expr:
    """The kind of each row's canonical attribute (`kinds`: the registry's, from
    `config/canonical_attributes.csv`; others are text), as an expression."""
    return attribute.replace_strict(kinds, default="text", return_dtype=pl.String)


def breaks_limits(raw: pl.Expr, value: pl.Expr, kind: Kind | pl.Expr) -> pl.Expr:
    """Whether a value breaks its kind's content limits: its landed form (`raw`) holds a
    control character, or it is longer than `MAX_CHARS` of its kind (a phone as landed,
    other kinds normalised: `value`). Such a value is invalid, and also implausible: a
    mistyped e-mail or a phone no numbering plan assigns fails a format rule, while a
    10,000-character e-mail or a name with a terminal escape is not a customer's value
    at all. `kind`: the values' kind, or an expression giving each row's (`kind_expr`)."""
    if isinstance(kind, str):
        too_long = (raw if kind == "phone" else value).str.len_chars() > MAX_CHARS[kind]
    else:
        too_long = (pl.when(kind == "phone").then(raw.str.len_chars())
                    .otherwise(value.str.len_chars())
                    > kind.replace_strict(MAX_CHARS, return_dtype=pl.Int64))
    return raw.str.contains(CONTROL).fill_null(False) | too_long.fill_null(False)


def _collapse(expr: pl.Expr) -> pl.Expr:
    return expr.str.strip_chars().str.replace_all(r"\s+", " ")


def email(expr: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    value = expr.str.strip_chars().str.to_lowercase()
    local = value.str.extract(r"^(.*)@[^@]*$")
    return value, (value.str.contains(_EMAIL) & (local.str.len_chars() <= 64)
                   & (value.str.len_chars() <= MAX_CHARS["email"]))


def name(expr: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    value = _collapse(expr).str.normalize("NFC")
    return value, value.str.len_chars() > 0


def full_name(expr: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """A full name; "Last, First" (directory order) reads as "First Last"."""
    value, valid = name(expr)
    parts = value.str.split_exact(", ", 1)
    swapped = pl.when(value.str.count_matches(",") == 1).then(
        pl.format("{} {}", parts.struct.field("field_1"), parts.struct.field("field_0")))
    return pl.coalesce(swapped, value), valid


def postal(expr: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    value = _collapse(expr).str.to_uppercase()
    return value, value.str.len_chars() > 0


def text(expr: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    value = _collapse(expr)
    return value, value.str.len_chars() > 0


def date(expr: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    raw = expr.str.strip_chars()
    parsed = raw.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False)
    return pl.coalesce(parsed.dt.to_string("%Y-%m-%d"), raw), parsed.is_not_null()


def consent(expr: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    raw = expr.str.strip_chars().str.to_lowercase()
    value = (pl.when(raw.is_in(CONSENT_TRUE)).then(pl.lit("true"))
             .when(raw.is_in(CONSENT_FALSE)).then(pl.lit("false"))
             .otherwise(raw))
    return value, raw.is_in(CONSENT_TRUE + CONSENT_FALSE)


@functools.cache
def country_table() -> dict[str, str]:
    """lower-cased spelling -> ISO alpha-2."""
    table: dict[str, str] = {}
    for c in pycountry.countries:
        for spelling in (c.alpha_2, c.alpha_3, c.name, getattr(c, "official_name", None),
                         getattr(c, "common_name", None)):
            if spelling:
                table[spelling.lower()] = c.alpha_2
    path = config_dir() / "country_aliases.csv"
    if path.exists():
        with path.open(newline="", encoding="utf-8") as fh:
            for line, row in enumerate(csv.DictReader(fh), start=2):
                alias, code = (row.get("alias") or "").strip(), (row.get("alpha_2") or "").strip()
                if not alias or code.upper() not in {c.alpha_2 for c in pycountry.countries}:
                    raise ConfigError(f"{path}:{line}: alias and a known ISO alpha-2 code required")
                table[alias.lower()] = code.upper()
    return table


def country(expr: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    key = _collapse(expr).str.normalize("NFC").str.to_lowercase()
    code = key.replace_strict(country_table(), default=None, return_dtype=pl.String)
    return pl.coalesce(code, _collapse(expr)), code.is_not_null()


# ---------------------------------------------------------------------------- phones


_NUMBER_TYPES = ("fixed_line", "mobile", "toll_free", "premium_rate", "shared_cost",
                 "personal_number", "voip", "pager", "uan", "voicemail")


@functools.cache
def _phone_metadata() -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """(region -> calling code, region -> national prefix, calling code -> nsn pattern)."""
    cc_of, prefix_of, patterns = {}, {}, {}
    for code, regions in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.items():
        alts = []
        for region in regions:
            meta = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(code, region)
            if meta is None or meta.general_desc is None:
                continue
            # is_valid_number's rule: the number matches one of the region's number types.
            for desc in (getattr(meta, t, None) for t in _NUMBER_TYPES):
                if desc is not None and desc.national_number_pattern:
                    alts.append(desc.national_number_pattern)
            if region != phonenumbers.UNKNOWN_REGION:
                cc_of[region] = str(code)
                prefix_of[region] = meta.national_prefix or ""
        if alts:
            patterns[str(code)] = "^(?:" + "|".join(f"(?:{a})" for a in alts) + ")$"
    return cc_of, prefix_of, patterns


@functools.cache
def _compiled(code: str) -> re.Pattern[str]:
    return re.compile(_phone_metadata()[2][code])


def phone_frame(raw: pl.Series, region: pl.Series) -> pl.DataFrame:
    """E.164 values and validity for raw phone strings with ISO alpha-2 region hints."""
    cc_of, prefix_of, patterns = _phone_metadata()
    frame = pl.DataFrame({"raw": raw.cast(pl.String), "region": region.cast(pl.String)})
    uniq = frame.unique()
    # Intermediate columns are materialised once (the branches below reuse them).
    uniq = uniq.with_columns(
        pl.col("raw").str.strip_chars().str.replace(r"(?i)\s*(?:ext\.?|x|#)\s*\d+$", "")
        .alias("_s"),
        pl.col("region").replace_strict(cc_of, default=None, return_dtype=pl.String)
        .alias("_rcc"),
        pl.col("region").replace_strict(prefix_of, default="", return_dtype=pl.String)
        .alias("_trunk"),
    ).with_columns(pl.col("_s").str.replace_all(r"\D", "").alias("_digits"))
    s, digits, cc, trunk = pl.col("_s"), pl.col("_digits"), pl.col("_rcc"), pl.col("_trunk")
    national = (pl.when((trunk.str.len_chars() > 0) & digits.str.starts_with(trunk))
                .then(digits.str.slice(trunk.str.len_chars())).otherwise(digits))
    candidate = (pl.when(s.str.starts_with("+")).then(pl.lit("+") + digits)
                 .when(s.str.starts_with("00")).then(pl.lit("+") + digits.str.slice(2))
                 .when(cc.is_null()).then(pl.lit("+") + digits)
                 .when((cc == "1") & (digits.str.len_chars() == 11) & digits.str.starts_with("1"))
                 .then(pl.lit("+") + digits)
                 .otherwise(pl.lit("+") + cc + national))
    uniq = uniq.with_columns(candidate.alias("value"))
    # Validity is a property of the E.164 candidate: check each distinct one once.
    cands = uniq.select("value").unique()
    body = pl.col("value").str.slice(1)
    found = pl.lit(None, pl.String)
    for n in (3, 2, 1):  # calling codes are prefix-free: try 1-, 2- and 3-digit prefixes
        head = body.str.slice(0, n)
        found = pl.when(head.is_in(list(patterns))).then(head).otherwise(found)
    cands = cands.with_columns(found.alias("_cc")).with_columns(
        body.str.slice(pl.col("_cc").str.len_chars()).alias("_nsn"))
    # Each calling code's pattern runs over its own numbers only.
    parts = []
    for part in cands.partition_by("_cc", maintain_order=False):
        code = part.get_column("_cc")[0]
        if code is None:
            matches = pl.lit(False)
        elif part.height < 200:  # compiling a big pattern in polars costs ~8 ms per call
            rx = _compiled(code)
            matches = pl.Series([bool(v is not None and rx.match(v))
                                 for v in part.get_column("_nsn").to_list()])
        else:
            matches = pl.col("_nsn").str.contains(patterns[code])
        parts.append(part.with_columns(matches.alias("_match")))
    cands = pl.concat(parts) if parts else cands.with_columns(pl.lit(False).alias("_match"))
    uniq = uniq.join(cands.select("value", "_match"), on="value", how="left", nulls_equal=True)
    uniq = uniq.with_columns(
        (pl.col("_match").fill_null(False) & (pl.col("value").str.len_chars() <= 16)
         & pl.col("raw").is_not_null()
         & ~breaks_limits(pl.col("raw"), pl.col("value"), "phone")).alias("valid"),
        pl.when(pl.col("raw").is_null() | (pl.col("value") == "+")).then(None)
        .otherwise(pl.col("value")).alias("value"))
    return frame.join(uniq.select("raw", "region", "value", "valid"), on=["raw", "region"],
                      how="left", nulls_equal=True).select("value", "valid")


def normalise(frame: pl.DataFrame, column: str, kind: Kind, region: str | None = None
              ) -> pl.DataFrame:
    """Replace `column` by its normalised value and add `<column>__valid`.

    `region` names a column of ISO alpha-2 country hints (phones only).
    """
    if kind == "phone":
        hint = frame.get_column(region) if region else pl.Series([None] * frame.height,
                                                                 dtype=pl.String)
        out = phone_frame(frame.get_column(column), hint)
        return frame.with_columns(out.get_column("value").alias(column),
                                  out.get_column("valid").alias(f"{column}__valid"))
    values = frame.get_column(column).cast(pl.String)
    if values.n_unique() * 5 < frame.height:  # normalise each distinct value once
        uniq = pl.DataFrame({"raw": values.unique()})
        uniq = normalise(uniq.with_columns(pl.col("raw").alias("v")), "v", kind)
        table = frame.select(pl.col(column).cast(pl.String).alias("raw")).join(
            uniq, on="raw", how="left", nulls_equal=True, maintain_order="left")
        return frame.with_columns(table.get_column("v").alias(column),
                                  table.get_column("v__valid").alias(f"{column}__valid"))
    fn = {"email": email, "country": country, "name": name, "full_name": full_name,
          "postal": postal, "date": date,
          "consent": consent, "id": text, "text": text}[kind]
    landed = pl.col(column).cast(pl.String)
    value, valid = fn(landed.str.replace_all(CONTROL, ""))
    valid = valid & ~breaks_limits(landed, value, kind)
    return frame.with_columns(value.alias(column), valid.alias(f"{column}__valid"))


def e164_reference(raw: str, region: str | None) -> tuple[str | None, bool]:
    """The slow, per-value libphonenumber answer (tests compare the fast path to it)."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None, False
    return (phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
            phonenumbers.is_valid_number(number))

