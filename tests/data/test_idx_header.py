"""A gzip IDX file cut inside its header is a DataError naming the file, not a struct.error."""
import gzip

import pytest

from ferristor.data.idx import read_idx
from ferristor.errors import DataError


def test_an_idx_header_cut_inside_its_dimensions_is_a_data_error(tmp_path):
    path = tmp_path / "x.gz"
    with gzip.open(path, "wb") as f:
        f.write(b"\x00\x00\x08\x03\x00\x00\x00\x02\x00\x00")  # 3 dimensions announced, 1½ given
    with pytest.raises(DataError) as e:
        read_idx(path)
    assert str(e.value) == (f"{path}: truncated IDX header (10 bytes, its 3 dimensions need 16); "
                            f"delete it and fetch it again")
