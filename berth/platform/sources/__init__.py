"""Source blobs for builds and app setups: uploads through POST /sources (store), fetching a
`source_blob.url` (fetch), and unpacking the tarball safely (extract)."""
from berth.platform.sources.archive import ArchiveLimits, extract
from berth.platform.sources.errors import SourceError

__all__ = ["ArchiveLimits", "SourceError", "extract"]
