"""Fast unmasking equals the byte-by-byte definition of RFC 6455 §5.3, at every size."""

from __future__ import annotations

import random

from ws_support import xor

from covetd.engine.ws.masking import rotate, unmask


def test_unmask_matches_the_definition_around_every_strategy_switch() -> None:
    rng = random.Random(11)
    for size in [*range(0, 40), 2047, 2048, 2049, 2050, 2051, 65536, 65537, 100_003]:
        data = rng.randbytes(size)
        mask = rng.randbytes(4)
        assert unmask(data, mask) == xor(data, mask), size


def test_unmasking_twice_gives_the_data_back() -> None:
    data = bytes(range(256)) * 20
    mask = b"\x00\xff\x80\x01"
    assert unmask(unmask(data, mask), mask) == data


def test_rotated_mask_continues_a_split_payload() -> None:
    rng = random.Random(12)
    data = rng.randbytes(5000)
    mask = rng.randbytes(4)
    whole = unmask(data, mask)
    for cut in (1, 2, 3, 4, 5, 2049, 4999):
        assert unmask(data[:cut], mask) + unmask(data[cut:], rotate(mask, cut)) == whole, cut
