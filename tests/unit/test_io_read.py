"""Reading input files: the bytes of a regular file, whatever ``fstat`` said its size was."""

import os

import pytest

from stntool import io as sio
from stntool.errors import ImageReadError


@pytest.mark.parametrize("told", [0, 1, 999, 1000, 1001, 5000])
def test_a_file_is_read_to_its_end_whatever_its_size_was_said_to_be(tmp_path, told):
    """``_read_all`` reads to the end of the file also when it grew or shrank after ``fstat`` (``told``),
    and stops at ``max_bytes + 1`` bytes."""
    data = os.urandom(1000)
    (tmp_path / "f.bin").write_bytes(data)
    fd = os.open(tmp_path / "f.bin", os.O_RDONLY)
    try:
        assert sio._read_all(fd, told, 1 << 20) == data
        os.lseek(fd, 0, os.SEEK_SET)
        assert sio._read_all(fd, told, 99) == data[:100]  # one byte past the limit: the caller says "too large"
    finally:
        os.close(fd)


def test_read_file_bytes_gives_the_bytes_and_refuses_what_is_not_a_file(tmp_path):
    data = os.urandom(3 << 20)
    (tmp_path / "big.jpg").write_bytes(data)
    assert sio.read_file_bytes(str(tmp_path / "big.jpg")) == data
    with pytest.raises(ImageReadError, match="file too large"):
        sio.read_file_bytes(str(tmp_path / "big.jpg"), max_bytes=1 << 20)
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty file"):
        sio.read_file_bytes(str(tmp_path / "empty.jpg"))
    with pytest.raises(ImageReadError, match="is a directory"):
        sio.read_file_bytes(str(tmp_path))
