"""The `c360` command: generate a world, materialise the lake, run the demo."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

from c360_assets.lib import config as cfg
from c360_assets.lib import layout
from c360_assets.lib.terminal import safe

PROFILE_NAMES = ("default", "changes")  # c360_assets.generator.world.PROFILES (lazy import)

DEMO_PERSONS = 2_000
DEMO_DAYS = 14
DEMO_SEED = 42


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def cmd_generate(args: argparse.Namespace) -> int:
    from c360_assets.generator import DEFAULT_START, generate

    out = Path(args.out or cfg.landing_root())
    generate(args.persons, args.days, args.seed, out, start=args.start or DEFAULT_START,
             fmt=args.format, profile=args.profile)
    print(f"landing files under {out.absolute()}, truth under {out.absolute() / '_truth'}")
    return 0


def _print_summary(summary) -> None:  # noqa: ANN001 - plan.RunSummary
    if not summary.runs and not summary.tables and not summary.problems:
        print("nothing new: no run launched")
        return
    print()
    print(f"{'table':<34}{'written':>10}{'quarantined':>13}{'table rows':>12}  checks")
    for name in sorted(summary.tables):
        t = summary.tables[name]
        checks = ", ".join(f"{c}={t.check_status(c)}" for c in sorted(t.checks))
        print(f"{name:<34}{t.rows_written:>10,}{t.rows_quarantined:>13,}{t.table_rows:>12,}  {checks}")
    failing = [(n, c, t.check_status(c)) for n, t in sorted(summary.tables.items())
               for c in sorted(t.checks) if not t.checks[c]]
    if failing:
        print(f"\n{len(failing)} check(s) did not pass (WARN: a warning, the run goes on; "
              f"FAIL: an error). Why: the check's latest evaluation in the UI (asset -> Checks: "
              f"counts, examples, the query to reproduce):")
        for name, check, status in failing[:20]:
            note = summary.tables[name].notes.get(check)
            print(safe(f"  - {status} {name}: {check}" + (f" ({note})" if note else "")))
    if summary.warnings:
        print(f"\n{len(summary.warnings)} file problem(s) (their rows are in <lake>/quarantine):")
        for w in summary.warnings[:20]:
            print(safe(f"  - {w}"))
    if summary.problems:
        print(f"\n{len(summary.problems)} error(s):")
        for p in summary.problems:
            print(safe(f"  - {p}"))
    for what, run_id, ok in summary.runs:
        took = f" ({summary.seconds[run_id]:.1f}s)" if run_id in summary.seconds else ""
        print(f"run {run_id[:8]} {what}: {'SUCCESS' if ok else 'FAILURE'}{took}")


EXIT_LOCKED = 3  # another process is writing the lake


def cmd_materialize(args: argparse.Namespace) -> int:
    from c360_assets.lib.lock import LakeLocked
    from c360_assets.plan import SelectionError, materialize, parse_partitions

    landing = Path(args.landing or cfg.landing_root())
    lake = Path(args.lake or cfg.lake_root())
    if not landing.is_dir():
        print(f"error: landing root {landing} does not exist (set --landing or C360_LANDING)",
              file=sys.stderr)
        return 2
    try:
        window = parse_partitions(args.partitions) if args.partitions else None
        t0 = time.perf_counter()
        summary = materialize(landing, lake, select=args.select, partitions=window,
                              log_level=args.log_level, force=args.force,
                              wait_for_lock_s=args.wait_for_lock)
    except LakeLocked as exc:
        print(safe(f"error: {exc}"), file=sys.stderr)
        return EXIT_LOCKED
    except (SelectionError, ValueError, cfg.ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _print_summary(summary)
    print(f"lake: {lake.absolute()} ({time.perf_counter() - t0:.1f}s)")
    return 0 if summary.ok else 1


def _subject(args: argparse.Namespace) -> tuple[str, str] | None:
    named = [(k, getattr(args, k)) for k in ("email", "phone", "person", "record")
             if getattr(args, k, None)]
    return named[0] if len(named) == 1 else None


def cmd_erase(args: argparse.Namespace) -> int:
    import uuid

    from c360_assets.lib.lock import LakeLocked
    from c360_assets.plan import materialize
    from c360_assets.privacy import inbox
    from c360_assets.privacy.erase import render_receipt
    from c360_assets.privacy.scope import ScopeError, normalised

    landing = Path(args.landing or cfg.landing_root())
    lake = Path(args.lake or cfg.lake_root())
    subject = _subject(args)
    if subject is None:
        print("error: name exactly one of --email, --phone, --person, --record",
              file=sys.stderr)
        return 2
    if not layout.silver_table(lake, "identity").exists():
        print(f"error: no lake at {lake} (set --lake or C360_LAKE)", file=sys.stderr)
        return 2
    request_id = args.request_id or f"erasure-{uuid.uuid4().hex[:12]}"
    try:
        normalised(*subject)
        path = inbox.submit(landing, subject[0], subject[1], request_id)
    except (ScopeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"erasure request {request_id} queued ({path.relative_to(landing)}); running the "
          "pipeline")
    t0 = time.perf_counter()
    try:
        summary = materialize(landing, lake, log_level=args.log_level,
                              wait_for_lock_s=args.wait_for_lock)
    except LakeLocked as exc:
        print(safe(f"error: {exc} (the request stays queued: the next run processes it)"),
              file=sys.stderr)
        return EXIT_LOCKED
    except cfg.ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _print_summary(summary)
    for receipt in summary.receipts:
        print("\nreceipt:")
        print(render_receipt(receipt))
    proven = any(request_id in r["request_ids"] and r["hits"] == 0 for r in summary.receipts)
    print(f"erasure {request_id}: " + ("PROVEN: zero occurrences left" if proven else
                                       "NOT proven (see above); the request stays queued")
          + f" ({time.perf_counter() - t0:.1f}s)")
    return 0 if summary.ok and proven else 1


def cmd_unsuppress(args: argparse.Namespace) -> int:
    from c360_assets.lib.lock import LakeLocked, lake_lock
    from c360_assets.privacy import ledger
    from c360_assets.privacy.scope import ScopeError, normalised

    lake = Path(args.lake or cfg.lake_root())
    subject = _subject(args)
    if (subject is None) == (args.request_id is None):
        print("error: name one of --email, --phone, --record, or --request-id",
              file=sys.stderr)
        return 2
    try:
        with lake_lock(lake, "c360 unsuppress", wait_s=args.wait_for_lock):
            if args.request_id:
                rows = ledger.suppression(lake)
                fps = set(rows.filter(rows.get_column("request_id").str.split(",")
                                      .list.contains(args.request_id)).get_column("fingerprint"))
            else:
                kind, value = subject  # type: ignore[misc]
                value = normalised(kind, value)
                if kind == "record" and value.count(":") < 2:
                    value = f"customer:{value}"
                fps = {ledger.fingerprint(ledger.privacy_key(lake), kind, value)}
            removed = ledger.remove_suppressed(lake, fps)
    except LakeLocked as exc:
        print(safe(f"error: {exc}"), file=sys.stderr)
        return EXIT_LOCKED
    except ScopeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{removed} fingerprint(s) removed from the suppression list: the next ingest "
          "keeps matching rows (re-land them, or `c360 materialize --full`, to bring "
          "them back)")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    landing, lake = cfg.landing_root(), cfg.lake_root()
    start = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=args.days - 1)
    # Through the parser, so the steps get every option of `generate` and `materialize`
    # with its default (a hand-built Namespace missed one that was added later).
    parser = build_parser()
    gen = parser.parse_args(["generate", "--persons", str(args.persons), "--days",
                             str(args.days), "--seed", str(args.seed), "--out", str(landing),
                             "--start", start.isoformat()])
    if cmd_generate(gen):
        return 1
    mat = parser.parse_args(["materialize", "--landing", str(landing), "--lake", str(lake),
                             "--log-level", args.log_level])
    code = cmd_materialize(mat)
    from c360_assets.gold.profile import example_email
    from c360_assets.runner import dagster_home

    email = example_email(lake)
    if email:
        print("\nA golden record, field by field (winner, source, field time, losers):")
        print(f"  c360 profile {email}")
        print("\nThe profile API and the explorer (http://127.0.0.1:8360/):")
        print(f"  C360_LAKE={lake} c360 serve")
    home = dagster_home(lake)
    print("\nOpen the UI (asset graph, runs, partitions, check results):")
    print(f"  DAGSTER_HOME={home} C360_LANDING={landing} C360_LAKE={lake} \\\n"
          f"    dagster dev -w workspace.yaml")
    return code


def cmd_explain(args: argparse.Namespace) -> int:
    from c360_assets.silver.explain import ExplainError, explain_pair, explain_person

    lake = Path(args.lake or cfg.lake_root())
    try:
        if len(args.ids) == 1:
            print(safe(explain_person(lake, args.ids[0])))
        elif len(args.ids) == 2:
            print(safe(explain_pair(lake, *args.ids)))
        else:
            print("error: give one PERSON_ID or two records", file=sys.stderr)
            return 2
    except (ExplainError, cfg.ConfigError) as exc:
        print(safe(f"error: {exc}"), file=sys.stderr)
        return 2
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    from c360_assets.gold.profile import ProfileError, show

    lake = Path(args.lake or cfg.lake_root())
    try:
        print(safe(show(lake, args.key)))
    except (ProfileError, cfg.ConfigError) as exc:
        print(safe(f"error: {exc}"), file=sys.stderr)
        return 2
    return 0


def _tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def cmd_vacuum(args: argparse.Namespace) -> int:
    from c360_assets.lib.lock import LakeLocked, lake_lock
    from c360_assets.lib.maintenance import maintain_lake
    from c360_assets.ops.recovery import recover_dead_runs
    from c360_assets.runner import instance_for

    lake = Path(args.lake or cfg.lake_root())
    if not lake.is_dir():
        print(f"error: no lake at {lake} (set --lake or C360_LAKE)", file=sys.stderr)
        return 2
    try:
        retention = (args.retention_hours if args.retention_hours is not None
                     else cfg.load_config().maintenance.retention_hours)
        before = _tree_bytes(lake)
        with lake_lock(lake, "c360 vacuum", wait_s=args.wait_for_lock):
            recover_dead_runs(instance_for(lake), lake)
            report = maintain_lake(lake, retention, dry_run=args.dry_run, progress=print)
    except LakeLocked as exc:
        print(safe(f"error: {exc}"), file=sys.stderr)
        return EXIT_LOCKED
    except cfg.ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    verb = "would remove" if args.dry_run else "removed"
    print(f"\n{len(report.tables)} table(s), retention {retention:g} h: {verb} "
          f"{report.files_vacuumed:,} file(s) ({report.bytes_vacuumed / 2**20:,.1f} MiB), "
          f"compacted {report.files_compacted:,} small file(s), {report.seconds:.1f}s")
    print(f"lake: {lake.absolute()} {before / 2**20:,.1f} MiB -> "
          f"{_tree_bytes(lake) / 2**20:,.1f} MiB")
    return 0


def cmd_gold_vars(args: argparse.Namespace) -> int:
    from c360_assets.bronze import catalogue
    from c360_assets.gold.settings import dbt_vars_json
    from c360_assets.lib.registry import load_registry

    try:
        config = cfg.load_config()
        sources = catalogue(config)
        registry = load_registry(sources=tuple(s.name for s in sources))
        print(dbt_vars_json(config, registry, sources))
    except cfg.ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_identity_train(args: argparse.Namespace) -> int:
    from c360_assets.lib.registry import load_registry
    from c360_assets.silver.identity import Inputs
    from c360_assets.silver.identity_build import read_labels, train_on_lake
    from c360_assets.silver.identity_model import (
        load_model,
        report,
        save_lake_model,
    )

    lake = Path(args.lake or cfg.lake_root())
    try:
        if args.show:
            print(report(load_model(Path(args.out) if args.out else None, lake=lake)))
            return 0
        labels = read_labels(Path(args.labels)) if args.labels else None
        model = train_on_lake(lake, cfg.load_config().identity,
                              Inputs.of(load_registry()), labels,
                              {"lake": str(lake), "labels": args.labels,
                               "trained_at": dt.datetime.now(dt.UTC).isoformat(
                                   timespec="seconds")}, seed=args.seed)
    except (ValueError, FileNotFoundError, cfg.ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.out:
        out = Path(args.out)
        out.write_text(model.to_json() + "\n", encoding="utf-8")
    else:
        out = save_lake_model(lake, model)
    model = load_model(out)
    if args.report:
        print(report(model))
    uses = ("the next identity run uses it and re-resolves every person" if not args.out
            else f"identity runs use it only once it is copied to {layout.identity_model(lake)}")
    print(f"threshold (match weight): {model.threshold:.2f}; model v{model.version} "
          f"written to {out}; {uses}")
    return 0


def _render_plan(report, mode: str) -> str:  # noqa: ANN001
    """The plan of a sync, without values (keys and fields are personal data)."""
    p = report.planned
    new = "creates" if mode != "update" else "new"
    lines = [f"sync {report.sync}: gold version {report.gold_version}, {report.model_rows:,} "
             f"model rows ({report.skipped_filter:,} filtered out, {report.skipped_guard:,} "
             f"failing `when`, {report.skipped_consent:,} without consent)",
             f"  {new:<8} {p.get('create', 0):>9,}"
             + ("  (mode update: updated where the destination has them, never created)"
                if mode == "update" else ""),
             f"  updates  {p.get('update', 0) + p.get('repoint', 0):>9,}"
             + (f"  ({p.get('repoint', 0):,} re-pointed to a merge survivor)"
                if p.get("repoint") else "")]
    changed = {f: n for f, n in report.changed_fields.items() if n}
    if changed:
        lines.append("           changed fields: " + ", ".join(
            f"{f} {n:,}" for f, n in sorted(changed.items(), key=lambda kv: -kv[1])))
    lines += [f"  deletes  {p.get('delete', 0):>9,}",
              f"  flags    {p.get('flag', 0):>9,}  (merged persons' records marked)"]
    if p.get("held_rejected"):
        lines.append(f"  held back: {p['held_rejected']:,} refused by the destination last "
                     "time with the same content (sent again once it changes)")
    if p.get("kept_losers"):
        lines.append(f"  merged persons' records kept as they are: {p['kept_losers']:,}")
    if p.get("left_model"):
        lines.append(f"  persons no longer in the model, left in the destination: "
                     f"{p['left_model']:,}")
    for reason, n in sorted(report.rejected_model.items()):
        lines.append(f"  rejected {n:>9,}  {reason}")
    if report.plan is not None and report.plan.ops.height:
        sample = report.plan.ops.head(10)
        lines.append("  first operations (person, operation, fields):")
        for row in sample.iter_rows(named=True):
            sent = [c[2:] for c, v in row.items() if c.startswith("s:") and v]
            lines.append(f"    {row['_person']}  {row['_op']:<8} {', '.join(sent) or '-'}")
    if report.message:
        lines.append(f"  {report.message}")
    return "\n".join(lines)


def cmd_sync(args: argparse.Namespace) -> int:
    from c360_assets.activation.destinations import DestinationError
    from c360_assets.activation.engine import SyncAborted, SyncRefused, run_sync
    from c360_assets.activation.spec import get_sync, load_syncs
    from c360_assets.lib.lock import LakeLocked

    lake = Path(args.lake or cfg.lake_root())
    try:
        if args.list or not args.name:
            syncs = load_syncs()
            if not syncs:
                print("no syncs (config/syncs/*.yaml)")
            for name, spec in syncs.items():
                print(f"{name:<28} {spec.mode:<7} {spec.destination.type:<10} "
                      f"{spec.schedule or '-':<14} {'enabled' if spec.enabled else 'disabled'}"
                      f"  {spec.description}")
            return 0
        spec = get_sync(args.name)
        report = run_sync(lake, spec, cfg.load_config(), dry_run=args.dry_run,
                          wait_s=args.wait_for_lock)
    except (cfg.ConfigError, DestinationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except LakeLocked as exc:
        print(safe(f"error: {exc}"), file=sys.stderr)
        return EXIT_LOCKED
    except SyncRefused as exc:
        print(f"refused: {exc} (nothing was sent)", file=sys.stderr)
        return 1
    except SyncAborted as exc:
        print(f"stopped: {exc}", file=sys.stderr)
        return 1
    print(_render_plan(report, spec.mode))
    if args.dry_run:
        print("dry run: nothing sent, nothing recorded")
        return 0
    print(f"sent: {report.acknowledged:,} acknowledged, {report.rejected:,} rejected, "
          f"{report.not_found:,} not found, {report.recovered:,} recovered from a previous "
          f"run; {report.requests:,} requests, {report.rate_limited_s:.1f}s waiting on rate "
          f"limits ({report.seconds:.1f}s)")
    return 0 if report.reject_rate * 100 <= get_sync(args.name).limits.max_reject_pct else 1


def cmd_serve(args: argparse.Namespace) -> int:
    from c360_assets.bronze import catalogue
    from c360_assets.serving.server import ServeError, serve

    try:
        config = cfg.load_config()
        lake = Path(args.lake or cfg.lake_root())
        return serve(lake, config.serving, catalogue(config), host=args.host, port=args.port,
                     allow_unauthenticated=args.allow_unauthenticated,
                     log_level=args.log_level)
    except (ServeError, cfg.ConfigError) as exc:
        print(safe(f"error: {exc}"), file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="c360", description="Customer-360 golden records, right field by field.")
    sub = parser.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="simulate a world and write landing files plus truth")
    g.add_argument("--persons", type=int, required=True)
    g.add_argument("--days", type=int, required=True)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--out", help="landing root to write (default: $C360_LANDING or ./data/landing)")
    g.add_argument("--start", type=_date, help="first landing day (default 2026-01-01)")
    g.add_argument("--format", choices=("csv", "jsonl", "parquet"),
                   help="write every file in this format (default: each source's usual mix)")
    g.add_argument("--profile", choices=tuple(PROFILE_NAMES), default="default",
                   help="the world's habits: default (stable first names, typo'd Salesforce "
                        "duplicates) or changes (real first-name changes, households sharing "
                        "mailbox and landline, records with no e-mail or phone, heavier "
                        "typos, another source mix)")
    g.set_defaults(func=cmd_generate)

    m = sub.add_parser("materialize", help="run the asset graph over landed partitions")
    m.add_argument("--landing", help="landing root (default: $C360_LANDING or ./data/landing)")
    m.add_argument("--lake", help="lake root (default: $C360_LAKE or ./data/lake)")
    m.add_argument("--select", help="sources/assets: 'sap', 'bronze/sap', 'bronze/sap_kna1', "
                                    "'group:bronze', 'tag:source=sap' (comma-separated)")
    m.add_argument("--partitions", help="landing days START...END (default: every landed day)")
    m.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    m.add_argument("--full", "--force", dest="force", action="store_true",
                   help="rebuild: re-ingest every landing day of the range, changed or not, "
                        "and rebuild gold whole (default: only what changed)")
    m.add_argument("--wait-for-lock", type=float, default=0.0, metavar="SECONDS",
                   help="when another process is writing the lake, wait up to this long "
                        "(default: fail at once, exit 3)")
    m.set_defaults(func=cmd_materialize)

    d = sub.add_parser("demo", help="generate a small world and materialise it (local lake)")
    d.add_argument("--persons", type=int, default=DEMO_PERSONS)
    d.add_argument("--days", type=int, default=DEMO_DAYS)
    d.add_argument("--seed", type=int, default=DEMO_SEED)
    d.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    d.set_defaults(func=cmd_demo)

    e = sub.add_parser("explain", help="why two records are (not) one person, or what holds "
                                       "a person together")
    e.add_argument("ids", nargs="+", metavar="ID",
                   help="PERSON_ID, or two records (customer:<source>:<id> or <source>:<id>)")
    e.add_argument("--lake", help="lake root (default: $C360_LAKE or ./data/lake)")
    e.set_defaults(func=cmd_explain)

    p = sub.add_parser("profile", help="the golden record of a person: per field the value, "
                                       "winning source, field time and the losing values")
    p.add_argument("key", metavar="EMAIL|PERSON_ID")
    p.add_argument("--lake", help="lake root (default: $C360_LAKE or ./data/lake)")
    p.set_defaults(func=cmd_profile)

    w = sub.add_parser("vacuum", help="keep the lake lean: compact small files, checkpoint "
                                      "logs, delete files unreferenced for longer than the "
                                      "retention")
    w.add_argument("--lake", help="lake root (default: $C360_LAKE or ./data/lake)")
    w.add_argument("--retention-hours", type=int, default=None,
                   help="keep unreferenced files and log entries this long (default: "
                        "maintenance.retention_hours, 168); 0 keeps no history")
    w.add_argument("--dry-run", action="store_true", help="change nothing; list what a "
                                                          "vacuum would delete")
    w.add_argument("--wait-for-lock", type=float, default=0.0, metavar="SECONDS",
                   help="when another process is writing the lake, wait up to this long")
    w.set_defaults(func=cmd_vacuum)

    x = sub.add_parser("erase", help="erase a customer everywhere in the lake, purge history "
                       "and prove it (prints the receipt)")
    for flag, what in (("--email", "an e-mail address"), ("--phone", "a phone number"),
                       ("--person", "a c360 person id"),
                       ("--record", "a source record, SOURCE:ID (e.g. salesforce:003...)")):
        x.add_argument(flag, help=f"erase the customer holding {what}")
    x.add_argument("--request-id", help="your reference (a ticket id); random by default")
    x.add_argument("--landing", help="landing root (default: $C360_LANDING or ./data/landing)")
    x.add_argument("--lake", help="lake root (default: $C360_LAKE or ./data/lake)")
    x.add_argument("--log-level", default="WARNING",
                   choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    x.add_argument("--wait-for-lock", type=float, default=0.0, metavar="SECONDS")
    x.set_defaults(func=cmd_erase)

    u = sub.add_parser("unsuppress", help="let an erased customer's rows back in (they "
                       "returned and consented again)")
    for flag in ("--email", "--phone", "--record"):
        u.add_argument(flag)
    u.add_argument("--request-id", help="every fingerprint that erasure request added")
    u.add_argument("--lake", help="lake root (default: $C360_LAKE or ./data/lake)")
    u.add_argument("--wait-for-lock", type=float, default=0.0, metavar="SECONDS")
    u.set_defaults(func=cmd_unsuppress, person=None)

    v = sub.add_parser("gold-vars", help="print the dbt vars gold needs, from config/ "
                                         "(dbt build --vars \"$(c360 gold-vars)\")")
    v.set_defaults(func=cmd_gold_vars)

    t = sub.add_parser("identity-train", help="estimate the identity model from the lake's "
                                              "own records (no labels needed)")
    t.add_argument("--lake", help="lake root holding silver (default: $C360_LAKE)")
    t.add_argument("--labels",
                   help="optional labels that refine the model: parquet/CSV with source, "
                        "record_id, person_id (e.g. a generated world's "
                        "_truth/records.parquet), or clerical pairs record_a, record_b, same "
                        "(records as source:record_id)")
    t.add_argument("--out", help="write the model here instead of the lake's "
                                 "_identity/model.json (versioned)")
    t.add_argument("--seed", type=int, default=1, help="random-pair sampling seed (default 1)")
    t.add_argument("--report", action="store_true",
                   help="print the learnt weights per comparison level and the threshold")
    t.add_argument("--show", action="store_true",
                   help="print that report for the model in use, without training")
    t.set_defaults(func=cmd_identity_train)

    y = sub.add_parser("sync", help="run a sync of config/syncs (or list them): gold -> a "
                                    "destination, only what changed since it acknowledged")
    y.add_argument("name", nargs="?", help="the sync (a file name of config/syncs)")
    y.add_argument("--dry-run", action="store_true",
                   help="print the plan (creates, updates with the changed fields, deletes, "
                        "rejects) and send nothing")
    y.add_argument("--list", action="store_true", help="list the syncs")
    y.add_argument("--lake", help="lake root (default: $C360_LAKE or ./data/lake)")
    y.add_argument("--wait-for-lock", type=float, default=0.0, metavar="SECONDS",
                   help="wait this long for another run of the same sync")
    y.set_defaults(func=cmd_sync)

    v = sub.add_parser("serve", help="the profile API and the profile explorer over the "
                                     "serving store (http://127.0.0.1:8360/)")
    v.add_argument("--lake", help="lake root (default: $C360_LAKE or ./data/lake)")
    v.add_argument("--host", help="address to bind (default: config serving.host, 127.0.0.1)")
    v.add_argument("--port", type=int, help="port (default: config serving.port, 8360)")
    v.add_argument("--allow-unauthenticated", action="store_true",
                   help="serve a non-loopback address without API keys")
    v.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    v.set_defaults(func=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
