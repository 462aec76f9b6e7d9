"""Classic buildpacks: references and their fetching, and the runner that compiles an app with them
inside the build sandbox (for the builder's build job)."""
from .procfile import ProcfileError, parse_procfile
from .references import BUILTIN_ORDER, Buildpack, BuildpackError, BuildpackFetcher, builtin_name
from .runner import BuildFailed, BuildpackRunner, BuildResult, chosen_buildpacks
from .setup import configured_runner

__all__ = ["BUILTIN_ORDER", "Buildpack", "BuildpackError", "BuildpackFetcher", "BuildFailed", "BuildResult",
           "BuildpackRunner", "ProcfileError", "configured_runner", "builtin_name", "chosen_buildpacks", "parse_procfile"]
