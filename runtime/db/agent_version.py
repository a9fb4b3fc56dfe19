"""Which version of an agent graph a call runs: file, content hash, git commit."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path

GIT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class AgentVersion:
    """An agent graph as loaded: `content_hash` is the SHA-256 of the file's
    bytes; `git_commit` is the last commit of the file when the file is
    unchanged since then, else None (also outside a git work tree)."""

    graph_id: str
    content_hash: str
    file_path: str | None = None
    git_commit: str | None = None
    name: str | None = None


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _git(cwd: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_commit_of(path: Path) -> str | None:
    """The last commit that changed `path`, when the file in the work tree is
    exactly that commit's version; None when untracked, modified, or no git."""
    path = path.resolve()
    commit = _git(path.parent, "log", "-1", "--format=%H", "--", path.name)
    if not commit:
        return None
    dirty = _git(path.parent, "status", "--porcelain", "--", path.name)
    return commit if dirty == "" else None


def describe_graph_file(
    path: str | Path, *, graph_id: str, name: str | None = None
) -> AgentVersion:
    """The version of the graph file at `path` (read now; runs git). OSError
    when the file cannot be read."""
    p = Path(path)
    data = p.read_bytes()
    return AgentVersion(
        graph_id=graph_id,
        content_hash=content_hash(data),
        file_path=str(p.resolve()),
        git_commit=git_commit_of(p),
        name=name,
    )


async def describe_graph_file_async(
    path: str | Path, *, graph_id: str, name: str | None = None
) -> AgentVersion:
    """`describe_graph_file` in a worker thread (file and git I/O off the loop)."""
    return await asyncio.to_thread(describe_graph_file, path, graph_id=graph_id, name=name)
