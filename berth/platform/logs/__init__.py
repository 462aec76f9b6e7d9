"""Each app's log stream (Logplex-style): a bounded buffer of lines, log sessions that read and tail
it, the HTTP log input that add-ons and shippers write to, and drains that receive a copy."""
