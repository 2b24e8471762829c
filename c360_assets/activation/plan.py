"""The diff: what the destination must be told so that it holds the model, given what it
acknowledged (never what was merely attempted).

Per person (a destination record is mapped to one c360 person):
* in the model, not in the state: `create` (`insert`, `upsert`, `mirror`; in `update`
  mode an update-only attempt that may find nothing);
* in both: `update` with the fields whose value differs from the acknowledged one (and
  the match key when it changed), under each field's null policy: `skip` never sends a
  null, `clear` does, `set_if_empty` writes only where the acknowledged value is null;
* in the state, not in the model: a person merged into another (silver/identity_events)
  is handled per `merges.loser` (repoint the record to the survivor when the survivor
  has none, else flag it, delete it, or keep it); anyone else is deleted in `mirror`
  mode and left alone otherwise.
A create whose match key is still the acknowledged key of another person's record is
rejected (a split never leaves two persons on one destination record); updates are sent
before creates, so a key that moves between persons moves first. A row the destination
refused last time with the same content (`held`) is held back until it changes.

Safety limits (`limits`) are checked on the plan: an empty model, too many deletes or
too many changes refuse the whole run before anything is sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from c360_assets.activation.model import ModelRows, _as_string
from c360_assets.activation.spec import SyncSpec
from c360_assets.activation.state import value_column

OPS_ORDER = ("delete", "flag", "update", "repoint", "create")


@dataclass
class Plan:
    ops: pl.DataFrame  # one row per operation: _op, _person, _prev_person, _key_field,
    #                    _key, _old_key, _dest_id, _merged_into, fields, s:<f>, _before:<f>
    rejected: pl.DataFrame  # _person, _key_field, _key, reason
    counts: dict[str, int] = field(default_factory=dict)
    refused: str | None = None

    def count(self, op: str) -> int:
        return int((self.ops["_op"] == op).sum()) if self.ops.height else 0


def _changed(desired: pl.Expr, acked: pl.Expr, policy: str, ok: pl.Expr) -> pl.Expr:
    """Whether a field is sent in an update."""
    if policy == "clear":
        differs = desired.ne_missing(acked)
    elif policy == "set_if_empty":
        differs = desired.is_not_null() & acked.is_null()
    else:
        differs = desired.is_not_null() & desired.ne_missing(acked)
    return (ok & differs).fill_null(False)


def digest(fields: list[str], schema: pl.Schema) -> pl.Expr:
    """A row's content (key and every field, as text) in one string hash."""
    parts = [pl.col("_key_field"), pl.col("_key"),
             *[_as_string(pl.col(f), schema[f]).fill_null("\x00") for f in fields]]
    return pl.concat_str(parts, separator="\x1f").hash(seed=360).cast(pl.String)


def build_plan(spec: SyncSpec, rows: ModelRows, state: pl.DataFrame, merged: pl.DataFrame,
               held: pl.DataFrame | None = None) -> Plan:
    """`held`: persons whose content the destination refused last time (`_person`,
    `_digest`): not sent again until their content changes."""
    mappings = spec.mappings()
    fields = list(mappings)
    desired = rows.desired
    stamps = [f"_ft:{f}" for f in fields if f"_ft:{f}" in desired.columns]
    strings = {f: _as_string(pl.col(f), desired.schema[f]) for f in fields}
    live = state.filter(pl.col("_merged_into").is_null())
    values = [value_column(f) for f in fields]

    def acknowledged(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.select("_person", pl.col("_key_field").alias("_old_key_field"),
                            pl.col("_key").alias("_old_key"), "_dest_id", "_acked_at", *values)

    joined = desired.join(acknowledged(live), on="_person", how="left").with_columns(
        pl.col("_acked_at").is_not_null().alias("_known"),
        pl.lit(None, pl.String).alias("_prev_person"))

    # Repoint: a survivor without a record of its own takes over one loser's record.
    gone = live.join(desired.select("_person"), on="_person", how="anti")
    losers = gone.join(merged, on="_person", how="inner")
    repoint = pl.DataFrame(schema={"_person": pl.String(), "_prev_person": pl.String()})
    if spec.merges.loser == "repoint" and losers.height:
        homeless = joined.filter(~pl.col("_known")).select("_person")
        repoint = (losers.join(homeless, left_on="_survivor", right_on="_person", how="inner")
                   .sort("_acked_at", "_person").unique("_survivor", keep="first",
                                                        maintain_order=True)
                   .select(pl.col("_survivor").alias("_person"),
                           pl.col("_person").alias("_prev_person")))
    if repoint.height:
        carried = acknowledged(live).rename({"_person": "_prev_person"}).join(
            repoint, on="_prev_person", how="inner")
        taken = (desired.join(carried, on="_person", how="inner")
                 .with_columns(pl.lit(True).alias("_known")))
        joined = pl.concat([joined.join(repoint.select("_person"), on="_person", how="anti"),
                            taken.select(joined.columns)], how="vertical_relaxed")

    sends = []
    for f, m in mappings.items():
        acked = pl.col(value_column(f))
        ok = pl.col(f"_ok:{f}")
        create_send = (ok & pl.col(f).is_not_null()).fill_null(False)
        update_send = _changed(strings[f], acked, m.null_policy, ok)
        sends.append(pl.when(pl.col("_known")).then(update_send).otherwise(create_send)
                     .alias(f"s:{f}"))
        sends.append(acked.alias(f"_before:{f}"))
    key_moved = (pl.col("_known") & (pl.col("_key").ne_missing(pl.col("_old_key"))
                                     | pl.col("_key_field").ne_missing(pl.col("_old_key_field"))))
    joined = joined.with_columns(*sends, key_moved.fill_null(False).alias("_key_moved"))
    any_sent = pl.any_horizontal([pl.col(f"s:{f}") for f in fields] + [pl.col("_key_moved")])
    op = (pl.when(~pl.col("_known")).then(pl.lit("create"))
          .when(pl.col("_prev_person").is_not_null()).then(pl.lit("repoint"))
          .when(any_sent).then(pl.lit("update")))
    joined = joined.with_columns(op.alias("_op"),
                                 pl.lit(None, pl.String).alias("_merged_into"))
    if spec.mode == "insert":
        joined = joined.filter(pl.col("_op") == "create")
    active = joined.filter(pl.col("_op").is_not_null())
    active = active.with_columns(digest(fields, active.schema).alias("_digest"))
    held_back = 0
    if held is not None and held.height:
        kept = active.join(held.select("_person", "_digest"), on=["_person", "_digest"],
                           how="anti")
        held_back = active.height - kept.height
        active = kept

    # A create must not land on a record another person holds (a split's second half, or
    # a key that two persons hold in turn): reject it unless that key moves away now.
    rejected = [rows.rejected]
    creates = active.filter(pl.col("_op") == "create")
    if creates.height and live.height:
        moving_away = active.filter(pl.col("_key_moved")).select(
            pl.col("_old_key_field").alias("_key_field"), pl.col("_old_key").alias("_key"))
        holders = (live.select("_person", "_key_field", "_key")
                   .join(moving_away, on=["_key_field", "_key"], how="anti")
                   .rename({"_person": "_holder"}))
        clash = creates.join(holders, on=["_key_field", "_key"], how="inner").filter(
            pl.col("_holder") != pl.col("_person"))
        if clash.height:
            rejected.append(clash.select("_person", "_key_field", "_key",
                                         pl.lit("key_held_by_other_person").alias("reason")))
            active = active.join(clash.select("_person", "_op"), on=["_person", "_op"],
                                 how="anti")

    columns = ["_op", "_person", "_prev_person", "_key_field", "_key", "_old_key_field",
               "_old_key", "_dest_id", "_merged_into", "_digest", "_key_ft", *fields,
               *[f"s:{f}" for f in fields], *[f"_before:{f}" for f in fields],
               *stamps]
    ops = [active.select(columns)]

    # Persons gone from the model.
    leaving = gone.join(repoint.select(pl.col("_prev_person").alias("_person")), on="_person",
                        how="anti").join(merged, on="_person", how="left")
    is_loser = pl.col("_survivor").is_not_null()
    policy = spec.merges.loser
    if policy == "repoint":
        policy = "flag" if spec.merges.flag_field else "keep"
    deletes = leaving.filter(~is_loser) if spec.mode == "mirror" else leaving.head(0)
    if policy == "delete":
        deletes = pl.concat([deletes, leaving.filter(is_loser)])
    flags = leaving.filter(is_loser) if policy == "flag" else leaving.head(0)
    kept_losers = leaving.filter(is_loser).height if policy == "keep" else 0
    for kind, part, merged_into in (("delete", deletes, pl.lit(None, pl.String)),
                                    ("flag", flags, pl.col("_survivor"))):
        if part.height:
            ops.append(part.select(
                pl.lit(kind).alias("_op"), "_person", pl.lit(None, pl.String).alias("_prev_person"),
                "_key_field", "_key", pl.col("_key_field").alias("_old_key_field"),
                pl.col("_key").alias("_old_key"), "_dest_id", merged_into.alias("_merged_into"),
                pl.lit(None, pl.String).alias("_digest"),
                pl.lit(None, pl.Datetime("us", "UTC")).alias("_key_ft"),
                *[pl.lit(None, desired.schema[f]).alias(f) for f in fields],
                *[pl.lit(False).alias(f"s:{f}") for f in fields],
                *[pl.col(value_column(f)).alias(f"_before:{f}") for f in fields],
                *[pl.lit(None, pl.Datetime("us", "UTC")).alias(c) for c in stamps]))
    plan_ops = pl.concat(ops, how="vertical_relaxed") if ops else pl.DataFrame()
    order = {op: i for i, op in enumerate(OPS_ORDER)}
    plan_ops = plan_ops.sort(pl.col("_op").replace_strict(order, return_dtype=pl.Int32),
                             "_key_field", "_person")
    plan = Plan(ops=plan_ops, rejected=pl.concat(rejected, how="vertical_relaxed"))
    plan.counts = {op: plan.count(op) for op in OPS_ORDER}
    plan.counts["kept_losers"] = kept_losers
    plan.counts["held_rejected"] = held_back
    plan.counts["left_model"] = leaving.filter(~is_loser).height if spec.mode != "mirror" else 0
    plan.refused = _refusal(spec, rows, live.height, plan)
    return plan


def _refusal(spec: SyncSpec, rows: ModelRows, held: int, plan: Plan) -> str | None:
    limits = spec.limits
    if limits.refuse_empty and rows.desired.height == 0 and held:
        return (f"the model is empty ({rows.model_rows} rows in gold/{spec.model}, none "
                f"passing filter, guards and consent) while the destination holds {held} "
                "records: refusing (limits.refuse_empty)")
    if not held:
        return None
    deletes = plan.counts["delete"]
    if spec.mode == "mirror" and deletes * 100.0 / held > limits.max_delete_pct:
        return (f"{deletes} of {held} records would be deleted "
                f"({deletes * 100.0 / held:.1f}% > limits.max_delete_pct "
                f"{limits.max_delete_pct:g}%): refusing")
    changes = sum(plan.counts[op] for op in ("update", "repoint", "delete", "flag"))
    if limits.max_change_pct < 100 and changes * 100.0 / held > limits.max_change_pct:
        return (f"{changes} of {held} records would change ({changes * 100.0 / held:.1f}% > "
                f"limits.max_change_pct {limits.max_change_pct:g}%): refusing")
    return None
