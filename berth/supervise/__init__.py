"""Starting, watching and stopping local processes: the layer below both the add-on backends
(addons/) and the build-and-run core (platform/). It imports only the foundation.

accounts    the unprivileged system account each kind of server runs as when Berth is root
processes   start a server detached as its account, recognise it by pid and command line, stop it
readiness   wait until a started server answers, or raise as soon as it is clear it never will
ports       bindable ports, the free ones of a range, whether something listens
locks       flocks that serialise one server's start/stop/removal across threads and processes
files       files in a directory a server's account owns, read and written without following traps
loop        a supervisor's rounds: run checks at their own pace, restart what died, stop them all
"""
