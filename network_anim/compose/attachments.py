"""Documents attached to posts: stored once by content hash, served to the post's readers."""

from __future__ import annotations

import hashlib
import mimetypes
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlmodel import Session

from network_anim.db.models import PostAttachment, SaleProof
from network_anim.errors import UserError

MAX_BYTES = 20 * 1024 * 1024  # what a partner downloads on a slow line in reasonable time


@dataclass(frozen=True, slots=True)
class StoredFile:
    filename: str
    content_type: str
    size: int
    sha256: str


def check_files(paths: tuple[Path, ...]) -> list[str]:
    """Problems with files a message wants to attach (for validate and before planning)."""
    problems = []
    for path in paths:
        if not path.is_file():
            problems.append(f"attachment {path}: file not found")
        elif path.stat().st_size > MAX_BYTES:
            problems.append(f"attachment {path}: {path.stat().st_size} bytes, at most {MAX_BYTES}")
    return problems


def store(data_dir: Path, path: Path) -> StoredFile:
    problems = check_files((path,))
    if problems:
        raise UserError(problems[0])
    digest = keep_bytes(data_dir, path.read_bytes())
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return StoredFile(path.name, content_type, path.stat().st_size, digest)


def keep_bytes(data_dir: Path, data: bytes) -> str:
    """Store ``data`` once under data_dir/attachments by its SHA-256 (returned); the write
    goes through a temporary file, so a reader never sees half a file."""
    digest = hashlib.sha256(data).hexdigest()
    folder = data_dir / "attachments"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / digest
    if not target.exists():
        temporary = folder / f".{digest}.tmp"
        temporary.write_bytes(data)
        os.replace(temporary, target)
    return digest


def attach(
    session: Session, data_dir: Path, post_id: int, paths: tuple[Path, ...], now: datetime
) -> None:
    for path in paths:
        stored = store(data_dir, path)
        session.add(
            PostAttachment(
                post_id=post_id,
                filename=stored.filename,
                content_type=stored.content_type,
                size=stored.size,
                sha256=stored.sha256,
                created_at=now,
            )
        )


def stored_path(data_dir: Path, attachment: PostAttachment | SaleProof) -> Path:
    return data_dir / "attachments" / attachment.sha256
