#!/usr/bin/env python3
"""Render deploy/nginx.conf.template into PREFIX/nginx.conf (and copy proxy_headers.conf beside it).

    python3 deploy/render_nginx.py --prefix /etc/onekey120/nginx --server-name 120.example.cn \
        --cert /etc/ssl/onekey120/fullchain.pem --key /etc/ssl/onekey120/privkey.pem \
        --static-root /srv/onekey120/static --workers 8001,8002 --ws-workers 8003,8004

``--workers`` serve HTTP; ``--ws-workers`` serve the websockets (/ws/). Without ``--ws-workers``
every worker serves both.

Then: nginx -p PREFIX -c PREFIX/nginx.conf -t   (and run it the same way, or point Debian's
nginx.service at it). Standard library only; tests/test_deploy_nginx.py renders with this too.
"""

from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent


def render(
    *,
    prefix: Path,
    server_name: str,
    cert: Path,
    key: Path,
    static_root: Path,
    workers: list[int],
    ws_workers: list[int] | None = None,
    listen_addr: str = "0.0.0.0",
    https_port: int = 443,
    http_port: int = 80,
    user: str = "www-data",
    mime_types: Path = Path("/etc/nginx/mime.types"),
) -> Path:
    """Write PREFIX/nginx.conf and PREFIX/proxy_headers.conf, make the temp dirs; return the conf path."""
    if not workers:
        raise ValueError("at least one worker port is needed")
    if ws_workers is not None and not ws_workers:
        raise ValueError("ws_workers, when given, needs at least one port")

    def upstreams(ports: list[int]) -> str:
        return "\n".join(f"        server 127.0.0.1:{port} max_fails=1 fail_timeout=5s;" for port in ports)

    values = {
        "PREFIX": str(prefix),
        "USER": user,
        "MIME_TYPES": str(mime_types),
        "SERVER_NAME": server_name,
        "LISTEN_ADDR": listen_addr,
        "HTTPS_PORT": str(https_port),
        "HTTP_PORT": str(http_port),
        "TLS_CERT": str(cert),
        "TLS_KEY": str(key),
        "STATIC_ROOT": str(static_root).rstrip("/"),
        "UPSTREAMS": upstreams(workers),
        "WS_UPSTREAMS": upstreams(ws_workers or workers),
    }
    text = (HERE / "nginx.conf.template").read_text()
    text = re.sub(r"@@([A-Z_]+)@@", lambda m: values[m.group(1)], text)
    prefix.mkdir(parents=True, exist_ok=True)
    (prefix / "tmp").mkdir(exist_ok=True)
    shutil.copyfile(HERE / "proxy_headers.conf", prefix / "proxy_headers.conf")
    conf = prefix / "nginx.conf"
    conf.write_text(text)
    return conf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", type=Path, required=True)
    parser.add_argument("--server-name", required=True)
    parser.add_argument("--cert", type=Path, required=True)
    parser.add_argument("--key", type=Path, required=True)
    parser.add_argument("--static-root", type=Path, required=True)
    parser.add_argument("--workers", required=True, help="comma-separated daphne ports on 127.0.0.1 serving HTTP")
    parser.add_argument(
        "--ws-workers", default="", help="comma-separated daphne ports serving websockets (default: the --workers)"
    )
    parser.add_argument("--listen-addr", default="0.0.0.0")
    parser.add_argument("--https-port", type=int, default=443)
    parser.add_argument("--http-port", type=int, default=80)
    parser.add_argument("--user", default="www-data")
    parser.add_argument("--mime-types", type=Path, default=Path("/etc/nginx/mime.types"))
    args = parser.parse_args()
    conf = render(
        prefix=args.prefix.resolve(),
        server_name=args.server_name,
        cert=args.cert.resolve(),
        key=args.key.resolve(),
        static_root=args.static_root.resolve(),
        workers=[int(port) for port in args.workers.split(",") if port.strip()],
        ws_workers=[int(port) for port in args.ws_workers.split(",") if port.strip()] or None,
        listen_addr=args.listen_addr,
        https_port=args.https_port,
        http_port=args.http_port,
        user=args.user,
        mime_types=args.mime_types,
    )
    print(conf)


if __name__ == "__main__":
    main()
