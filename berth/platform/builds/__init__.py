"""Builds: a source tarball (POST /apps/{app}/builds, or a git push) built by the builder process into
a slug and a release. records = the build rows and their queue; job = what the builder runs;
output = each build's output, written live and followed; pushes = the git hook's way in."""
