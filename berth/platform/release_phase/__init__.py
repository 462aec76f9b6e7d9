"""The release phase (runtime.md §5.2): a release whose slug has a `release` process type is cut
pending, and becomes the app's current release only after that command exits 0 in a sandbox.
records = the release_phases job table (scheduling one per new release, status); job = what the
builder runs; the output is written and followed like a build's (builds.output, kind `releases`)."""
