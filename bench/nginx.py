"""A fast receiver for delivery benchmarks: nginx answering 200 to every POST.

nginx (Debian's nginx-light) is far faster than anything the relay can send,
so the receiver is never what is measured.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

from bench.common import free_port, need, wait_http, workdir

CONFIG = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 200 "ok"; }}
    }}
}}
"""


@contextlib.contextmanager
def nginx() -> Iterator[str]:
    """Run nginx on a free port; yields its base URL."""
    binary = "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else need("nginx", "nginx-light")
    folder = workdir()
    port = free_port()
    conf = Path(folder) / "nginx.conf"
    conf.write_text(CONFIG.format(dir=folder, port=port))
    proc = subprocess.Popen([binary, "-c", str(conf), "-p", str(folder)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/", proc=proc)  # type: ignore[arg-type]
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
