"""Starting the API: keys, the address check, logging, uvicorn."""

from __future__ import annotations

import ipaddress
import logging
import os
import sys
from pathlib import Path

from c360_assets.bronze.contract import SourceSpec
from c360_assets.lib.config import ServingConfig
from c360_assets.serving.api import Keys, create_app
from c360_assets.serving.store import read_meta, store_path


class ServeError(RuntimeError):
    """The server cannot start as asked (a keys file missing, no keys off loopback)."""


def load_keys(config: ServingConfig, environ: dict[str, str] | None = None) -> Keys:
    """Keys from `config.api_keys_env` (comma-separated) and `config.api_keys_file`."""
    environ = os.environ if environ is None else environ
    keys = [k.strip() for k in environ.get(config.api_keys_env, "").split(",") if k.strip()]
    if config.api_keys_file:
        path = Path(config.api_keys_file)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ServeError(f"serving.api_keys_file {path}: {exc.strerror}") from None
        keys += [s for line in lines if (s := line.split("#", 1)[0].strip())]
    short = [k for k in keys if len(k) < 16]
    if short:
        raise ServeError(f"{len(short)} API key(s) shorter than 16 characters: use long "
                         "random keys (e.g. python -c 'import secrets; "
                         "print(secrets.token_urlsafe(32))')")
    return Keys(keys)


def loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    for name in ("c360.serve", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False


def serve(lake: Path, config: ServingConfig, sources: tuple[SourceSpec, ...], *, host: str | None = None,
          port: int | None = None, allow_unauthenticated: bool = False,
          log_level: str = "INFO") -> int:
    import uvicorn

    host = host or config.host
    port = port or config.port
    keys = load_keys(config)
    if not keys.enabled and not loopback(host) and not allow_unauthenticated:
        raise ServeError(f"--host {host} is not a loopback address and no API key is "
                         f"configured (set {config.api_keys_env} or serving.api_keys_file; "
                         "or pass --allow-unauthenticated)")
    configure_logging(log_level)
    meta = read_meta(store_path(lake))
    what = (f"store {meta['version']} ({int(meta['persons']):,} profiles)" if meta
            else "no store yet (c360 materialize builds it; the API answers 503 until then)")
    print(f"c360 serve: {lake} - {what}; http://{host}:{port}/ (explorer), "
          f"http://{host}:{port}/openapi.json; API keys "
          f"{'required' if keys.enabled else 'off'}", file=sys.stderr, flush=True)
    uvicorn.run(create_app(Path(lake), keys, sources), host=host, port=port, access_log=False,
                log_config=None, log_level=log_level.lower(), server_header=False,
                proxy_headers=False)
    return 0
