"""The profile API under test: `c360 serve` as a real process on a loopback port, and
Salesforce contact changes landed the way Fivetran lands them."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

from tests.helpers import land

CONTACT_COLUMNS = ["id", "account_id", "first_name", "last_name", "email", "phone",
                   "mobile_phone", "mailing_street", "mailing_city", "mailing_postal_code",
                   "mailing_country", "mailing_country_code", "birthdate",
                   "has_opted_out_of_email", "is_deleted", "master_record_id", "created_date",
                   "last_modified_date", "system_modstamp", "_fivetran_synced"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`c360 serve --lake LAKE` on a free loopback port; its stderr goes to `log`."""

    def __init__(self, lake: Path, log: Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.log = log
        self.url = f"http://127.0.0.1:{self.port}"
        exe = Path(sys.executable).parent / "c360"
        environ = {k: v for k, v in os.environ.items() if k != "C360_API_KEYS"}
        self.out = log.open("w")
        self.proc = subprocess.Popen([str(exe), "serve", "--lake", str(lake), "--port",
                                      str(self.port)], env={**environ, **(env or {})},
                                     stdout=self.out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                if self.get("/healthz")[0] in (200, 503):
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("c360 serve did not start:\n" + log.read_text()[-3000:])
            time.sleep(0.2)

    def get(self, path: str, headers: dict[str, str] | None = None
            ) -> tuple[int, dict[str, str], bytes]:
        con = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            con.request("GET", path, headers=headers or {})
            r = con.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            con.close()

    def json(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict]:
        status, _, body = self.get(path, headers)
        return status, json.loads(body)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.out.close()


def latest_contacts(lake: Path) -> pl.DataFrame:
    """Each Salesforce contact as bronze last landed it."""
    return (pl.read_delta(str(lake / "bronze" / "salesforce_contact"))
            .sort("_landing_date", "_source_file", "_source_line")
            .unique("id", keep="last", maintain_order=True).select(CONTACT_COLUMNS))


def land_contacts(landing: Path, day: dt.date, name: str, rows: pl.DataFrame,
                  when: dt.datetime) -> None:
    """Land changed contacts (`rows`, bronze's columns), stamped modified at `when`."""
    stamp = pl.lit(when).dt.convert_time_zone("UTC")
    out = rows.with_columns(stamp.alias("last_modified_date"), stamp.alias("system_modstamp"),
                            stamp.alias("_fivetran_synced"))
    land(landing, "salesforce", "contact", day.isoformat(), name,
         out.select(CONTACT_COLUMNS).write_csv(datetime_format="%Y-%m-%dT%H:%M:%S%.3f+0000"))
