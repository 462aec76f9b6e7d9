"""Serving a job's output file (a build's, a release phase's) as a plain-text stream that follows
it until the job's outcome is stored, resumable with `Range: bytes=N-`."""
from __future__ import annotations

import re
from typing import Callable

from flask import Response, request

from berth.errors import RangeNotSatisfiable
from berth.platform.api.helpers import settings
from berth.platform.builds.output import follow, output_path

_BYTES_FROM = re.compile(r"^bytes=(\d{1,15})-$")


def output_response(job_id: str, finished: Callable[[], bool], kind: str) -> Response:
    """200 with the whole output, or 206 from byte N for `Range: bytes=N-` (416 for any other
    range, or one past what a finished job wrote)."""
    data_dir, header, start = settings().data_dir, request.headers.get("Range"), 0
    if header is not None:
        matched = _BYTES_FROM.match(header.strip())
        if matched is None:
            raise RangeNotSatisfiable("Only Range: bytes=N- is supported here (the output from byte N on, "
                                      "to resume reading it).")
        start = int(matched.group(1))
        path = output_path(data_dir, job_id, kind)
        written = path.stat().st_size if path.is_file() else 0
        if start > written or (start == written and start > 0 and finished()):
            raise RangeNotSatisfiable(f"The output has {written} bytes so far; resume from a byte at most that.")
    body = follow(data_dir, job_id, finished, kind=kind, start=start)
    return Response(body, status=206 if header is not None else 200, mimetype="text/plain",
                    headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
