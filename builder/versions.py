"""Versions of a graph file in git: history, commit, show, restore, tag.

The graphs directory is, or is inside, a git repository; every function takes
the graph file's path and runs `git` (through `runtime.gitrefs.run_git`) in the
file's directory, so a graphs directory deep inside a larger repository works.
Revisions are tag, branch or commit names optionally followed by `~N`/`^N`
(`HEAD~1`, `v2^`); anything else is refused before git sees it. When the
directory is not in a repository, `NotARepository` says so and suggests
`init_repository`.

API: `is_repository(dir)`, `init_repository(dir)`, `history(path)`,
`file_status(path)`, `commit_file(path, message)`, `show_file(path, rev)`,
`restore_version(path, rev)`, `tag_release(path, name, message)`. All are
blocking (subprocess): call them from a worker thread inside async code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from runtime import gitrefs

_REVISION = re.compile(r"^(?P<base>[A-Za-z0-9][A-Za-z0-9._/-]*?)(?P<walk>(?:[~^][0-9]{0,4})*)$")
_FIELD = "\x1f"
_RECORD = "\x1e"


class VersionError(Exception):
    """A git operation on a graph file failed; the message says why."""


class NotARepository(VersionError):
    """The graph's directory is not inside a git repository."""


class NotAtRevision(VersionError):
    """The graph file did not exist at that revision."""


@dataclass(frozen=True)
class Version:
    """One commit of a graph file."""

    commit: str
    author: str
    email: str
    date: str  # ISO 8601 with the author's offset
    message: str
    tags: tuple[str, ...] = ()

    @property
    def short(self) -> str:
        return self.commit[:10]


def _git(directory: Path, *args: str, stdin: bytes | None = None) -> str:
    try:
        done = gitrefs.run_git(directory, args, stdin=stdin)
    except gitrefs.GitRefError as exc:
        raise VersionError(str(exc)) from None
    if done.returncode != 0:
        reason = done.stderr.decode("utf-8", "replace").strip() or "no reason given"
        if "Please tell me who you are" in reason or "empty ident" in reason:
            reason = "git does not know who you are: set user.name and user.email (git config)"
        raise VersionError(f"git {args[0]} failed: {reason.splitlines()[-1]}")
    return done.stdout.decode("utf-8", "replace")


def _where(path: str | Path) -> tuple[Path, str]:
    """The file's directory and the file's path from the repository root."""
    p = Path(path).resolve()
    try:
        prefix = gitrefs.repository_prefix(p.parent)
    except gitrefs.GitRefError:
        raise NotARepository(
            f"{p.parent} is not inside a git repository; initialise one (git init, or "
            "the builder's 'init' action) to keep versions of graphs"
        ) from None
    return p.parent, prefix + p.name


def check_revision(rev: str) -> str:
    """`rev` when it is a ref name optionally followed by ~N / ^N, else VersionError."""
    m = _REVISION.match(rev) if isinstance(rev, str) else None
    try:
        if m is None:
            raise gitrefs.GitRefError("")
        gitrefs.check_ref(m["base"])
    except gitrefs.GitRefError:
        raise VersionError(f"{rev!r} is not a valid git revision") from None
    return rev


def is_repository(directory: str | Path) -> bool:
    """True when `directory` is inside a git repository."""
    try:
        gitrefs.repository_prefix(Path(directory).resolve())
    except gitrefs.GitRefError:
        return False
    return True


def init_repository(directory: str | Path) -> None:
    """Make `directory` a git repository (nothing happens when it already is one)."""
    where = Path(directory).resolve()
    if not is_repository(where):
        _git(where, "init", "--quiet")


def resolve(path: str | Path, rev: str) -> str:
    """The full commit id of `rev` in the repository of `path`."""
    directory, _ = _where(path)
    check_revision(rev)
    try:
        out = _git(
            directory, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"
        )
    except VersionError:
        raise VersionError(f"unknown revision {rev!r}") from None
    return out.strip()


def history(path: str | Path, *, limit: int = 200) -> list[Version]:
    """The commits that changed the file, newest first (renames followed)."""
    directory, _ = _where(path)
    if gitrefs.run_git(directory, ["rev-parse", "--verify", "--quiet", "HEAD"]).returncode:
        return []  # no commit yet
    fmt = _FIELD.join(["%H", "%an", "%ae", "%aI", "%s", "%D"]) + _RECORD
    out = _git(
        directory,
        "log",
        "--follow",
        f"--max-count={max(1, limit)}",
        f"--format={fmt}",
        "--",
        Path(path).name,
    )
    versions = []
    for record in out.split(_RECORD):
        fields = record.strip("\n").split(_FIELD)
        if len(fields) != 6:
            continue
        commit, author, email, date, message, refs = fields
        tags = tuple(r.strip()[5:] for r in refs.split(",") if r.strip().startswith("tag: "))
        versions.append(Version(commit, author, email, date, message, tags))
    return versions


def file_status(path: str | Path) -> Literal["untracked", "modified", "clean", "missing"]:
    """How the working file compares with the last commit."""
    directory, _ = _where(path)
    out = _git(directory, "status", "--porcelain", "--", Path(path).name)
    if not out.strip():
        return "clean" if Path(path).exists() else "missing"
    code = out[:2]
    if code == "??":
        return "untracked"
    return "missing" if "D" in code else "modified"


def commit_file(path: str | Path, message: str, *, author: str | None = None) -> Version:
    """Commit the file as it is now (only this file) with `message`; `author`
    as 'Name <email>' overrides the configured author. VersionError when there
    is nothing to commit."""
    if not message.strip():
        raise VersionError("a commit needs a message")
    directory, _ = _where(path)
    if file_status(path) == "clean":
        raise VersionError(f"{Path(path).name} has no changes to commit")
    spec = Path(path).name
    _git(directory, "add", "--", spec)
    args = ["commit", "--quiet", "--no-verify", "-m", message]
    if author:
        args.append(f"--author={author}")
    _git(directory, *args, "--only", "--", spec)
    return history(path, limit=1)[0]


def show_file(path: str | Path, rev: str) -> str:
    """The file's text at `rev`; NotAtRevision when it did not exist there."""
    directory, rel = _where(path)
    commit = resolve(path, rev)
    done = gitrefs.run_git(directory, ["cat-file", "blob", f"{commit}:{rel}"])
    if done.returncode != 0:
        raise NotAtRevision(f"{Path(path).name} did not exist at {rev}")
    return done.stdout.decode("utf-8", "replace")


def restore_version(
    path: str | Path, rev: str, *, message: str | None = None, discard_changes: bool = False
) -> Version:
    """Write the file as it was at `rev` and commit that as a new commit. Refuses
    (VersionError) when the file has uncommitted changes, unless `discard_changes`."""
    if not discard_changes and file_status(path) == "modified":
        raise VersionError(
            f"{Path(path).name} has uncommitted changes; commit them first or discard them"
        )
    old = show_file(path, rev)
    commit = resolve(path, rev)
    Path(path).write_text(old, encoding="utf-8", newline="")
    if file_status(path) == "clean":
        raise VersionError(f"{Path(path).name} is already as it was at {rev}")
    return commit_file(path, message or f"Restore {Path(path).name} to {rev} ({commit[:10]})")


def tag_release(
    path: str | Path, name: str, *, message: str | None = None, rev: str = "HEAD"
) -> str:
    """Tag `rev` (default HEAD) of the file's repository as `name` (an annotated
    tag); returns the tagged commit. VersionError when the tag exists."""
    directory, _ = _where(path)
    try:
        gitrefs.check_ref(name)
    except gitrefs.GitRefError as exc:
        raise VersionError(str(exc)) from None
    commit = resolve(path, rev)
    if _git(directory, "tag", "--list", name).strip():
        raise VersionError(f"a tag {name!r} already exists")
    _git(directory, "tag", "-a", "-m", message or f"Release {name}", name, commit)
    return commit
