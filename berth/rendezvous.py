"""The rendezvous process: the TLS port `heroku run` and `berth run` attach to
(BERTH_RENDEZVOUS_PORT, bound to BERTH_HOST, with the TLS listener's certificate from the
installation CA), and the host of every one-off dyno: attached ones start when their client dials
in, detached ones as soon as they are created; stop requests and sweeps are carried out here.

`python -m berth.rendezvous` runs it (`make run` starts one per node; at its start it ends the rows
of dynos this node's host ran before, named by BERTH_NODE_NAME or the host name). A composition
root like berth.builder.
"""
from __future__ import annotations

import logging
import shutil

from berth import tls_listener, wire_hooks
from berth.config import Settings
from berth.nodes import node_name
from berth.platform import one_off_dynos
from berth.platform.rendezvous import RendezvousServer
from berth.platform.rendezvous.host import DatabaseTickets
from berth.platform.rendezvous.service import OneOffHost
from berth.platform.slug_runs import SlugRunner
from berth.platform.slug_store import slug_store_of
from berth.process import start_process

log = logging.getLogger("berth.rendezvous")


def main() -> None:
    settings, database, stop = start_process()
    wire_hooks(database.hooks)
    scratch = settings.data_dir / "runs" / "one-off"
    shutil.rmtree(scratch, ignore_errors=True)  # what a killed host left unpacked
    host = node_name(settings)
    with database.transaction() as session:
        for dyno in one_off_dynos.orphan_running(session, host):
            log.warning("%s of app %s ended with the previous rendezvous host", dyno.name, dyno.app_id)
    # No stack here: each run looks for it, so one built later works without a restart, and a
    # dyno started before that ends `crashed` saying so.
    runner = SlugRunner(slug_store_of(settings), scratch)
    if settings.runner == "swarm":  # one-offs as Swarm tasks; attached ones too given the node engines
        runner = _swarm_runner(settings, host, runner)  # type: ignore[assignment]
    tickets = DatabaseTickets(database, runner, host=host)
    cert, key = tls_listener.ensure_certificate(settings)
    server = RendezvousServer(settings.host, settings.rendezvous_port, cert, key, tickets).start()  # type: ignore[arg-type]
    log.info("rendezvous listening on %s:%d", settings.host, server.port)
    try:
        OneOffHost(tickets, settings.data_dir).serve(stop)
    finally:
        server.close()


def _swarm_runner(settings: Settings, host: str, local: SlugRunner) -> SlugRunner:
    from berth.platform.dynos.swarm import SwarmBackend, image_maker
    from berth.platform.dynos.swarm_attach import AttachedOneOffs
    from berth.platform.dynos.swarm_engines import NodeEngines
    from berth.platform.dynos.swarm_one_off import SwarmSlugRunner

    backend = SwarmBackend(settings.docker_host)
    images = image_maker(settings.docker_host, settings.registry, slug_store_of(settings))
    attached = None
    if settings.swarm_node_engines:
        attached = AttachedOneOffs(backend, NodeEngines(dict(settings.swarm_node_engines),
                                                        settings.swarm_engine_tls_dir), images, host)
        removed = attached.remove_leftovers()  # of runs this host held when it was killed
        if removed:
            log.warning("removed %d attached one-off containers the previous rendezvous host left", removed)
    return SwarmSlugRunner(backend, images, local, attached)  # type: ignore[return-value]


if __name__ == "__main__":
    main()
