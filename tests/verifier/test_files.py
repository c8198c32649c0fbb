"""The one atomic file writer (breakglass/core/files.py)."""

import os
import stat

import pytest

from breakglass.core.files import file_write_atomic


def test_a_new_file_gets_exactly_the_requested_mode_whatever_the_umask(tmp_path):
    target = tmp_path / "roots.json"
    old = os.umask(0o077)
    try:
        file_write_atomic(target, b"{}\n", mode=0o644)
    finally:
        os.umask(old)
    assert target.read_bytes() == b"{}\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_an_existing_file_is_replaced_whole_and_chunks_are_joined(tmp_path):
    target = tmp_path / "export.jsonl"
    target.write_bytes(b"old contents that are longer than the new ones\n")
    file_write_atomic(target, (line for line in [b"a\n", b"b\n"]), mode=0o600)
    assert target.read_bytes() == b"a\nb\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_a_failure_while_writing_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "bundle.json"
    target.write_bytes(b"version 1")

    def chunks():
        yield b"half of version 2"
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        file_write_atomic(target, chunks(), mode=0o644)
    assert target.read_bytes() == b"version 1"
    assert os.listdir(tmp_path) == ["bundle.json"]


def test_a_missing_directory_is_an_os_error_not_a_half_written_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        file_write_atomic(tmp_path / "absent" / "x.json", b"{}", mode=0o644)
    assert os.listdir(tmp_path) == []
