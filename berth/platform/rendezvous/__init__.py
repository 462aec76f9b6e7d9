"""The rendezvous server: how `heroku run` and `berth run` attach to a one-off dyno
(platform-api.md §2.9). A client dials `rendezvous://host:port/<secret>` over TLS, sends the secret,
gets `rendezvous\\r\\n`, then raw bytes flow both ways until the process exits."""
from berth.platform.rendezvous.server import RendezvousServer
from berth.platform.rendezvous.tickets import Attachment, Tickets

__all__ = ["Attachment", "RendezvousServer", "Tickets"]
