"""Atomic writes: the whole new file or the old one, and never a device, pipe or folder replaced."""
import os
import stat

import pytest

from ferristor.atomic import atomic_write
from ferristor.errors import ConfigError


def test_a_write_replaces_a_file_whole_keeping_its_permissions(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("old")
    os.chmod(path, 0o600)
    with atomic_write(path, "w") as f:
        f.write("new")
    assert path.read_text() == "new" and stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(RuntimeError), atomic_write(path, "w") as f:
        f.write("half")
        raise RuntimeError
    assert path.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no .part left
    with atomic_write(tmp_path / "sub" / "n.json", "w") as f:
        f.write("x")
    assert stat.S_IMODE((tmp_path / "sub" / "n.json").stat().st_mode) == 0o644


def test_a_relative_path_into_folders_not_made_yet_is_written(tmp_path, monkeypatch):
    """A relative path differs from its realpath: it had been taken for a dangling link and refused
    (fig6's first run writes its feature cache into out/features, which does not exist yet)."""
    monkeypatch.chdir(tmp_path)
    with atomic_write("runs/fig6/features/a.pt") as f:
        f.write(b"x")
    assert (tmp_path / "runs" / "fig6" / "features" / "a.pt").read_bytes() == b"x"


def test_a_symbolic_link_is_written_through_and_kept(tmp_path):
    (tmp_path / "real.html").write_text("old")
    (tmp_path / "link.html").symlink_to("real.html")
    with atomic_write(tmp_path / "link.html", "w") as f:
        f.write("new")
    assert (tmp_path / "link.html").is_symlink() and (tmp_path / "real.html").read_text() == "new"


@pytest.mark.parametrize("make, kind", [
    (lambda p: os.mkfifo(p), r"named pipe \(FIFO\)"),
    (lambda p: p.mkdir(), "folder"),
    (None, "character device"),
])
def test_what_is_not_a_regular_file_is_refused_and_left_alone(tmp_path, make, kind):
    """`report --out /dev/full` had replaced the device with an HTML file (as root)."""
    if make is None:
        path = tmp_path / "null-link"
        path.symlink_to(os.devnull)
    else:
        path = tmp_path / "target"
        make(path)
    before = os.stat(path).st_mode
    with pytest.raises(ConfigError, match=f"is a {kind}, not a regular file"):
        with atomic_write(path, "w") as f:
            f.write("x")
    assert os.stat(path).st_mode == before and not list(tmp_path.glob(".*.part"))


def test_a_dangling_link_or_a_loop_is_refused_naming_the_option(tmp_path):
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere" / "x.txt")
    with pytest.raises(ConfigError, match=r"^output=.*symbolic link into a folder that does not exist"):
        with atomic_write(tmp_path / "dangling", "w", name="output") as f:
            f.write("x")
    assert not (tmp_path / "nowhere").exists()  # no folders made for it
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    with pytest.raises(ConfigError, match="cannot be written"):
        with atomic_write(tmp_path / "a", "w") as f:
            f.write("x")
    (tmp_path / "ok").symlink_to(tmp_path / "new.txt")  # a link to a new file in a folder that exists
    with atomic_write(tmp_path / "ok", "w") as f:
        f.write("x")
    assert (tmp_path / "new.txt").read_text() == "x"
