"""Content hashes of file sets (pack versions, compiled diagrams): one definition, used everywhere."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping


def content_hash(files: Mapping[str, bytes]) -> str:
    """SHA-256 over the sorted names and the SHA-256 of each file's bytes (order-independent)."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return digest.hexdigest()
