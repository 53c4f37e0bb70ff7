"""Recipes: YAML text → one validated model, with errors that point at the line.

Two YAML forms are accepted, as the original engine had both: the L1 form (`inputs`,
`steps`, `output`) and the engine form (`dag: {nodes, output}`), with the engine's
spellings of a step translated to the canonical one (`recipe_engine`). The engine's
newer S-expression form (`(recipe "name" …)`, `recipe_sexp`) is translated to the L1
form's data and validated here the same way. A recipe is data: no paths, no code.
Every error names the step, the field and the line and column.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator, Mapping
from functools import cached_property
from typing import Any, Literal, Protocol

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from artdag_common.cid import cid_of_bytes, validate_cid
from artdag_common.errors import InvalidCidError, InvalidInputError, SyntaxInputError, field_path, first_problem
from artdag_common.ids import canonical_json
from artdag_common.operations import BINDABLE_FEATURES, get_operation
from artdag_common.recipe_engine import CanonicalStep, canonical_step

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
MAX_RECIPE_BYTES = 1024 * 1024


class RecipeRef(BaseModel):
    """How a user names a stored recipe: its CID, its name (the newest version they can see), or
    `name@cid` (that exact version, which must carry that name)."""

    model_config = ConfigDict(frozen=True)

    name: str | None = None
    cid: str | None = None

    @classmethod
    def parse(cls, text: str, field: str = "recipe_id") -> RecipeRef:
        """`text` as a reference, or `InvalidInputError` naming `field` and the three forms."""
        if not isinstance(text, str) or len(text) > 200:
            raise InvalidInputError("a recipe is named by its CID, its name, or name@cid", field=field)
        name, at, cid = text.rpartition("@")
        if not at:
            name, cid = "", text
        try:
            if not name or NAME_RE.match(name):
                return cls(name=name or None, cid=validate_cid(cid))
        except InvalidCidError:
            pass
        if not at and NAME_RE.match(text):
            return cls(name=text)
        raise InvalidInputError(
            f"{text[:80]!r} names no recipe: give its CID, its name (letters, digits, '_', '-'), or name@cid",
            field=field,
        )

    def __str__(self) -> str:
        return f"{self.name}@{self.cid}" if self.name and self.cid else self.cid or self.name or ""


MAX_STEPS = 10_000
InputType = Literal["video", "audio", "image", "any"]

_Path = tuple[str | int, ...]


class RecipeInput(BaseModel):
    """A named input the caller binds to content when running the recipe."""

    model_config = ConfigDict(frozen=True)

    name: str
    type: InputType = "video"
    description: str = ""
    list: bool = False  # bound to several cids (comma-separated): a SOURCE_LIST
    # A named asset (`artdag asset add NAME FILE`) bound when the run gives no cid: resolved to its CID at
    # submission, so step ids never depend on the name.
    asset: str | None = Field(default=None, pattern=NAME_RE.pattern)


class RecipeStep(BaseModel):
    """One node: its id, operation, ordered inputs and validated config."""

    model_config = ConfigDict(frozen=True)

    id: str
    type: str
    inputs: tuple[str, ...] = ()
    config: dict[str, Any] = Field(default_factory=dict)


class Recipe(BaseModel):
    """A validated recipe; steps are in topological order."""

    model_config = ConfigDict(frozen=True)

    name: str
    version: str = "1.0"
    description: str = ""
    inputs: dict[str, RecipeInput]
    steps: tuple[RecipeStep, ...]
    output: str
    owner: str | None = Field(default=None, description="the owner the recipe names (the original's `owner`)")
    registry: dict[str, dict[str, Any]] | None = Field(
        default=None, description="the original's `registry` of named assets and effects: {assets, effects}"
    )

    def canonical(self) -> dict[str, Any]:
        """The recipe's meaning, independent of YAML layout, comments and key order."""
        data = self.model_dump(mode="json")
        for key in _UNLESS_GIVEN:
            if data[key] is None:
                del data[key]  # so a recipe without them keeps the id it always had
        return data

    # Set on a recipe whose users' effect names were resolved for a run (`parse_recipe(…, effect_names=)`):
    # it is still the recipe as written (a stored recipe, which its runs name), its steps with the CIDs.
    _written_id: str | None = PrivateAttr(default=None)

    @cached_property
    def recipe_id(self) -> str:
        """The cid of the recipe's canonical JSON (worked out once: a big recipe takes a while); for one
        whose effect names were resolved, the id of the recipe as written."""
        if self._written_id is not None:
            return self._written_id
        return cid_of_bytes(canonical_json(self.canonical()))


_UNLESS_GIVEN = ("owner", "registry")
REGISTRY_KINDS = ("assets", "effects")
REGISTRY_ENTRY_KEYS = ("hash", "cid", "url")

_STR_TAG = "tag:yaml.org,2002:str"
_DEFAULT_TAGS = {
    yaml.ScalarNode: _STR_TAG,
    yaml.SequenceNode: "tag:yaml.org,2002:seq",
    yaml.MappingNode: "tag:yaml.org,2002:map",
}
# Characters a plain scalar can start with and be something other than a string (bool, int,
# float, null, timestamp, merge, value): any other first character makes a string.
_IMPLICIT_FIRST = frozenset(yaml.SafeLoader.yaml_implicit_resolvers)


class _FastResolver:
    """SafeLoader's tag resolution with the common case first: a plain scalar whose first character
    no implicit type can start with is a string (libyaml's composer asks for every node)."""

    def resolve(self, kind: type[yaml.Node], value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is not yaml.ScalarNode or not implicit[0] or (value and value[0] not in _IMPLICIT_FIRST):
            return _DEFAULT_TAGS[kind]
        tag: str = yaml.SafeLoader.resolve(self, kind, value, implicit)  # type: ignore[arg-type,no-untyped-call]
        return tag

    # Path resolvers are never registered for the safe loader (checked below): nothing to track.
    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        pass

    def ascend_resolver(self) -> None:
        pass


# libyaml's parser when PyYAML was built with it (the wheels are): a big recipe parses ~10× faster.
if hasattr(yaml, "CSafeLoader") and not yaml.SafeLoader.yaml_path_resolvers:

    class _CNodeLoader(_FastResolver, yaml.CSafeLoader):
        pass

    _NodeLoader: type[Any] = _CNodeLoader  # libyaml's loaders do not subclass SafeLoader
else:  # pragma: no cover - PyYAML without libyaml
    _NodeLoader = yaml.SafeLoader


def _compose(loader_type: type[Any], text: str) -> yaml.Node | None:
    loader = loader_type(text)
    try:
        node: yaml.Node | None = loader.get_single_node()
        return node
    finally:
        loader.dispose()


# libyaml refuses documents nested over 1,000 levels; a recipe needs a handful (config values
# are at most a few levels down), and a recursive alias (`&a [*a]`) would nest forever.
MAX_NESTING = 64


def _position(node: yaml.Node) -> str:
    return f"line {node.start_mark.line + 1}, column {node.start_mark.column + 1}"


class _ExpansionError(Exception):
    """The document expands to more values, or nests deeper, than any honest recipe does."""


class _Located:
    """YAML → Python, keeping the node tree to say where a value stood (only errors ask)."""

    def __init__(self, text: str) -> None:
        try:
            node = _compose(_NodeLoader, text)
        except yaml.MarkedYAMLError as fast_error:
            if _NodeLoader is yaml.SafeLoader:
                raise
            # The pure-Python parser points at bad YAML more precisely (where the problem starts,
            # not where libyaml gave up): errors are rare, so ask it for the message. It recurses
            # where libyaml counts: on deep nesting, libyaml's own message stands.
            try:
                node = _compose(yaml.SafeLoader, text)
            except RecursionError:
                raise fast_error from None
        self.root = node
        self.loader = yaml.SafeLoader("")
        # Aliases let a few bytes stand for an exponential tree ("billion laughs"): a recipe
        # without them has fewer values than bytes, so this leaves room for honest reuse.
        self.budget = 100_000 + len(text)
        self.value = None if node is None else self._build(node)

    def _build(self, node: yaml.Node, depth: int = 0) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise _ExpansionError("recipe expands to too many values (YAML aliases repeat too much)")
        if isinstance(node, yaml.ScalarNode):
            return node.value if node.tag == _STR_TAG else self._scalar(node)
        if depth >= MAX_NESTING:
            raise _ExpansionError(
                f"recipe nests deeper than {MAX_NESTING} levels, or a YAML alias refers to a value"
                f" that holds it ({_position(node)})"
            )
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self._build(key_node, depth + 1)
                if not isinstance(key, str):
                    raise _error(f"key {key!r} must be a string", self.path_of(node), self, key_node)
                if key in out:
                    raise _error(f"duplicate key {key!r}", (*self.path_of(node), key), self, key_node)
                out[key] = self._build(value_node, depth + 1)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self._build(item, depth + 1) for item in node.value]
        return self.loader.construct_object(node, deep=True)

    def _scalar(self, node: yaml.ScalarNode) -> Any:
        """A typed scalar (int, float, bool, null, timestamp…); one PyYAML cannot make is a bad value."""
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, ArithmeticError):
            # `!!int abc`, a 5,000-digit integer (over Python's conversion limit), `2026-13-45`…
            kind = str(node.tag).rsplit(":", 1)[-1]
            text = node.value if len(node.value) <= 40 else node.value[:37] + "..."
            raise _error(f"{text!r} is not a valid {kind}", self.path_of(node), self, node) from None

    def path_of(self, target: yaml.Node) -> _Path:
        """Where `target` stands in the document (a depth-first search: only errors need it)."""
        stack: list[tuple[yaml.Node, _Path]] = [(self.root, ())] if self.root is not None else []
        seen: set[int] = set()  # aliases share nodes, and may even loop
        while stack:
            node, path = stack.pop()
            if node is target:
                return path
            if id(node) in seen:
                continue
            seen.add(id(node))
            if isinstance(node, yaml.MappingNode):
                stack.extend((value, (*path, key.value)) for key, value in node.value if isinstance(key.value, str))
            elif isinstance(node, yaml.SequenceNode):
                stack.extend((item, (*path, i)) for i, item in enumerate(node.value))
        return ()

    def where(self, path: _Path) -> str:
        """Line and column of the value at `path`, or of the nearest enclosing one that exists."""
        node = self.root
        for part in path:
            found = None
            if isinstance(node, yaml.MappingNode) and isinstance(part, str):
                found = next((value for key, value in node.value if key.value == part), None)
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
                found = node.value[part]
            if found is None:
                break
            node = found
        return "line 1, column 1" if node is None else _position(node)


class RecipeSource(Protocol):
    """A recipe's data in the L1 form, and where in its text each part was written."""

    @property
    def value(self) -> Any: ...

    def where(self, path: _Path) -> str:
        """Line and column ("line L, column C") of the value at `path`, or of the nearest enclosing one."""
        ...


def _error(
    message: str, path: _Path, located: RecipeSource | None, node: yaml.Node | None = None, step: str | None = None
) -> InvalidInputError:
    if node is not None:
        where = _position(node)
    elif located is not None:
        where = located.where(path)
    else:
        where = ""
    prefix = f"step {step!r}: " if step else ""
    suffix = f" ({where})" if where else ""
    return InvalidInputError(f"{prefix}{message}{suffix}", field=field_path(path) or "recipe")


def user_effects_named(text: str, *, max_bytes: int = MAX_RECIPE_BYTES) -> set[str]:
    """The user effects (CIDs of effect sources) a recipe's text names, for loading before it is parsed.

    Text that is too large or not YAML names none: `parse_recipe` says what is wrong with it.
    """
    from artdag_effects.user import effect_cids

    if len(text.encode("utf-8")) > max_bytes or not any(mark in text for mark in ("Qm", "bafy", "bafk")):
        return set()  # no CID anywhere in it: nothing to read twice
    if is_sexp_recipe(text):
        from artdag_common.recipe_sexp import sexp_effects_named

        return sexp_effects_named(text)
    try:
        return effect_cids(_Located(text).value)
    except (_ExpansionError, yaml.YAMLError, RecursionError):
        return set()


# `effect: NAME` as YAML spells it in a line (quoted or not, in a block or a flow mapping).
_EFFECT_KEY = re.compile(r"""\beffect["']?[ \t]*:[ \t]*["']?([A-Za-z0-9_-]*)""")


def _user_named(value: Any) -> bool:
    """Whether an `effect:` value is a name a user gave an effect: name-shaped, no built-in's, no CID."""
    if not isinstance(value, str) or not NAME_RE.match(value):
        return False
    from artdag_effects.registry import builtin_names

    if value in builtin_names():
        return False
    try:
        validate_cid(value)
    except InvalidCidError:
        return True
    return False


def _effect_values(raw: Any) -> Iterator[Any]:
    """Every value under an `effect` key, at any depth of a recipe's data."""
    stack = [raw]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "effect" and not isinstance(item, dict | list):
                    yield item
                else:
                    stack.append(item)
        elif isinstance(value, list):
            stack.extend(value)


def user_effect_names(text: str, *, max_bytes: int = MAX_RECIPE_BYTES) -> set[str]:
    """The names of users' effects a recipe's text gives as `effect:` (no built-in's, no CID), for the planner
    to resolve to CIDs (`parse_recipe(text, effect_names=…)`) for the user who runs it.

    A text whose every `effect:` is a built-in or a CID is not parsed twice. Text that is too large or
    unreadable names none: `parse_recipe` says what is wrong with it.
    """
    if len(text.encode("utf-8")) > max_bytes or "effect" not in text:
        return set()
    sexp = is_sexp_recipe(text)
    if not sexp and all(v and not _user_named(v) for v in _EFFECT_KEY.findall(text)):
        return set()
    try:
        if sexp:
            from artdag_common.recipe_sexp import read_sexp_recipe

            raw = read_sexp_recipe(text).value
        else:
            raw = _Located(text).value
    except (InvalidInputError, _ExpansionError, yaml.YAMLError, RecursionError):
        return set()
    return {value for value in _effect_values(raw) if _user_named(value)}


def parse_recipe(
    text: str, *, max_bytes: int = MAX_RECIPE_BYTES, effect_names: Mapping[str, str] | None = None
) -> Recipe:
    """Parse and validate a recipe; raises `InvalidInputError` naming field and position.

    A step's `effect:` may be a name a user gave an effect (not a built-in's, not a CID). Without
    `effect_names` such a step is kept as written (a stored recipe names effects for whoever runs it;
    its params are checked once the name is resolved); with them (name → CID, for the user who runs
    it) each becomes its CID, so its step is the one naming the CID gives, and a name not among them
    is an error naming the step.
    """
    if len(text.encode("utf-8")) > max_bytes:
        raise InvalidInputError(f"recipe is larger than {max_bytes} bytes", field="recipe")
    if is_sexp_recipe(text):
        from artdag_common.recipe_sexp import read_sexp_recipe

        return build_recipe(read_sexp_recipe(text), effect_names)
    try:
        located = _Located(text)
    except _ExpansionError as exc:
        raise InvalidInputError(str(exc), field="recipe") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise SyntaxInputError(f"not valid YAML: {exc.problem or exc}{where}", field="recipe") from exc
    except yaml.YAMLError as exc:
        raise SyntaxInputError(f"not valid YAML: {exc}", field="recipe") from exc
    return build_recipe(located, effect_names)


def is_sexp_recipe(text: str) -> bool:
    """Whether `text` is an S-expression recipe: its first character, after blanks and `;` comments, is `(`
    (no YAML recipe starts so: a YAML document that does is a plain string)."""
    at = 0
    while at < len(text):
        if text[at] == ";":
            at = text.find("\n", at)
            if at == -1:
                return False
        elif not text[at].isspace():
            return text[at] == "("
        at += 1
    return False


def build_recipe(source: RecipeSource, effect_names: Mapping[str, str] | None = None) -> Recipe:
    """Validate L1-form recipe data (from YAML or an S-expression) into a `Recipe`; errors name where.
    `effect_names`: as `parse_recipe` takes them."""
    recipe = _RecipeBuilder(source, effect_names).build()
    if effect_names and any(_user_named(value) for value in _effect_values(source.value)):
        written = _RecipeBuilder(source, None).build()
        recipe._written_id = written.recipe_id
    return recipe


class _RecipeBuilder:
    def __init__(self, located: RecipeSource, effect_names: Mapping[str, str] | None = None) -> None:
        self.located = located
        self.effect_names = effect_names
        self.analysis_refs: dict[str, tuple[_Path, dict[str, dict[str, Any]]]] = {}
        self.written: dict[str, tuple[_Path, CanonicalStep]] = {}  # step id → where it stands, as written

    def input_path(self, step_id: str, index: int) -> _Path:
        """Where a step's input `index` (of its canonical inputs) was written."""
        spath, written = self.written[step_id]
        return (*spath, *written.input_path(index))

    def fail(self, message: str, path: _Path, step: str | None = None) -> InvalidInputError:
        return _error(message, path, self.located, step=step)

    def _str(self, raw: dict[str, Any], key: str, default: str, path: _Path) -> str:
        value = raw.get(key, default)
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise self.fail("must be a string", (*path, key))
        return value

    def build(self) -> Recipe:
        raw = self.located.value
        if not isinstance(raw, dict):
            raise self.fail("a recipe must be a YAML mapping", ())
        allowed = {"name", "version", "description", "owner", "inputs", "steps", "output", "dag", "registry"}
        for key in raw:
            if key not in allowed:
                raise self.fail(f"unknown field {key!r} (expected one of {', '.join(sorted(allowed))})", (key,))
        name = self._str(raw, "name", "unnamed", ())
        if not NAME_RE.match(name):
            raise self.fail("name must be letters, digits, '_' or '-' (at most 64)", ("name",))
        inputs = self._inputs(raw.get("inputs"))
        steps_path: _Path = ("steps",)
        output_path: _Path = ("output",)
        raw_steps, output = raw.get("steps"), raw.get("output")
        if "dag" in raw:
            if "steps" in raw:
                raise self.fail("use either 'steps' or 'dag', not both", ("dag",))
            dag = raw["dag"]
            if not isinstance(dag, dict):
                raise self.fail("must be a mapping with 'nodes' and 'output'", ("dag",))
            raw_steps, output = dag.get("nodes"), dag.get("output")
            steps_path, output_path = ("dag", "nodes"), ("dag", "output")
        steps = self._steps(raw_steps, steps_path, inputs)
        if not isinstance(output, str) or not output:
            raise self.fail("missing: name the step whose result is the recipe's output", output_path)
        ids = {s.id for s in steps}
        if output not in ids:
            raise self.fail(f"output {output!r} is not a step of this recipe", output_path)
        ordered = self._topological(steps, steps_path, set(inputs))
        self._check_kinds(ordered, inputs)
        self._check_analysis_refs(steps, steps_path)
        return Recipe(
            name=name,
            version=self._str(raw, "version", "1.0", ()),
            description=self._str(raw, "description", "", ()),
            inputs=inputs,
            steps=tuple(ordered),
            output=output,
            owner=self._str(raw, "owner", "", ()) or None,
            registry=self._registry(raw.get("registry")),
        )

    def _registry(self, raw: Any) -> dict[str, dict[str, Any]] | None:
        """The original's `registry` (`assets`, `effects`: name → hash, or {hash, cid, url}), kept as data.

        Shown with the recipe; steps do not read it (`SOURCE {asset: NAME}` names this server's assets).
        """
        if raw is None or raw == {}:
            return None
        if not isinstance(raw, dict):
            raise self.fail("must be a mapping with assets and effects", ("registry",))
        out: dict[str, dict[str, Any]] = {}
        for kind, entries in raw.items():
            if kind not in REGISTRY_KINDS:
                raise self.fail(f"unknown field {kind!r} (a registry has assets and effects)", ("registry", kind))
            if entries is None:
                entries = {}
            if not isinstance(entries, dict):
                raise self.fail("must be a mapping of names to {hash, url} or a hash", ("registry", kind))
            for name, entry in entries.items():
                where: _Path = ("registry", kind, name)
                if not NAME_RE.match(name):
                    raise self.fail("a name is letters, digits, '_' or '-' (at most 64)", where)
                if isinstance(entry, str):
                    continue
                if not isinstance(entry, dict):
                    raise self.fail("must be a hash, or a mapping with hash, cid and url", where)
                for key, value in entry.items():
                    if key not in REGISTRY_ENTRY_KEYS:
                        raise self.fail(
                            f"unknown field {key!r} (expected one of {', '.join(REGISTRY_ENTRY_KEYS)})", (*where, key)
                        )
                    if not isinstance(value, str):
                        raise self.fail("must be a string", (*where, key))
            out[kind] = entries
        return out

    def _check_kinds(self, ordered: list[RecipeStep], inputs: dict[str, RecipeInput]) -> None:
        """Audio must not flow into a slot that needs video (RESIZE of a song, say)."""
        kinds: dict[str, str] = {name: spec.type for name, spec in inputs.items()}
        lists = {name for name, spec in inputs.items() if spec.list}
        for step in ordered:
            op = get_operation(step.type)
            if op is None:  # pragma: no cover - checked when the step was read
                continue
            if op.node_type == "SOURCE":
                kinds[step.id] = kinds.get(str(step.config.get("input")), "any")
                if step.config.get("input") in lists:
                    lists.add(step.id)
                continue
            for j, ref in enumerate(step.inputs):
                where = self.input_path(step.id, j)
                if ref in lists and not op.takes_lists:
                    raise self.fail(
                        f"{ref!r} is a list; {op.node_type} takes single clips (MAP over it, or SEQUENCE it)",
                        where,
                        step.id,
                    )
                if op.node_type == "MAP" and ref not in lists:
                    raise self.fail(
                        f"MAP needs a list (a list input, SEGMENT_AT, another MAP), not {ref!r}", where, step.id
                    )
            if op.node_type in ("SEGMENT_AT", "MAP"):
                lists.add(step.id)
            for j, ref in enumerate(step.inputs):
                needs_video = op.video_slots == "all" or (op.video_slots == "first" and j == 0)
                if needs_video and kinds.get(ref) == "audio":
                    raise self.fail(
                        f"input {ref!r} is audio, but {op.node_type} needs video there",
                        self.input_path(step.id, j),
                        step.id,
                    )
            if op.output_media_type.startswith("audio/"):
                kinds[step.id] = "audio"
            elif op.video_slots == "none" and step.inputs:
                kinds[step.id] = kinds.get(step.inputs[0], "any")  # SEGMENT keeps its input's kind
            else:
                kinds[step.id] = "video"

    def _inputs(self, raw: Any) -> dict[str, RecipeInput]:
        if raw is None:
            return {}
        items: list[tuple[str, Any, _Path]] = []
        if isinstance(raw, dict):
            items = [(k, v, ("inputs", k)) for k, v in raw.items()]
        elif isinstance(raw, list):
            items = [(v, None, ("inputs", i)) for i, v in enumerate(raw)]
        else:
            raise self.fail("must be a mapping of input names to {type, description}", ("inputs",))
        out: dict[str, RecipeInput] = {}
        for name, spec, path in items:
            if not isinstance(name, str) or not NAME_RE.match(name):
                raise self.fail("input names must be letters, digits, '_' or '-'", path)
            if spec is None:
                spec = {}
            elif isinstance(spec, str):
                spec = {"type": spec}
            if not isinstance(spec, dict):
                raise self.fail("must be a mapping with 'type' and 'description'", path)
            try:
                out[name] = RecipeInput(name=name, **spec)
            except ValidationError as exc:
                message, loc = first_problem(exc)
                raise self.fail(message, (*path, *map(str, loc))) from None
            except TypeError:
                raise self.fail("unexpected field", path) from None
        return out

    def _steps(self, raw: Any, path: _Path, inputs: dict[str, RecipeInput]) -> list[RecipeStep]:
        if not isinstance(raw, list) or not raw:
            raise self.fail("must be a non-empty list of steps", path)
        if len(raw) > MAX_STEPS:
            raise self.fail(f"at most {MAX_STEPS} steps", path)
        steps: list[RecipeStep] = []
        seen: set[str] = set()
        # Engine-form sources with `input: true` declare their input by their id; `asset: NAME` declares
        # one bound to that named asset.
        for item in raw:
            if isinstance(item, dict) and str(item.get("type", "")).upper() == "SOURCE":
                config = item.get("config") or {}
                if not isinstance(config, dict) or not isinstance(item.get("id"), str):
                    continue
                if config.get("input") is True:
                    inputs.setdefault(
                        item["id"], RecipeInput(name=item["id"], description=str(config.get("description", "")))
                    )
                elif "asset" in config:
                    asset = config["asset"]
                    if not isinstance(asset, str) or not NAME_RE.match(asset):
                        where = (*path, raw.index(item), "config", "asset")
                        raise self.fail("an asset name is letters, digits, '_' or '-' (at most 64)", where)
                    kind = config.get("type", "any")
                    if kind not in ("video", "audio", "image", "any"):
                        raise self.fail(
                            "type is video, audio, image or any", (*path, raw.index(item), "config", "type")
                        )
                    inputs.setdefault(item["id"], RecipeInput(name=item["id"], type=kind, asset=asset))
            elif isinstance(item, dict) and str(item.get("type", "")).upper() == "SOURCE_LIST":
                self._declare_list(item, (*path, raw.index(item)), inputs)
        kind_of = self._kind_of(raw, inputs)
        for i, item in enumerate(raw):
            spath = (*path, i)
            if not isinstance(item, dict):
                raise self.fail("a step must be a mapping with id, type, inputs and config", spath)
            for key in item:
                if key not in {"id", "type", "inputs", "config", "name"}:
                    raise self.fail(f"unknown field {key!r}", (*spath, key))
            step_id = item.get("id")
            if not isinstance(step_id, str) or not NAME_RE.match(step_id):
                raise self.fail("id must be letters, digits, '_' or '-' (at most 64)", (*spath, "id"))
            if step_id in seen:
                raise self.fail(f"duplicate step id {step_id!r}", (*spath, "id"))
            if step_id in inputs and str(item.get("type", "")).upper() not in ("SOURCE", "SOURCE_LIST"):
                raise self.fail(f"step id {step_id!r} is also an input name", (*spath, "id"))
            seen.add(step_id)
            written = canonical_step(item, spath, step_id, self.fail, kind_of)
            steps.append(self._step(written, spath, step_id, inputs))
        return steps

    def _declare_list(self, item: dict[str, Any], spath: _Path, inputs: dict[str, RecipeInput]) -> None:
        """A SOURCE_LIST reads a list input: the one named by its id (`input: true` or none), or by `input`."""
        config = item.get("config") or {}
        step_id = item.get("id")
        if not isinstance(config, dict) or not isinstance(step_id, str):
            return
        bound = config.get("input", True)
        if bound is True:
            kind = config.get("type", "video")
            if kind not in ("video", "audio", "image", "any"):
                raise self.fail("type is video, audio, image or any", (*spath, "config", "type"))
            description = self._str(config, "description", "", (*spath, "config"))
            inputs.setdefault(step_id, RecipeInput(name=step_id, type=kind, description=description, list=True))
            bound = step_id
        if isinstance(bound, str) and bound in inputs and not inputs[bound].list:
            raise self.fail(
                f"SOURCE_LIST reads a list: declare input {bound!r} with list: true", (*spath, "config", "input")
            )

    @staticmethod
    def _kind_of(raw: list[Any], inputs: dict[str, RecipeInput]) -> Callable[[str], str]:
        """The declared type of what a step name reads: an input, or the input a SOURCE step reads."""
        reads: dict[str, str] = {}
        for item in raw:
            if isinstance(item, dict) and str(item.get("type", "")).upper() in ("SOURCE", "SOURCE_LIST"):
                config = item.get("config") or {}
                bound = config.get("input") if isinstance(config, dict) else None
                if isinstance(item.get("id"), str):
                    reads[item["id"]] = bound if isinstance(bound, str) else item["id"]

        def kind_of(name: str) -> str:
            spec = inputs.get(reads.get(name, name))
            return spec.type if spec is not None else "any"

        return kind_of

    def _step(self, written: CanonicalStep, spath: _Path, step_id: str, inputs: dict[str, RecipeInput]) -> RecipeStep:
        type_name = written.type
        if not isinstance(type_name, str):
            raise self.fail("type is required", (*spath, "type"), step_id)
        op = get_operation(type_name)
        if op is None or not op.in_recipes:
            raise self.fail(f"unknown node type {type_name!r}", (*spath, "type"), step_id)
        raw_inputs = written.inputs
        if not isinstance(raw_inputs, list) or not all(isinstance(x, str) for x in raw_inputs):
            raise self.fail(
                "inputs must be a list of step or input names (or a mapping of them)", (*spath, "inputs"), step_id
            )
        self.written[step_id] = (spath, written)
        config = written.config
        if not isinstance(config, dict):
            raise self.fail("config must be a mapping", (*spath, "config"), step_id)
        if op.node_type == "SOURCE":
            bound = config.get("input", step_id)
            if bound is True or "asset" in config:
                bound = step_id
            if bound not in inputs:
                raise self.fail(
                    f"source reads unknown input {bound!r}", (*spath, *written.config_path(("input",))), step_id
                )
            config = {"input": bound}
        if not op.min_inputs <= len(raw_inputs) <= op.max_inputs:
            want = str(op.min_inputs) if op.min_inputs == op.max_inputs else f"{op.min_inputs}..{op.max_inputs}"
            raise self.fail(f"{op.node_type} takes {want} input(s), got {len(raw_inputs)}", (*spath, "inputs"), step_id)
        if op.node_type == "EFFECT":
            config = self._named_effect(config, spath, written, step_id)
            config = self._canonical_effect(config, spath, written, step_id)
        elif op.node_type == "MAP" and self.effect_names:
            config = _mapped_effect_cid(config, self.effect_names)
        references = self._analysis_bindings(config, spath, step_id) if op.node_type == "EFFECT" else {}
        if references:
            # Check the effect and the bindings with stand-in data; the planner puts in the real analysis.
            config = {
                **config,
                "bindings": {
                    **config.get("bindings", {}),
                    **{name: placeholder_binding(ref) for name, ref in references.items()},
                },
            }
        if op.node_type == "EFFECT" and self.effect_names is None and _user_named(config.get("effect")):
            normalised = self._as_written(config, spath, written, step_id)
        elif op.node_type == "MAP" and self.effect_names is None and (inner := _mapped_user_effect(config)):
            # The mapped effect is checked once its name is resolved; the rest of the MAP now.
            for key in ("params", "bindings"):
                if not isinstance(inner.get(key, {}), dict):
                    raise self.fail("must be a mapping", (*spath, *written.config_path(("config", key))), step_id)
            try:
                parsed = op.parse_config({**config, "config": {"effect": "identity"}})
            except ValidationError as exc:
                message, loc = first_problem(exc)
                raise self.fail(message, (*spath, *written.config_path(loc)), step_id) from None
            normalised = {**parsed.model_dump(mode="json", exclude_none=True), "config": inner}
        else:
            try:
                parsed = op.parse_config(config)
            except ValidationError as exc:
                message, loc = first_problem(exc)
                raise self.fail(message, (*spath, *written.config_path(loc)), step_id) from None
            normalised = parsed.model_dump(mode="json", exclude_none=True)
        for name, ref in references.items():
            normalised["bindings"][name] = strip_binding_data(normalised["bindings"][name]) | ref_keys(ref)
        self.analysis_refs[step_id] = (spath, references)
        return RecipeStep(id=step_id, type=op.node_type, inputs=tuple(raw_inputs), config=normalised)

    def _named_effect(
        self, config: dict[str, Any], spath: _Path, written: CanonicalStep, step_id: str
    ) -> dict[str, Any]:
        """A user's effect name as its CID (from `effect_names`); kept as written when there are none."""
        name = config.get("effect")
        if self.effect_names is None or not isinstance(name, str) or not _user_named(name):
            return config
        cid = self.effect_names.get(name)
        if cid is None:
            close = difflib.get_close_matches(name, _builtin_names(), n=3, cutoff=0.6)
            hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
            raise self.fail(
                f"no effect named {name!r}: no built-in effect{hint}, nor an effect of yours or a shared one"
                f" (`artdag effect add FILE --name {name}` stores one)",
                (*spath, *written.config_path(("effect",))),
                step_id,
            )
        return {**config, "effect": cid}

    def _as_written(self, config: dict[str, Any], spath: _Path, written: CanonicalStep, step_id: str) -> dict[str, Any]:
        """An EFFECT step naming a user's effect by name, before the name is resolved: only its form checked."""
        for key in ("params", "bindings"):
            if not isinstance(config.get(key, {}), dict):
                raise self.fail("must be a mapping", (*spath, *written.config_path((key,))), step_id)
        return {**config, "params": config.get("params", {}), "bindings": config.get("bindings", {})}

    def _canonical_effect(
        self, config: dict[str, Any], spath: _Path, written: CanonicalStep, step_id: str
    ) -> dict[str, Any]:
        """An original effect name (e.g. pixelsort) and its params as the canonical effect's, bindings included."""
        from artdag_effects.registry import resolve_effect_config  # the effects load only when a recipe has one

        try:
            return resolve_effect_config(config)
        except InvalidInputError as exc:
            loc = tuple((exc.field or "effect").split("."))
            raise self.fail(exc.message, (*spath, *written.config_path(loc)), step_id) from None

    def _analysis_bindings(self, config: dict[str, Any], spath: _Path, step_id: str) -> dict[str, dict[str, Any]]:
        """Bindings that follow an ANALYZE step (`analysis: <step id>, feature: energy`), checked for form."""
        bindings = config.get("bindings") or {}
        if not isinstance(bindings, dict):
            return {}
        found: dict[str, dict[str, Any]] = {}
        for name, binding in bindings.items():
            if not isinstance(binding, dict) or "analysis" not in binding:
                continue
            where = (*spath, "config", "bindings", name)
            analysis, feature = binding.get("analysis"), binding.get("feature")
            if not isinstance(analysis, str) or not NAME_RE.match(analysis):
                raise self.fail("analysis must name an ANALYZE step", (*where, "analysis"), step_id)
            if not isinstance(feature, str) or not (feature in BINDABLE_FEATURES or feature.startswith("spectrum.")):
                raise self.fail(f"feature must be one of {', '.join(BINDABLE_FEATURES)}", (*where, "feature"), step_id)
            found[str(name)] = dict(binding)
        return found

    def _check_analysis_refs(self, steps: list[RecipeStep], path: _Path) -> None:
        """Bindings and BEAT_SYNC must name ANALYZE steps that extract what they need."""
        position = {s.id: i for i, s in enumerate(steps)}
        analyses = {s.id: set(s.config["features"]) for s in steps if s.type == "ANALYZE"}
        for step_id, (spath, references) in self.analysis_refs.items():
            for name, ref in references.items():
                where = (*spath, "config", "bindings", name)
                features = analyses.get(ref["analysis"])
                if features is None:
                    raise self.fail(f"{ref['analysis']!r} is not an ANALYZE step", (*where, "analysis"), step_id)
                needed = feature_source(ref["feature"])
                if not needed & features:
                    raise self.fail(
                        f"ANALYZE step {ref['analysis']!r} does not extract {ref['feature']!r}",
                        (*where, "feature"),
                        step_id,
                    )
        for step in steps:
            if step.type == "SEGMENT_AT":
                source, feature = step.config["times_from"], step.config["feature"]
                where = (*path, position[step.id], "config", "times_from")
                if source not in analyses:
                    raise self.fail(f"{source!r} is not an ANALYZE step", where, step.id)
                if not feature_source(feature) & analyses[source]:
                    raise self.fail(f"ANALYZE step {source!r} does not extract {feature!r}", where, step.id)
            if step.type == "BEAT_SYNC":
                source = step.inputs[1]
                if not {"beats", "tempo"} & analyses.get(source, set()):
                    raise self.fail(
                        f"input {source!r} must be an ANALYZE step with beats",
                        self.input_path(step.id, 1),
                        step.id,
                    )

    def _topological(self, steps: list[RecipeStep], path: _Path, input_names: set[str]) -> list[RecipeStep]:
        by_id = {s.id: (i, s) for i, s in enumerate(steps)}
        for step in steps:
            for j, ref in enumerate(step.inputs):
                if ref not in by_id and ref not in input_names:
                    raise self.fail(
                        f"unknown input {ref!r} (not a step or a recipe input)", self.input_path(step.id, j), step.id
                    )
        order: list[RecipeStep] = []
        state: dict[str, int] = {}  # 1 = visiting, 2 = done

        def visit(step: RecipeStep) -> None:
            # Iterative DFS: a deep chain must not hit Python's recursion limit.
            stack: list[tuple[RecipeStep, int]] = [(step, 0)]
            state[step.id] = 1
            while stack:
                node, k = stack.pop()
                if k < len(node.inputs):
                    stack.append((node, k + 1))
                    ref = node.inputs[k]
                    if ref not in by_id:
                        continue
                    dep = by_id[ref][1]
                    if state.get(dep.id) == 1:
                        raise self.fail(f"cycle through {dep.id!r}", (*path, by_id[node.id][0], "inputs"), node.id)
                    if dep.id not in state:
                        state[dep.id] = 1
                        stack.append((dep, 0))
                else:
                    state[node.id] = 2
                    order.append(node)

        for step in steps:
            if step.id not in state:
                visit(step)
        return order


def _builtin_names() -> list[str]:
    from artdag_effects.registry import builtin_names

    return sorted(builtin_names())


def _mapped_user_effect(config: dict[str, Any]) -> dict[str, Any] | None:
    """A MAP of EFFECT's per-item config when its `effect:` is a user's effect name (else None)."""
    inner = config.get("config")
    if str(config.get("operation", "")).upper() != "EFFECT" or not isinstance(inner, dict):
        return None
    return inner if _user_named(inner.get("effect")) else None


def _mapped_effect_cid(config: dict[str, Any], effect_names: Mapping[str, str]) -> dict[str, Any]:
    """A MAP of EFFECT whose per-item `effect:` is a resolved user's effect name, with its CID instead."""
    inner = config.get("config")
    if str(config.get("operation", "")).upper() != "EFFECT" or not isinstance(inner, dict):
        return config
    name = inner.get("effect")
    if not isinstance(name, str) or name not in effect_names or not _user_named(name):
        return config
    return {**config, "config": {**inner, "effect": effect_names[name]}}


EVENT_FEATURES = frozenset({"onsets", "beats", "downbeats", "scene_changes"})
_BINDING_DATA = ("times", "values", "events")


def feature_source(feature: str) -> set[str]:
    """The ANALYZE features that provide a bindable feature."""
    if feature.startswith("spectrum."):
        return {"spectrum"}
    return {"beats", "tempo"} if feature in ("beats", "downbeats") else {feature}


def placeholder_binding(ref: dict[str, Any]) -> dict[str, Any]:
    """A binding with stand-in data of the right shape, to validate the rest of it."""
    shaped = strip_binding_data({k: v for k, v in ref.items() if k not in ("analysis", "feature")})
    data = {"events": [0.0]} if ref.get("feature") in EVENT_FEATURES else {"times": [0.0], "values": [1.0]}
    return shaped | data


def strip_binding_data(binding: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in binding.items() if k not in _BINDING_DATA}


def ref_keys(ref: dict[str, Any]) -> dict[str, Any]:
    return {"analysis": ref["analysis"], "feature": ref["feature"]}
