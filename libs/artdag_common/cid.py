"""Kubo-compatible content identifiers (CIDs), computed in one streaming pass.

`ipfs add` (Kubo, default importer settings) turns a file into a UnixFS DAG:
fixed 262,144-byte chunks, a balanced tree with at most 174 links per node, and
sha2-256 everywhere. This module reproduces that DAG's root CID exactly, without
ever holding the file in memory: it buffers at most one chunk plus, for each
level of the tree, the link entries (CID, cumulative size, file size) of the
children still waiting for their parent, at most 174 per level.

Two layouts are supported, matching Kubo's own defaults:

* ``cid_version=0`` (``ipfs add``): every leaf is a dag-pb node wrapping a UnixFS
  ``File`` message that carries the chunk; the root is rendered as a CIDv0
  (``Qm…``, base58btc of the sha2-256 multihash).
* ``cid_version=1`` (``ipfs add --cid-version=1``, which implies raw leaves):
  leaves are raw blocks (codec 0x55), internal nodes dag-pb (codec 0x70), and the
  root is rendered in multibase base32 (``b…``).

Encodings (dag-pb, UnixFS ``Data``, unsigned varints) follow the canonical
protobuf forms Kubo writes: in ``PBNode`` the ``Links`` (field 2) come before
``Data`` (field 1); each ``PBLink`` is ``Hash`` (1), ``Name`` (2, present and
empty) then ``Tsize`` (3); UnixFS fields are written in field-number order, with
``blocksizes`` unpacked.

`validate_cid` checks that an untrusted string (for example a URL path parameter)
is a well-formed CIDv0 or base32 CIDv1 before it reaches anything else.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass

from artdag_common.errors import InvalidCidError

__all__ = [
    "CHUNK_SIZE",
    "MAX_LINKS",
    "CidBuilder",
    "cid_of_bytes",
    "cid_of_file",
    "validate_cid",
]

CHUNK_SIZE = 262_144
"""Bytes per leaf: Kubo's default fixed-size chunker (``size-262144``)."""

MAX_LINKS = 174
"""Most links an internal node of Kubo's balanced layout may carry."""

_READ_SIZE = 1 << 20  # cid_of_file reads this much at a time

# multicodec / multihash codes
_SHA2_256 = 0x12
_SHA2_256_LEN = 32
_CODEC_RAW = 0x55
_CODEC_DAG_PB = 0x70

# protobuf keys: (field_number << 3) | wire_type
_PB_NODE_DATA = b"\x0a"  # PBNode.Data, field 1, length-delimited
_PB_NODE_LINK = b"\x12"  # PBNode.Links, field 2, length-delimited
_PB_LINK_HASH = b"\x0a"  # PBLink.Hash, field 1, length-delimited
_PB_LINK_EMPTY_NAME = b"\x12\x00"  # PBLink.Name, field 2, empty string
_PB_LINK_TSIZE = b"\x18"  # PBLink.Tsize, field 3, varint
_UNIXFS_TYPE_FILE = b"\x08\x02"  # Data.Type, field 1, varint: File = 2
_UNIXFS_DATA = b"\x12"  # Data.Data, field 2, length-delimited
_UNIXFS_FILESIZE = b"\x18"  # Data.filesize, field 3, varint
_UNIXFS_BLOCKSIZE = b"\x20"  # Data.blocksizes, field 4, varint (unpacked)

_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {ch: i for i, ch in enumerate(_B58_ALPHABET)}
_B32_ALPHABET = frozenset("abcdefghijklmnopqrstuvwxyz234567")

_MAX_CID_TEXT = 128
_CIDV0_TEXT_LEN = 46
_MAX_DIGEST_LEN = 64


def _varint(value: int) -> bytes:
    """Encode a non-negative integer as an unsigned LEB128 varint."""
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _check_version(cid_version: int) -> int:
    if type(cid_version) is not int or cid_version not in (0, 1):
        raise ValueError(f"cid_version must be 0 or 1, not {cid_version!r}")
    return cid_version


@dataclass(frozen=True, slots=True)
class _Link:
    """What a parent needs to know about one child."""

    cid: bytes  # binary CID (a bare multihash for CIDv0)
    tsize: int  # serialized size of the child's whole subtree
    filesize: int  # file bytes under the child


def _b58encode(raw: bytes) -> str:
    number = int.from_bytes(raw, "big")
    chars: list[str] = []
    while number:
        number, rem = divmod(number, 58)
        chars.append(_B58_ALPHABET[rem])
    zeros = len(raw) - len(raw.lstrip(b"\x00"))
    return "1" * zeros + "".join(reversed(chars))


def _b58decode(text: str) -> bytes:
    number = 0
    for ch in text:
        number = number * 58 + _B58_INDEX[ch]
    zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\x00" * zeros + body


def _render(cid: bytes, cid_version: int) -> str:
    if cid_version == 0:
        return _b58encode(cid)
    return "b" + base64.b32encode(cid).decode("ascii").rstrip("=").lower()


class CidBuilder:
    """Streams bytes in and yields the CID ``ipfs add`` would give them.

    Feed the content with `update` in pieces of any size, then call `finalize`.
    Memory stays bounded whatever the content's size: one chunk of buffered
    bytes plus at most `MAX_LINKS` pending link entries per tree level.
    """

    def __init__(self, cid_version: int = 0) -> None:
        """Start an empty builder for CIDv0 (the default) or CIDv1."""
        self._version = _check_version(cid_version)
        self._buffer = bytearray()
        self._size = 0
        # _levels[0] holds leaves waiting for a parent, _levels[1] their parents, ...
        self._levels: list[list[_Link]] = []
        self._result: str | None = None

    @property
    def size(self) -> int:
        """Number of content bytes fed so far."""
        return self._size

    def update(self, data: bytes | bytearray | memoryview) -> None:
        """Feed the next piece of content; pieces may have any size."""
        if self._result is not None:
            raise RuntimeError("CidBuilder.update() called after finalize()")
        view = memoryview(data)
        if view.ndim != 1 or view.format != "B":
            view = view.cast("B")
        self._size += view.nbytes
        pos, end = 0, view.nbytes
        while pos < end:
            if not self._buffer and end - pos >= CHUNK_SIZE:
                self._add_leaf(view[pos : pos + CHUNK_SIZE])
                pos += CHUNK_SIZE
                continue
            take = min(CHUNK_SIZE - len(self._buffer), end - pos)
            self._buffer += view[pos : pos + take]
            pos += take
            if len(self._buffer) == CHUNK_SIZE:
                self._add_leaf(self._buffer)
                self._buffer = bytearray()

    def finalize(self) -> str:
        """Return the root CID of everything fed; later calls return the same."""
        if self._result is not None:
            return self._result
        if self._buffer:
            self._add_leaf(self._buffer)
            self._buffer = bytearray()
        # Empty content is one leaf with no data at all.
        root = self._empty_leaf() if not self._levels else self._close_levels()
        self._levels = []
        self._result = _render(root.cid, self._version)
        return self._result

    # -- leaves ---------------------------------------------------------------

    def _add_leaf(self, chunk: bytes | bytearray | memoryview) -> None:
        length = len(chunk)
        digest = hashlib.sha256()
        if self._version == 1:
            digest.update(chunk)
            cid = bytes((1, _CODEC_RAW, _SHA2_256, _SHA2_256_LEN)) + digest.digest()
            self._push(0, _Link(cid, length, length))
            return
        unixfs_len = (
            len(_UNIXFS_TYPE_FILE)
            + len(_UNIXFS_DATA)
            + len(_varint(length))
            + length
            + len(_UNIXFS_FILESIZE)
            + len(_varint(length))
        )
        header = _PB_NODE_DATA + _varint(unixfs_len) + _UNIXFS_TYPE_FILE + _UNIXFS_DATA + _varint(length)
        trailer = _UNIXFS_FILESIZE + _varint(length)
        digest.update(header)
        digest.update(chunk)
        digest.update(trailer)
        node_len = len(header) + length + len(trailer)
        self._push(0, _Link(self._node_cid(digest.digest()), node_len, length))

    def _empty_leaf(self) -> _Link:
        if self._version == 1:
            digest = hashlib.sha256(b"").digest()
            return _Link(bytes((1, _CODEC_RAW, _SHA2_256, _SHA2_256_LEN)) + digest, 0, 0)
        unixfs = _UNIXFS_TYPE_FILE + _UNIXFS_FILESIZE + _varint(0)
        node = _PB_NODE_DATA + _varint(len(unixfs)) + unixfs
        return _Link(self._node_cid(hashlib.sha256(node).digest()), len(node), 0)

    # -- internal nodes -------------------------------------------------------

    def _node_cid(self, sha256_digest: bytes) -> bytes:
        multihash = bytes((_SHA2_256, _SHA2_256_LEN)) + sha256_digest
        if self._version == 0:
            return multihash
        return bytes((1, _CODEC_DAG_PB)) + multihash

    def _build_node(self, children: list[_Link]) -> _Link:
        """Serialize one internal dag-pb node over `children` and link to it."""
        filesize = sum(child.filesize for child in children)
        unixfs = bytearray(_UNIXFS_TYPE_FILE + _UNIXFS_FILESIZE + _varint(filesize))
        for child in children:
            unixfs += _UNIXFS_BLOCKSIZE + _varint(child.filesize)
        node = bytearray()
        for child in children:
            link = (
                _PB_LINK_HASH
                + _varint(len(child.cid))
                + child.cid
                + _PB_LINK_EMPTY_NAME
                + _PB_LINK_TSIZE
                + _varint(child.tsize)
            )
            node += _PB_NODE_LINK + _varint(len(link)) + link
        node += _PB_NODE_DATA + _varint(len(unixfs)) + unixfs
        tsize = len(node) + sum(child.tsize for child in children)
        return _Link(self._node_cid(hashlib.sha256(node).digest()), tsize, filesize)

    def _push(self, level: int, link: _Link) -> None:
        """Queue `link` at `level`, folding full levels into their parent."""
        while True:
            if level == len(self._levels):
                self._levels.append([])
            pending = self._levels[level]
            pending.append(link)
            if len(pending) < MAX_LINKS:
                return
            # A full node: its place in the balanced tree can no longer change.
            link = self._build_node(pending)
            self._levels[level] = []
            level += 1

    def _close_levels(self) -> _Link:
        """Wrap every partial level bottom-up; the top level becomes the root.

        Kubo's balanced builder never collapses a node with a single child below
        the root: a trailing partial subtree is a chain of one-link nodes down to
        its leaves. Only the topmost level, when it holds a single entry and
        nothing arrives from below, is the root itself (a lone leaf, or a full
        node).
        """
        carry: _Link | None = None
        top = len(self._levels) - 1
        for level, pending in enumerate(self._levels):
            entries = pending if carry is None else [*pending, carry]
            if level == top:
                return entries[0] if len(entries) == 1 else self._build_node(entries)
            carry = self._build_node(entries) if entries else None
        raise AssertionError("unreachable: the top level always returns")


def cid_of_bytes(data: bytes, cid_version: int = 0) -> str:
    """Return the CID ``ipfs add`` would give a file holding `data`."""
    builder = CidBuilder(cid_version)
    builder.update(data)
    return builder.finalize()


def cid_of_file(path: str | os.PathLike[str], cid_version: int = 0) -> str:
    """Return the CID ``ipfs add`` would give the file at `path`, read in 1 MiB pieces."""
    builder = CidBuilder(cid_version)
    buffer = bytearray(_READ_SIZE)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as handle:
        while True:
            count = handle.readinto(view)
            if not count:
                break
            builder.update(view[:count])
    return builder.finalize()


# -- validation ---------------------------------------------------------------


def _invalid(reason: str) -> InvalidCidError:
    return InvalidCidError(reason, field="cid")


def _read_varint(raw: bytes, pos: int) -> tuple[int, int]:
    """Decode a minimal unsigned varint (at most 9 bytes) at `pos`."""
    value = 0
    for index in range(9):
        if pos + index >= len(raw):
            raise _invalid("truncated varint")
        byte = raw[pos + index]
        value |= (byte & 0x7F) << (7 * index)
        if not byte & 0x80:
            if byte == 0 and index > 0:
                raise _invalid("non-minimal varint")
            return value, pos + index + 1
    raise _invalid("varint too long")


def _validate_v0(text: str) -> None:
    if len(text) != _CIDV0_TEXT_LEN or any(ch not in _B58_INDEX for ch in text):
        raise _invalid("a CIDv0 is 'Qm' followed by 44 base58btc characters")
    raw = _b58decode(text)
    if len(raw) != 2 + _SHA2_256_LEN or raw[0] != _SHA2_256 or raw[1] != _SHA2_256_LEN:
        raise _invalid("a CIDv0 must hold a sha2-256 multihash")


def _validate_v1_base32(text: str) -> None:
    body = text[1:]
    if not body or any(ch not in _B32_ALPHABET for ch in body):
        raise _invalid("a base32 CIDv1 uses only the characters a-z and 2-7")
    if len(body) % 8 in (1, 3, 6):
        raise _invalid("impossible base32 length")
    try:
        raw = base64.b32decode(body.upper() + "=" * (-len(body) % 8))
    except ValueError as exc:  # binascii.Error is a ValueError
        raise _invalid("undecodable base32") from exc
    if base64.b32encode(raw).decode("ascii").rstrip("=").lower() != body:
        raise _invalid("non-canonical base32 (stray trailing bits)")
    version, pos = _read_varint(raw, 0)
    if version != 1:
        raise _invalid("a 'b…' CID must be version 1")
    _codec, pos = _read_varint(raw, pos)
    hash_code, pos = _read_varint(raw, pos)
    length, pos = _read_varint(raw, pos)
    if not 1 <= length <= _MAX_DIGEST_LEN or len(raw) - pos != length:
        raise _invalid("multihash digest length does not match")
    if hash_code == _SHA2_256 and length != _SHA2_256_LEN:
        raise _invalid("a sha2-256 digest is 32 bytes")


def validate_cid(text: str) -> str:
    """Return `text` unchanged if it is a well-formed CID, else raise.

    Accepted: a CIDv0 (``Qm`` + 44 base58btc characters decoding to a sha2-256
    multihash) or a CIDv1 in multibase base32 lower case (``b…``: version 1, a
    codec, then a multihash whose digest length matches). Anything else, including
    strings over 128 characters, raises `InvalidCidError` with ``field="cid"``.
    """
    if not isinstance(text, str):
        raise _invalid("a CID must be a string")
    if not text:
        raise _invalid("empty CID")
    if len(text) > _MAX_CID_TEXT:
        raise _invalid(f"a CID is at most {_MAX_CID_TEXT} characters")
    if text.startswith("Qm"):
        _validate_v0(text)
    elif text.startswith("b"):
        _validate_v1_base32(text)
    else:
        raise _invalid("not a CIDv0 ('Qm…') or base32 CIDv1 ('b…')")
    return text
