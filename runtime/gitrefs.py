"""Read the files of a directory as they were at a git ref (tag, branch or commit).

Used for handoffs pinned to a version (`graph: billing-support@v3`): the graphs
directory's repository is asked, through the `git` command, which commit the
ref names and which files the directory held then. Nothing is checked out and
the working copy is never touched. Refs come from graph files, so they are
checked against a strict pattern and passed after `--end-of-options`; paths
come from git's own listing, never from the caller.

Every call runs `git` as a subprocess (blocking, bounded by `timeout_s`): call
it at compile time or from a worker thread, not on an event loop.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

#: Tag, branch or commit names accepted (no leading '-', no spaces or shell syntax).
REF_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
MAX_REF_LENGTH = 200
DEFAULT_TIMEOUT_S = 10.0
#: Larger files are skipped (the graph loader rejects them anyway).
MAX_BLOB_BYTES = 2 * 1024 * 1024


class GitRefError(Exception):
    """The directory is not in a git repository, the ref is unknown or
    malformed, git is missing or failed; the message says which."""


@dataclass(frozen=True)
class FileAtRef:
    """One file of the directory at the ref: its path from the repository root
    (POSIX) and its bytes."""

    path: str
    data: bytes

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Snapshot:
    """The directory at a ref: the ref as written, the commit it names, the
    directory's path from the repository root ('' for the root), and its files."""

    ref: str
    commit: str
    prefix: str
    files: tuple[FileAtRef, ...]


def _git(
    directory: Path, args: Sequence[str], *, stdin: bytes | None = None, timeout_s: float
) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "GIT_OPTIONAL_LOCKS": "0"}
    try:
        return subprocess.run(
            ["git", "-C", str(directory), *args],
            input=stdin,
            capture_output=True,
            timeout=timeout_s,
            env=env,
            check=False,
        )
    except FileNotFoundError:
        raise GitRefError(
            "the git command is not installed, so graph versions cannot be read"
        ) from None
    except subprocess.TimeoutExpired:
        raise GitRefError(f"git did not answer within {timeout_s:g} s in {directory}") from None


def run_git(
    directory: Path, args: Sequence[str], *, stdin: bytes | None = None, timeout_s: float = 10.0
) -> subprocess.CompletedProcess[bytes]:
    """`git -C directory *args` with prompts off and the C locale, not raising on a
    non-zero exit; GitRefError when git is missing or does not answer in time."""
    return _git(directory, args, stdin=stdin, timeout_s=timeout_s)


def _first_line(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace").strip()
    return text.splitlines()[0] if text else "no message"


def check_ref(ref: str) -> str:
    """`ref` when it is an acceptable tag, branch or commit name, else GitRefError."""
    if (
        not isinstance(ref, str)
        or len(ref) > MAX_REF_LENGTH
        or not REF_PATTERN.match(ref)
        or ".." in ref
        or ref.endswith((".lock", "/", "."))
    ):
        raise GitRefError(f"{ref!r} is not a valid git tag, branch or commit name")
    return ref


def repository_prefix(directory: Path, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> str:
    """The directory's path inside its repository ('' at the top, else ending in
    '/'); GitRefError when it is not inside a git repository."""
    if not directory.is_dir():
        raise GitRefError(f"{directory} is not a directory")
    done = _git(directory, ["rev-parse", "--show-prefix"], timeout_s=timeout_s)
    if done.returncode != 0:
        raise GitRefError(
            f"{directory} is not inside a git repository ({_first_line(done.stderr)}), "
            "so no graph version can be pinned"
        )
    return done.stdout.decode("utf-8").strip()


def resolve_commit(directory: Path, ref: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> str:
    """The full commit id `ref` names in the directory's repository."""
    check_ref(ref)
    done = _git(
        directory,
        ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"],
        timeout_s=timeout_s,
    )
    commit = done.stdout.decode("utf-8").strip()
    if done.returncode != 0 or not commit:
        raise GitRefError(
            f"unknown git ref {ref!r}: no tag, branch or commit of that name in the repository "
            f"of {directory}"
        )
    return commit


def _list_blobs(
    directory: Path, commit: str, prefix: str, suffixes: Collection[str], timeout_s: float
) -> list[tuple[str, str]]:
    """(path, blob id) of the regular files directly in `prefix` at `commit`."""
    args = ["ls-tree", "-z", "--full-tree", commit]
    if prefix:
        args += ["--", prefix]
    done = _git(directory, args, timeout_s=timeout_s)
    if done.returncode != 0:
        raise GitRefError(f"git ls-tree failed: {_first_line(done.stderr)}")
    found: list[tuple[str, str]] = []
    for entry in done.stdout.split(b"\0"):
        if not entry:
            continue
        meta, _, raw_path = entry.partition(b"\t")
        mode, kind, oid = meta.decode("ascii").split(" ")
        path = raw_path.decode("utf-8", "replace")
        name = path.rsplit("/", 1)[-1]
        if kind != "blob" or mode not in ("100644", "100755") or name.startswith("."):
            continue
        if any(name.endswith(s) for s in suffixes):
            found.append((path, oid))
    return found


def _read_blobs(directory: Path, blobs: list[tuple[str, str]], timeout_s: float) -> list[FileAtRef]:
    """The contents of the blobs, read by one `git cat-file --batch`."""
    if not blobs:
        return []
    request = "".join(f"{oid}\n" for _, oid in blobs).encode("ascii")
    done = _git(directory, ["cat-file", "--batch"], stdin=request, timeout_s=timeout_s)
    if done.returncode != 0:
        raise GitRefError(f"git cat-file failed: {_first_line(done.stderr)}")
    out = done.stdout
    files: list[FileAtRef] = []
    pos = 0
    for path, _ in blobs:
        end = out.index(b"\n", pos)
        header = out[pos:end].decode("ascii").split(" ")
        if len(header) != 3 or header[1] != "blob":
            raise GitRefError(f"git cat-file gave an unexpected answer for {path}")
        size = int(header[2])
        data = out[end + 1 : end + 1 + size]
        pos = end + 1 + size + 1
        if size <= MAX_BLOB_BYTES:
            files.append(FileAtRef(path, data))
    return files


def snapshot(
    directory: str | Path,
    ref: str,
    *,
    suffixes: Collection[str] = (".yaml", ".yml", ".json"),
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Snapshot:
    """The files of `directory` (not recursive) ending in one of `suffixes`, as
    committed at `ref`. Raises GitRefError when the directory is not in a git
    repository, the ref is malformed or unknown, or git fails."""
    where = Path(directory).resolve()
    prefix = repository_prefix(where, timeout_s=timeout_s)
    commit = resolve_commit(where, ref, timeout_s=timeout_s)
    blobs = _list_blobs(where, commit, prefix, suffixes, timeout_s)
    return Snapshot(ref, commit, prefix, tuple(_read_blobs(where, blobs, timeout_s)))
