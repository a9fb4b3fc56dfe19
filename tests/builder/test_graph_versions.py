"""Graph versions in git: history, commit, show, restore as a new commit, tag,
inside a larger repository, and clear errors outside one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from builder import versions
from builder.document import GraphDocument


def test_history_commit_show_restore_tag(repo: Path, git: Callable[..., str]) -> None:
    path = repo / "graphs" / "dental-booking.yaml"
    first = path.read_text()
    [v1] = versions.history(path)
    assert (v1.author, v1.email, v1.message) == (
        "Dana Designer",
        "dana@example.com",
        "first version",
    )
    assert v1.commit == git(repo, "rev-parse", "HEAD")
    assert versions.file_status(path) == "clean"
    with pytest.raises(versions.VersionError, match="no changes"):
        versions.commit_file(path, "nothing")

    doc = GraphDocument.open(path)
    doc.update_node("greeting", {"text": "Hi there!"})
    doc.save()
    (repo / "unrelated.txt").write_text("staged elsewhere")
    git(repo, "add", "unrelated.txt")
    assert versions.file_status(path) == "modified"
    v2 = versions.commit_file(path, "Shorter greeting")
    assert v2.message == "Shorter greeting" and v2.commit != v1.commit
    # Only the graph file went into the commit.
    assert git(repo, "show", "--name-only", "--format=", "HEAD") == "graphs/dental-booking.yaml"
    assert versions.show_file(path, "HEAD~1") == first
    assert "Hi there!" in versions.show_file(path, "HEAD")

    tagged = versions.tag_release(path, "v1.0", message="First release")
    assert tagged == v2.commit
    assert versions.history(path)[0].tags == ("v1.0",)
    with pytest.raises(versions.VersionError, match="already exists"):
        versions.tag_release(path, "v1.0")

    v3 = versions.restore_version(path, v1.commit)
    assert path.read_text() == first
    assert [v.commit for v in versions.history(path)] == [v3.commit, v2.commit, v1.commit]
    assert v3.message.startswith("Restore dental-booking.yaml to ")
    with pytest.raises(versions.VersionError, match="already as it was"):
        versions.restore_version(path, v1.commit)


def test_restore_refuses_to_drop_uncommitted_changes(repo: Path) -> None:
    path = repo / "graphs" / "dental-booking.yaml"
    path.write_text(path.read_text() + "# local note\n")
    with pytest.raises(versions.VersionError, match="uncommitted changes"):
        versions.restore_version(path, "HEAD")
    assert path.read_text().endswith("# local note\n")


def test_bad_revisions_and_missing_files(repo: Path) -> None:
    path = repo / "graphs" / "dental-booking.yaml"
    for rev in ("--output=/tmp/x", "HEAD..main", "a b", "$(id)"):
        with pytest.raises(versions.VersionError, match="not a valid git revision"):
            versions.show_file(path, rev)
    with pytest.raises(versions.VersionError, match="unknown revision 'nope'"):
        versions.show_file(path, "nope")
    new = repo / "graphs" / "new.yaml"
    new.write_text("x: 1\n")
    assert versions.file_status(new) == "untracked"
    with pytest.raises(versions.NotAtRevision):
        versions.show_file(new, "HEAD")
    assert versions.history(new) == []
    with pytest.raises(versions.VersionError, match="not a valid"):
        versions.tag_release(path, "-bad")


def test_not_a_repository_offers_init(tmp_path: Path, git_env: None) -> None:
    graphs = tmp_path / "alone"
    graphs.mkdir()
    path = graphs / "g.yaml"
    path.write_text("id: g\n")
    assert not versions.is_repository(graphs)
    with pytest.raises(versions.NotARepository, match="git init"):
        versions.history(path)
    versions.init_repository(graphs)
    assert versions.is_repository(graphs)
    assert versions.history(path) == []
    assert versions.commit_file(path, "start").message == "start"


def test_missing_identity_is_explained(
    tmp_path: Path, git: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    git(tmp_path, "init", "-q")
    path = tmp_path / "g.yaml"
    path.write_text("id: g\n")
    for var in ("NAME", "EMAIL"):
        monkeypatch.delenv(f"GIT_AUTHOR_{var}")
        monkeypatch.delenv(f"GIT_COMMITTER_{var}")
    monkeypatch.setenv("EMAIL", "")
    git(tmp_path, "config", "user.useConfigOnly", "true")
    with pytest.raises(versions.VersionError, match=r"user\.name"):
        versions.commit_file(path, "start")
