"""The grants a running share worker applies: re-read on change, and named by a digest
of their files (what its grants.applied record says)."""

from __future__ import annotations

from pathlib import Path

from databus.governance.watch import GrantsWatcher, grant_files

GRANT = """\
grants:
  - consumer: civil
    dataset: health.death_certificate.v1
    fields: [person_ref, date_of_death]
    purpose: "End social assistance after a death."
    expires: {expires}
"""


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_digest_names_the_files_and_changes_with_their_content(tmp_path: Path) -> None:
    (tmp_path / "health.yaml").write_text(GRANT.format(expires="2030-01-01"))
    first = grant_files(tmp_path)
    assert first.names == ("health.yaml",)
    assert len(first.digest) == 64
    assert grant_files(tmp_path) == first
    (tmp_path / "health.yaml").write_text(GRANT.format(expires="2030-01-02"))
    assert grant_files(tmp_path).digest != first.digest


def test_a_change_is_loaded_with_the_digest_of_what_was_loaded(tmp_path: Path) -> None:
    path = tmp_path / "health.yaml"
    path.write_text(GRANT.format(expires="2030-01-01"))
    ticks = Ticks()
    watcher = GrantsWatcher(tmp_path, monotonic=ticks)
    before = watcher.files
    # Longer, so that the change shows even within the file system's mtime granularity.
    path.write_text("# extended\n" + GRANT.format(expires="2031-12-31"))
    ticks.now += 5
    assert watcher.refresh()
    assert watcher.files != before
    assert watcher.files == grant_files(tmp_path)
    assert next(iter(watcher.grants)).expires.year == 2031
    path.write_text("grants: [")  # a change that does not load: the last valid grants stay
    ticks.now += 5
    assert not watcher.refresh()
    assert next(iter(watcher.grants)).expires.year == 2031
