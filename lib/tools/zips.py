"""Reproducible zips: sorted members, a fixed timestamp and fixed modes, so the same files
give the same bytes (the release id of ``lake package`` is their hash)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def zip_tree(root: Path, prefix: str = "", skip: tuple[str, ...] = (),
             extra: dict[str, bytes] | None = None) -> bytes:
    """Every file under ``root`` as ``<prefix><relative path>``, except those with a part in
    ``skip``; then the members of ``extra`` (name -> bytes)."""
    members = {}
    for path in (p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root)
        if not any(part in skip for part in rel.parts):
            members[f"{prefix}{rel.as_posix()}"] = (path.read_bytes(),
                                                   0o755 if path.stat().st_mode & 0o111 else 0o644)
    members |= {name: (data, 0o644) for name, data in (extra or {}).items()}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(members):
            data, mode = members[name]
            info = zipfile.ZipInfo(name, ZIP_EPOCH)
            info.external_attr = mode << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return buf.getvalue()
