"""A sync's model -> the rows it wants in the destination (`desired`), and why others
are not there.

The gold relation is read at one pinned Delta version (the last complete publish), so a
sync never sees half of a gold build. Then, in DuckDB SQL over that snapshot: the sync's
computed `columns`, its `filter`, its row guard `when` and each field's own guard; then
consent (gold/consent_status at its pinned version: `allowed`, and not past
`expires_at` now); then the match key: the first of `match_on` that is not null. Rows
whose key is null, names several values, or is shared by two persons are rejected, all
of them: c360 never picks one at random (so are persons with two rows in the model).

`desired` has one row per person: `_person`, `_key_field`, `_key`, each destination
field (typed as the model holds it), `_ok:<field>` (the field's guard held) and
`_ft:<field>` (syncs with `echo` only: the field time of the gold value, for echo
detection: the model's `<column>_updated_at` where it has one; `_key_ft` for the key).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from c360_assets.activation.spec import SyncSpec
from c360_assets.gold.publish import read_version
from c360_assets.lib import delta, layout
from c360_assets.lib.config import C360Config, ConfigError

PERSON = "customer_id"
CONSENT = "consent_status"


@dataclass(frozen=True)
class ModelRows:
    desired: pl.DataFrame
    rejected: pl.DataFrame  # _person, _key_field, _key, reason
    gold_version: int
    model_rows: int
    skipped_filter: int
    skipped_guard: int
    skipped_consent: int


def pinned(lake: Path, relation: str) -> tuple[Path, int]:
    """A gold relation's table and the version to read (the last complete publish)."""
    path = layout.gold_table(lake, relation)
    if not delta.table_exists(path):
        raise ConfigError(f"gold/{relation} is not built (run `c360 materialize` first)")
    version = read_version(lake, relation)
    return path, version if version is not None else delta.table_version(path)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql(con: duckdb.DuckDBPyConnection, spec: SyncSpec, query: str, parts: dict[str, str]
         ) -> pl.DataFrame:
    try:
        return con.sql(query).pl()
    except duckdb.Error as exc:
        # Which expression: try each alone, so the message names the key.
        for key, expr in parts.items():
            try:
                con.sql(f"select {expr} from base limit 0")
            except duckdb.Error as one:
                raise ConfigError(f"{spec.origin}: {key}: {expr!r} fails: "
                                  f"{str(one).splitlines()[0]}") from None
        raise ConfigError(f"{spec.origin}: the model query fails: {exc}") from None


def _check_columns(spec: SyncSpec, available: list[str]) -> None:
    mappings = spec.mappings()
    wanted = [(f"fields.{name}.from", m.source) for name, m in mappings.items() if m.source]
    wanted += [(f"match_on.{i}.from", k.source) for i, k in enumerate(spec.match_on)]
    for where, column in wanted:
        if column not in available:
            raise ConfigError(f"{spec.origin}: {where}: column {column!r} is not in "
                              f"gold/{spec.model} (columns: {', '.join(available)})")
    if PERSON not in available:
        raise ConfigError(f"{spec.origin}: model: gold/{spec.model} has no {PERSON} column: "
                          "a sync maps destination records to persons")


def _as_string(column: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    if dtype == pl.Boolean:
        return pl.when(column).then(pl.lit("true")).when(~column).then(pl.lit("false"))
    if isinstance(dtype, pl.Datetime):
        return column.dt.to_string("%Y-%m-%dT%H:%M:%S%.6f%z")
    return column.cast(pl.String)


def _as_bool(column: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    if dtype == pl.Boolean:
        return column
    text = column.cast(pl.String).str.strip_chars().str.to_lowercase()
    return (pl.when(text.is_in(["true", "t", "1", "yes", "y"])).then(True)
            .when(text.is_in(["false", "f", "0", "no", "n"])).then(False))


def load_desired(lake: Path, spec: SyncSpec, config: C360Config,
                 now: dt.datetime | None = None) -> ModelRows:
    now = now or dt.datetime.now(dt.UTC)
    path, version = pinned(lake, spec.model)
    table = delta.read_table(path, version=version)
    for relation, columns in spec.join.items():
        other_path, other_version = pinned(lake, relation)
        other = delta.read_table(other_path, version=other_version)
        missing = [c for c in [PERSON, *columns] if c not in other.columns]
        if missing:
            raise ConfigError(f"{spec.origin}: join.{relation}: no column(s) "
                              f"{', '.join(missing)} in gold/{relation}")
        clash = [c for c in columns if c in table.columns]
        if clash:
            raise ConfigError(f"{spec.origin}: join.{relation}: gold/{spec.model} already has "
                              f"{', '.join(clash)}")
        table = table.join(other.select(PERSON, *columns).unique(PERSON, keep="none"),
                           on=PERSON, how="left")
    nested = [c for c, t in table.schema.items() if t.is_nested()
              and c in spec.model_columns()]
    if nested:
        raise ConfigError(f"{spec.origin}: fields: column(s) {', '.join(nested)} of "
                          f"gold/{spec.model} are nested (a map or list): send them as JSON "
                          f"text through `columns` (`{nested[0]}_json: \"to_json({nested[0]})\"`)")
    _check_columns(spec, [*table.columns, *spec.columns])
    mappings = spec.mappings()
    con = duckdb.connect()
    try:
        con.register("model", table.to_arrow())
        for name, expr in spec.columns.items():
            try:
                con.sql(f"select ({expr}) from model limit 0")
            except duckdb.Error as exc:
                raise ConfigError(f"{spec.origin}: columns.{name}: {expr!r} fails: "
                                  f"{str(exc).splitlines()[0]}") from None
        extra = "".join(f", ({expr}) as {_quote(name)}" for name, expr in spec.columns.items())
        con.sql(f"create temp view base as select *{extra} from model")
        guards = {"when": spec.when or "true",
                  **{f"fields.{n}.when": m.when for n, m in mappings.items() if m.when}}
        parts = {**{f"columns.{n}": e for n, e in spec.columns.items()}, **guards}
        if spec.filter:
            parts["filter"] = spec.filter
        where = f"where ({spec.filter})" if spec.filter else ""
        flags = ", ".join(f"coalesce(({expr}), false) as {_quote('_g:' + key)}"
                          for key, expr in guards.items())
        rows = _sql(con, spec, f"select *, {flags} from base {where}", parts)
    finally:
        con.close()
    # DuckDB hands time zones back as it names them (`Etc/UTC`): one zone for all.
    rows = rows.with_columns(pl.col(c).dt.convert_time_zone("UTC")
                             for c, t in rows.schema.items()
                             if isinstance(t, pl.Datetime) and t.time_zone)
    skipped_filter = table.height - rows.height
    passed = rows.filter(pl.col("_g:when"))
    skipped_guard = rows.height - passed.height
    rows = passed
    skipped_consent = 0
    if spec.consent:
        purposes = config.privacy.consent
        if spec.consent not in purposes:
            raise ConfigError(f"{spec.origin}: consent: {spec.consent!r} is not a purpose of "
                              f"c360.yaml privacy.consent ({', '.join(purposes) or 'none'})")
        cpath, cversion = pinned(lake, CONSENT)
        allowed = (delta.read_table(cpath, version=cversion)
                   .filter((pl.col("purpose") == spec.consent) & pl.col("allowed")
                           & (pl.col("expires_at").is_null() | (pl.col("expires_at") > now)))
                   .select(PERSON).unique())
        kept = rows.join(allowed, on=PERSON, how="semi")
        skipped_consent = rows.height - kept.height
        rows = kept

    keys = [pl.when(pl.col(k.source).is_not_null()).then(pl.lit(k.field)) for k in spec.match_on]
    values = [_as_string(pl.col(k.source), rows.schema[k.source]) for k in spec.match_on]
    ambiguous = pl.any_horizontal(
        [pl.lit(False)] + [pl.col(k.source).cast(pl.String).str.contains(k.separator, literal=True)
                           for k in spec.match_on if k.separator]).fill_null(False)
    stamps = [pl.when(pl.col(k.source).is_not_null()).then(
        pl.col(f"{k.source}_updated_at") if f"{k.source}_updated_at" in rows.columns
        else pl.lit(None, pl.Datetime("us", "UTC"))) for k in spec.match_on]
    select: list[pl.Expr] = [pl.col(PERSON).alias("_person"),
                             pl.coalesce(keys).alias("_key_field"),
                             pl.coalesce(values).alias("_key"),
                             pl.coalesce(stamps).cast(pl.Datetime("us", "UTC")).alias("_key_ft"),
                             ambiguous.alias("_ambiguous")]
    for name, m in mappings.items():
        guard = pl.col(f"_g:fields.{name}.when") if m.when else pl.lit(True)
        if m.source is None:
            value = pl.lit(m.value)
        elif m.invert:
            value = ~_as_bool(pl.col(m.source), rows.schema[m.source])
        else:
            value = pl.col(m.source)
        select.append(value.alias(name))
        select.append(guard.alias(f"_ok:{name}"))
        if spec.echo is not None:  # what an echo is checked against (else not kept)
            stamp = f"{m.source}_updated_at" if m.source else None
            select.append((pl.col(stamp) if stamp in rows.columns else pl.lit(None))
                          .cast(pl.Datetime("us", "UTC")).alias(f"_ft:{name}"))
    shaped = rows.select(select)
    no_key = shaped["_key"].is_null()
    shared = (shaped.filter(~no_key).group_by("_key_field", "_key")
              .agg(pl.col("_person").n_unique().alias("_n")).filter(pl.col("_n") > 1))
    shaped = shaped.join(shared, on=["_key_field", "_key"], how="left").with_columns(
        (pl.len().over("_person") > 1).alias("_twice"))
    reason = (pl.when(pl.col("_twice")).then(pl.lit("duplicate_person"))
              .when(pl.col("_key").is_null()).then(pl.lit("null_match_key"))
              .when(pl.col("_ambiguous")).then(pl.lit("ambiguous_match_key"))
              .when(pl.col("_n").is_not_null()).then(pl.lit("duplicate_match_key")))
    shaped = shaped.with_columns(reason.alias("_reason")).drop("_n", "_ambiguous", "_twice")
    rejected = shaped.filter(pl.col("_reason").is_not_null()).select(
        "_person", "_key_field", "_key", pl.col("_reason").alias("reason"))
    desired = shaped.filter(pl.col("_reason").is_null()).drop("_reason")
    return ModelRows(desired=desired, rejected=rejected, gold_version=int(version),
                     model_rows=table.height, skipped_filter=skipped_filter,
                     skipped_guard=skipped_guard, skipped_consent=skipped_consent)
