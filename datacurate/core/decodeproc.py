"""A decoding child process for callers with other threads running.

What libtiff or libjpeg print goes to file descriptor 2, which belongs to the whole process: it
can be pointed at a temporary file around a decode (imageio.captured_noise) only while no other
thread could write to it meanwhile. A caller with other threads (a notebook that scraped first,
scrape's download threads, a Ray worker) has its files decoded here instead, one at a time, in a
child process whose fd 2 is free to capture, so the verdict and the noise caught in the detail are
the same whatever threads the caller runs. This module is the child's loop;
datacurate.core.decodechild starts the child and hands it the files.
"""

from __future__ import annotations

import os
import pickle
import sys
from dataclasses import asdict


def serve(parent: int) -> None:
    """The child's loop: requests on stdin, the Inspection's fields on stdout (fd 1 itself goes to /dev/null)."""
    from datacurate.core import procutil
    from datacurate.core.imageio import inspect_bytes, inspect_file

    procutil.die_with_parent(parent)
    answers = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # a library printing to stdout must not garble the answers
    requests = sys.stdin.buffer
    while True:
        try:
            kind, arg, limits, kinds = pickle.load(requests)
        except EOFError:
            return
        found = inspect_file(arg, limits, kinds) if kind == "file" else inspect_bytes(arg, limits, kinds)
        pickle.dump(asdict(found), answers, protocol=pickle.HIGHEST_PROTOCOL)
        answers.flush()
