"""PostgreSQL: a table keyed on the sync's match key (its primary key).

Each batch is one transaction: rows are COPYed (CSV) into a temporary stage table, then
creates are `INSERT ... ON CONFLICT (key) DO UPDATE` (idempotent: a batch resent after a
lost answer changes nothing more), updates are one `UPDATE ... FROM stage` addressed by
the acknowledged (old) key, writing only the fields flagged as sent per row
(`set_if_empty` fields keep a value the table already has), deletes one `DELETE ... =
ANY`. The table is created when absent (`create_table`), with a column per field, typed
from the model, and the flag column of `merges` if any. The DSN comes from the
environment variable `dsn_env` (`postgresql://user@host:port/db`).
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import Literal

import polars as pl
import psycopg
from psycopg import sql
from pydantic import Field

from c360_assets.activation.destinations.base import (
    NOT_FOUND,
    OK,
    BatchRejected,
    Destination,
    DestinationConfig,
    DestinationError,
    Outcome,
    Transient,
)

NULL = "\\N"


def pg_type(dtype: pl.DataType) -> str:
    if dtype == pl.Boolean:
        return "boolean"
    if isinstance(dtype, pl.Datetime):
        return "timestamptz" if dtype.time_zone else "timestamp"
    if dtype == pl.Date:
        return "date"
    if dtype.is_integer():
        return "bigint"
    if dtype.is_float():
        return "double precision"
    return "text"


class Config(DestinationConfig):
    type: Literal["postgres"]
    dsn_env: str = "C360_SYNC_POSTGRES_DSN"
    schema_name: str = Field("public", alias="schema")
    table: str
    batch_rows: int = Field(50_000, ge=1, le=1_000_000)
    create_table: bool = True


class PostgresDestination(Destination):
    supports_lookup = True

    def __init__(self, spec):  # noqa: ANN001
        super().__init__(spec)
        d = spec.destination
        if len(spec.match_on) != 1:
            raise DestinationError(f"{spec.origin}: match_on: a postgres destination takes "
                                   "exactly one key (its primary key)")
        dsn = os.environ.get(d.dsn_env)
        if not dsn:
            raise DestinationError(f"{spec.origin}: destination.dsn_env: ${d.dsn_env} is not "
                                   "set (postgresql://user@host:port/database)")
        self.dsn = dsn
        self.batch_rows = d.batch_rows
        self.key = spec.match_on[0].field
        self.table = sql.Identifier(d.schema_name, d.table)
        self.conn: psycopg.Connection | None = None
        self.schema: dict[str, pl.DataType] = {}

    def _connect(self) -> psycopg.Connection:
        if self.conn is None or self.conn.closed:
            try:
                self.conn = psycopg.connect(self.dsn, connect_timeout=10, autocommit=False)
            except psycopg.OperationalError as exc:
                raise Transient(f"cannot connect: {exc}", uncertain=False) from exc
        return self.conn

    def prepare(self, schema: dict[str, pl.DataType]) -> None:
        self.schema = schema
        conn = self._connect()
        d = self.spec.destination
        columns = [sql.SQL("{} text primary key").format(sql.Identifier(self.key))]
        columns += [sql.SQL("{} {}").format(sql.Identifier(f), sql.SQL(pg_type(t)))
                    for f, t in schema.items()]
        flag = self.spec.merges.flag_field
        if flag:
            columns.append(sql.SQL("{} text").format(sql.Identifier(flag)))
        with conn.cursor() as cur:
            if d.create_table:
                cur.execute(sql.SQL("create table if not exists {} ({})").format(
                    self.table, sql.SQL(", ").join(columns)))
            cur.execute("select column_name from information_schema.columns "
                        "where table_schema = %s and table_name = %s", (d.schema_name, d.table))
            have = {r[0] for r in cur.fetchall()}
        conn.commit()
        missing = [c for c in [self.key, *schema, *([flag] if flag else [])] if c not in have]
        if missing:
            raise DestinationError(f"{self.spec.origin}: table {d.schema_name}.{d.table} has no "
                                   f"column(s) {', '.join(missing)}")

    def _stage(self, cur: psycopg.Cursor, rows: pl.DataFrame, fields: list[str]) -> None:
        cols = [("_key", "text"), ("_old_key", "text"), ("_merged_into", "text")]
        cols += [(f, pg_type(self.schema[f])) for f in fields]
        cols += [(f"s:{f}", "boolean") for f in fields]
        cur.execute(sql.SQL("create temp table if not exists _c360_stage ({}) on commit drop")
                    .format(sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(n),
                                                                       sql.SQL(t))
                                               for n, t in cols)))
        frame = rows.select([pl.col(n) if n in rows.columns else pl.lit(None).alias(n)
                             for n, _ in cols])
        frame = frame.with_columns([pl.col(c).dt.to_string("%Y-%m-%dT%H:%M:%S%.6f%z")
                                    for c, t in frame.schema.items() if isinstance(t, pl.Datetime)])
        buffer = io.BytesIO()
        frame.write_csv(buffer, include_header=False, null_value=NULL, quote_style="non_numeric")
        with cur.copy(sql.SQL("copy _c360_stage ({}) from stdin with (format csv, null {})")
                      .format(sql.SQL(", ").join(sql.Identifier(n) for n, _ in cols),
                              sql.Literal(NULL))) as copy:
            copy.write(buffer.getvalue())

    def write(self, op: str, rows: pl.DataFrame, fields: list[str], *,
              update_only: bool = False) -> list[Outcome]:
        conn = self._connect()
        key = sql.Identifier(self.key)
        try:
            with conn.cursor() as cur:
                if op == "delete":
                    cur.execute(sql.SQL("delete from {} where {} = any(%s)").format(self.table, key),
                                (rows["_old_key"].to_list(),))
                    conn.commit()
                    return [Outcome(OK, k) for k in rows["_old_key"].to_list()]
                self._stage(cur, rows, fields)
                if op == "flag":
                    flag = sql.Identifier(self.spec.merges.flag_field)
                    cur.execute(sql.SQL("update {t} as t set {f} = s._merged_into from _c360_stage s "
                                        "where t.{k} = s._old_key returning t.{k}")
                                .format(t=self.table, f=flag, k=key))
                    found = {r[0] for r in cur.fetchall()}
                    conn.commit()
                    return [Outcome(OK if k in found else NOT_FOUND, k)
                            for k in rows["_old_key"].to_list()]
                if op in ("update", "repoint") or update_only:
                    sets = [sql.SQL("{k} = s._key").format(k=key)]
                    for f in fields:
                        policy = self.spec.mappings()[f].null_policy
                        keep = (sql.SQL("coalesce(t.{f}, s.{f})") if policy == "set_if_empty"
                                else sql.SQL("s.{f}"))
                        sets.append(sql.SQL("{f} = case when s.{sf} then {new} else t.{f} end")
                                    .format(f=sql.Identifier(f), sf=sql.Identifier(f"s:{f}"),
                                            new=keep.format(f=sql.Identifier(f))))
                    match = "_key" if update_only and op == "create" else "_old_key"
                    cur.execute(sql.SQL("update {t} as t set {sets} from _c360_stage s "
                                        "where t.{k} = s.{m} returning t.{k}")
                                .format(t=self.table, sets=sql.SQL(", ").join(sets), k=key,
                                        m=sql.Identifier(match)))
                    found = {r[0] for r in cur.fetchall()}
                    conn.commit()
                    return [Outcome(OK if k in found else NOT_FOUND, k)
                            for k in rows["_key"].to_list()]
                names = [key, *[sql.Identifier(f) for f in fields]]
                values = [sql.SQL("s._key")] + [
                    sql.SQL("case when s.{sf} then s.{f} end").format(
                        sf=sql.Identifier(f"s:{f}"), f=sql.Identifier(f)) for f in fields]
                # A create meeting an existing row (a resend after a lost answer, a
                # recovered run) fills it in; fields it does not send stay as they are.
                updates = [sql.SQL("{f} = coalesce(excluded.{f}, {t}.{f})").format(
                    f=sql.Identifier(f), t=self.table) for f in fields]
                cur.execute(sql.SQL(
                    "insert into {t} ({names}) select {values} from _c360_stage s "
                    "on conflict ({k}) do update set {updates}").format(
                        t=self.table, names=sql.SQL(", ").join(names),
                        values=sql.SQL(", ").join(values), k=key,
                        updates=sql.SQL(", ").join(updates) if updates
                        else sql.SQL("{k} = excluded.{k}").format(k=key)))
                conn.commit()
                return [Outcome(OK, k) for k in rows["_key"].to_list()]
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            self._drop()
            raise Transient(f"postgres: {exc}", uncertain=True) from exc
        except psycopg.Error as exc:
            conn.rollback()
            raise BatchRejected(f"postgres: {str(exc).splitlines()[0]}") from exc

    def lookup(self, key_field: str, keys: list[str]) -> dict[str, str]:
        conn = self._connect()
        try:
            with conn.cursor() as cur:
                cur.execute(sql.SQL("select {k} from {t} where {k} = any(%s)").format(
                    k=sql.Identifier(self.key), t=self.table), (keys,))
                found = {r[0]: r[0] for r in cur.fetchall()}
            conn.commit()
            return found
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            self._drop()
            raise Transient(f"postgres: {exc}", uncertain=False) from exc

    def _drop(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(psycopg.Error):
                self.conn.close()
        self.conn = None

    def describe(self) -> str:
        d = self.spec.destination
        return f"postgres {d.schema_name}.{d.table}"

    def close(self) -> None:
        self._drop()


def connect(spec, lake: Path) -> PostgresDestination:  # noqa: ANN001
    """The destination of `spec` (the engine's entry point to this module)."""
    return PostgresDestination(spec)
