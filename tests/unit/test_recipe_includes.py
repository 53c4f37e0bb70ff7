"""S-expression recipes including stored texts by CID: the same recipe as the text written in place,
read from the store verified, and every bad include a clear error saying where."""

from __future__ import annotations

import asyncio

import pytest

from artdag_common.cid import cid_of_bytes
from artdag_common.errors import InvalidInputError, NotFoundError, PayloadTooLargeError
from artdag_common.recipe import parse_recipe
from artdag_common.recipe_includes import (
    MAX_INCLUDE_DEPTH,
    included_text,
    includes_named,
    load_includes,
    register_include,
)

LOOK = """; a look shared by many recipes
(def strength 0.6)
(def look (-> small (effect vignette :strength strength)))
"""

INLINE = """(recipe "looked" :inputs ((video :type video))
  (def small (resize video 320 240 :mode "fit"))
  (def strength 0.6)
  (def look (-> small (effect vignette :strength strength)))
  look)
"""


def cid_of(text: str) -> str:
    return cid_of_bytes(text.encode())


def including(cid: str, before: str = "") -> str:
    return f"""(recipe "looked" :inputs ((video :type video))
  (def small (resize video 320 240 :mode "fit")){before}
  (include look :cid "{cid}")
  look)
"""


class Store:
    """Stored texts by CID, read as a service reads its content store (with a size limit)."""

    def __init__(self, *texts: str) -> None:
        self.blobs = {cid_of(t): t.encode() for t in texts}
        self.reads: list[str] = []

    async def read(self, cid: str, limit: int) -> bytes:
        self.reads.append(cid)
        if cid not in self.blobs:
            raise NotFoundError(f"no content {cid}")
        if len(self.blobs[cid]) > limit:
            raise PayloadTooLargeError("too big")
        return self.blobs[cid]


def load(text: str, store: Store) -> None:
    asyncio.run(load_includes(text, store.read))


def test_an_included_text_is_the_same_recipe_as_written_in_place() -> None:
    cid = cid_of(LOOK)
    load(including(cid), Store(LOOK))
    assert included_text(cid) == LOOK
    inline, included = parse_recipe(INLINE), parse_recipe(including(cid))
    assert included.canonical() == inline.canonical() and included.recipe_id == inline.recipe_id
    assert [s.type for s in included.steps] == ["RESIZE", "EFFECT"]


def test_includes_nest_and_are_read_once() -> None:
    inner = "(def strength 0.3)\n"
    outer = f'(include :cid "{cid_of(inner)}")\n(def look (-> small (effect vignette :strength strength)))\n'
    store = Store(inner, outer)
    recipe = including(cid_of(outer))
    assert includes_named(recipe) == [cid_of(outer)] and includes_named(outer) == [cid_of(inner)]
    load(recipe, store)
    load(recipe, store)  # already held: not read again
    assert sorted(store.reads) == sorted([cid_of(outer), cid_of(inner)])
    assert parse_recipe(recipe).steps[1].config["params"]["strength"] == 0.3


def test_bytes_that_do_not_hash_to_their_cid_are_refused() -> None:
    store = Store()
    wanted = cid_of("(def strength 0.9)\n")
    store.blobs[wanted] = b"(def strength 0.1)\n"  # a store (or provider) handing back other bytes
    with pytest.raises(InvalidInputError, match="do not hash to that CID"):
        load(including(wanted), store)
    assert included_text(wanted) is None


def test_bad_includes_are_clear_errors() -> None:
    missing = cid_of("(def never 1)\n")
    with pytest.raises(InvalidInputError, match="no text with that CID is stored"):
        load(including(missing), Store())
    with pytest.raises(InvalidInputError, match="not S-expressions"):
        register_include(cid_of("(def x"), b"(def x")
    with pytest.raises(InvalidInputError, match="not UTF-8"):
        register_include(cid_of_bytes(b"\xff\xfe"), b"\xff\xfe")
    # Too deep: each text includes the next.
    texts = ["(def strength 0.5)\n"]
    for _ in range(MAX_INCLUDE_DEPTH + 1):
        texts.append(f'(include :cid "{cid_of(texts[-1])}")\n')
    with pytest.raises(InvalidInputError, match="more than 8 levels"):
        load(including(cid_of(texts[-1])), Store(*texts))


def test_an_error_inside_an_included_text_names_the_include_and_where_in_it() -> None:
    bad = "(def strength 0.6)\n(def look (-> small (effect blur :radius (/ strength 0))))\n"
    cid = cid_of(bad)
    load(including(cid), Store(bad))
    with pytest.raises(InvalidInputError) as info:
        parse_recipe(including(cid))
    message = info.value.message
    assert message.startswith(f"line 3, column 3: in include {cid}: line 2, column 54"), message
    assert "division by zero" in message
    # A value at the top of an included text means nothing there.
    stray = "(def strength 0.6)\n42\n"
    load(including(cid_of(stray)), Store(stray))
    with pytest.raises(InvalidInputError, match="holds definitions and steps"):
        parse_recipe(including(cid_of(stray)))
