"""Render a routing table as one nginx configuration (Heroku's router behaviour, runtime.md §7).

Per app: an `upstream` with `random` balancing over its up web dynos (each request may retry
another dyno when a connection is refused), a `server` for its host names on the HTTP and TLS
ports. Every request is logged as one JSON line (escape=json) that `router_log` turns into a
`heroku[router]` line; `$berth_code` carries the H code when the router answered itself."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from berth.platform.router.pages import ERRORS, NO_SUCH_APP
from berth.platform.router.table import AppRoute, RoutingTable

ACCESS_LOG_FIELDS = (
    ("app", "$berth_app"), ("code", "$berth_code"), ("time", "$msec"), ("method", "$request_method"),
    ("path", "$request_uri"), ("host", "$host"), ("request_id", "$berth_request_id"),
    ("fwd", "$proxy_add_x_forwarded_for"), ("upstream", "$upstream_addr"), ("dyno", "$berth_dyno"),
    ("connect", "$upstream_connect_time"),
    ("service", "$upstream_response_time"), ("total", "$request_time"), ("status", "$status"),
    ("bytes", "$body_bytes_sent"), ("scheme", "$scheme"),
)


@dataclass(frozen=True)
class RouterLayout:
    """Where nginx keeps its files and how it listens; all paths under `prefix`."""
    prefix: Path
    listen_host: str
    port: int
    tls_port: int | None
    first_byte_timeout_s: int = 30     # H12
    connect_timeout_s: int = 5         # then the next dyno (H19/H21-like)
    workers: int = 1

    @property
    def access_log(self) -> Path:
        return self.prefix / "logs" / "access.json"

    @property
    def error_log(self) -> Path:
        return self.prefix / "logs" / "error.log"

    @property
    def pid_file(self) -> Path:
        return self.prefix / "nginx.pid"

    @property
    def config_file(self) -> Path:
        return self.prefix / "nginx.conf"

    @property
    def certificate(self) -> Path:
        return self.prefix / "tls" / "router.crt"

    @property
    def key(self) -> Path:
        return self.prefix / "tls" / "router.key"


GENERATION_PATH = "/.berth-router/generation"


def render(table: RoutingTable, layout: RouterLayout, generation: int = 0) -> str:
    """The configuration; `generation` is answered at GENERATION_PATH on unknown hosts, so the
    router can tell when a reload has taken effect."""
    out = [_main(layout), _dyno_names(table)]
    out.append(_default_server(layout, generation))
    for route in table.apps:
        out.append(_app(route, layout))
    out.append("}\n")
    return "".join(out)


def _main(layout: RouterLayout) -> str:
    temp = layout.prefix / "temp"
    log_format = "{" + ",".join(f'"{name}":"{variable}"' for name, variable in ACCESS_LOG_FIELDS) + "}"
    return f"""# Written by Berth (berth/platform/router); changes are overwritten.
daemon off;
master_process on;
worker_processes {layout.workers};
pid {layout.pid_file};
error_log {layout.error_log} warn;
events {{ worker_connections 4096; }}
http {{
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    server_tokens off;
    large_client_header_buffers 4 8k;
    client_max_body_size 0;
    proxy_request_buffering off;
    proxy_buffer_size 16k;
    proxy_buffers 8 16k;
    proxy_busy_buffers_size 32k;
    proxy_http_version 1.1;
    proxy_connect_timeout {layout.connect_timeout_s}s;
    proxy_read_timeout {layout.first_byte_timeout_s}s;
    proxy_send_timeout 55s;
    proxy_next_upstream error;
    proxy_next_upstream_tries 10;
    proxy_intercept_errors off;
    default_type text/html;

    map $http_x_request_id $berth_request_id {{
        "~^[A-Za-z0-9+/=-]{{20,200}}$" $http_x_request_id;
        default $berth_request_uuid;
    }}
    map $request_id $berth_request_uuid {{
        "~^(?<a>.{{8}})(?<b>.{{4}})(?<c>.{{4}})(?<d>.{{4}})(?<e>.{{12}})$" "$a-$b-$c-$d-$e";
    }}
    map $msec $berth_request_start {{ "~^(?<s>[0-9]+)\\.(?<ms>[0-9]+)$" "$s$ms"; }}
    map $http_via $berth_via {{ "" "1.1 vegur"; default "$http_via, 1.1 vegur"; }}
    map $http_upgrade $berth_connection {{ "" ""; default "upgrade"; }}

    log_format berth_router escape=json '{log_format}';
    access_log {layout.access_log} berth_router;

"""


def _dyno_names(table: RoutingTable) -> str:
    """$berth_dyno: the dyno behind the (last) upstream address, as this generation knew it, so
    a line is logged with the right dyno even after the table changed."""
    entries = "".join(f'        "~(^|\\s){re.escape(dyno.address)}$" {dyno.name};\n'
                      for route in table.apps for dyno in route.dynos)
    return f"    map $upstream_addr $berth_dyno {{\n        default \"\";\n{entries}    }}\n\n"


def _listen(layout: RouterLayout, default: bool = False) -> str:
    flag = " default_server" if default else ""
    lines = [f"        listen {layout.listen_host}:{layout.port}{flag};\n"]
    if layout.tls_port is not None:
        lines.append(f"        listen {layout.listen_host}:{layout.tls_port} ssl{flag};\n")
    return "".join(lines)


def _tls(layout: RouterLayout) -> str:
    if layout.tls_port is None:
        return ""
    return (f"        ssl_certificate {layout.certificate};\n"
            f"        ssl_certificate_key {layout.key};\n")


def _default_server(layout: RouterLayout, generation: int) -> str:
    return f"""    server {{
{_listen(layout, default=True)}{_tls(layout)}        server_name _;
        set $berth_app "";
        set $berth_code "";
        location / {{ return 404 '{NO_SUCH_APP}'; }}
        location = {GENERATION_PATH} {{ access_log off; default_type text/plain; return 200 '{generation}'; }}
    }}

"""


def _answer(code: str) -> str:
    error = ERRORS[code]
    return f"set $berth_code {code}; return {error.status} '{error.page}';"


def _app(route: AppRoute, layout: RouterLayout) -> str:
    upstream = f"berth_app_{route.app.replace('-', '_')}"
    head = f"""    server {{
{_listen(layout)}{_tls(layout)}        server_name {' '.join(route.hosts)};
        set $berth_app {route.app};
        set $berth_code "";
"""
    if route.maintenance:
        return head + f"        location / {{ {_answer('H80')} }}\n    }}\n\n"
    if not route.dynos:
        return head + f"        location / {{ {_answer('H10' if route.crashed else 'H14')} }}\n    }}\n\n"
    servers = "".join(f"        server {dyno.address} max_fails=1 fail_timeout=5s;\n" for dyno in route.dynos)
    return f"""    upstream {upstream} {{
        random;
{servers}        keepalive 16;
    }}
{head}        location / {{
            proxy_pass http://{upstream};
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Port $server_port;
            proxy_set_header X-Request-Start $berth_request_start;
            proxy_set_header X-Request-Id $berth_request_id;
            proxy_set_header Via $berth_via;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $berth_connection;
            error_page 502 = @h21;
            error_page 504 = @h12;
        }}
        location @h21 {{ {_answer('H21')} }}
        location @h12 {{ {_answer('H12')} }}
    }}

"""
