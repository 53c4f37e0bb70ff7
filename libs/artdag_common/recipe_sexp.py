"""S-expression recipes: the original engine's newer form, translated to the data of the YAML L1 form.

    (recipe "glow" :version "1.0" :description "Bloom that follows the music"
      :inputs ((video :type video) (music :type audio))
      :params ((peak :type float :default 0.8 :range [0 1]))
      (def listen (analyze music :features [energy]))
      (def glow (-> video
                    (segment :start 0 :end 4)
                    (effect bloom :intensity (bind listen :feature energy :range [0 peak])))))

The text is read once (`artdag_common.sexp`: positions on every value, size and depth limits)
and evaluated once, over values only: `def` names a step or a value, `->` threads a clip through
node forms (a bare name there is `(effect name)`), `:params` are constants whose defaults (or
given values) must fit their type, range and choices, and a few pure functions compute settings.
There are no user functions, loops, file or network access: `:path` and `:url` are refused, an
`(include :cid CID)` reads only a text already stored (`recipe_includes`: the caller loads it
first), and evaluation has a hard budget.

What comes out is the data a YAML recipe holds (`inputs`, `steps`, `output`), with where each
part was written; `recipe.build_recipe` validates it with every check the YAML form gets. So a
recipe and its YAML spelling (same step names) have the same canonical form, recipe id and step
ids. A step that no `def` names gets a name of its own (`segment-1`, `effect-2`, …).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from artdag_common.cid import validate_cid
from artdag_common.errors import InvalidCidError, InvalidInputError, SyntaxInputError
from artdag_common.operations import OPERATIONS
from artdag_common.recipe import MAX_STEPS, NAME_RE, Recipe, RecipeSource, build_recipe
from artdag_common.recipe_engine import PATH_REFUSED
from artdag_common.recipe_includes import MAX_INCLUDE_DEPTH, included_text
from artdag_common.sexp import Atom, Keyword, Pos, SexpError, SList, SMap, Symbol, Value, head, read, read_one

MAX_EVAL_STEPS = 200_000
"""Evaluations one recipe may take (there are no loops: a bound that honest recipes never near)."""

MAX_VALUE_ITEMS = 100_000
"""Items one value may hold, nested lists and maps counted in full (references repeat a value)."""

MAX_CONFIG_ITEMS = 1_000_000
"""Items all steps' settings may hold together."""

MAX_VALUE_DEPTH = 32
"""How deep lists and maps may nest in one value (defs of lists of lists would otherwise nest without bound)."""

_INT_LIMIT = 2**53
_FIELD = "recipe"
_Path = tuple[str | int, ...]

_HEADER_KEYS = ("version", "description", "owner", "inputs", "params")
_INPUT_TYPES = ("video", "audio", "image", "any")
_PARAM_TYPES = ("int", "float", "bool", "string")

# Node forms whose keywords are the node type's config fields as they are (kebab-case for snake_case).
_PLAIN_NODES: Final = {
    "segment": "SEGMENT",
    "resize": "RESIZE",
    "transform": "TRANSFORM",
    "sequence": "SEQUENCE",
    "layer": "LAYER",
    "blend": "BLEND",
    "mux": "MUX",
    "audio-mix": "AUDIO_MIX",
    "beat-sync": "BEAT_SYNC",
    "thumbnail": "THUMBNAIL",
}
_NODE_FORMS: Final = frozenset({*_PLAIN_NODES, "effect", "fx", "analyze", "slice-on", "map"})

_FUNCTIONS: Final[dict[str, tuple[int, int | None]]] = {
    "+": (0, None),
    "-": (1, None),
    "*": (0, None),
    "/": (1, None),
    "mod": (2, 2),
    "max": (1, None),
    "min": (1, None),
    "floor": (1, 1),
    "ceil": (1, 1),
    "round": (1, 2),
    "abs": (1, 1),
    "sqrt": (1, 1),
    "pow": (2, 2),
    "inc": (1, 1),
    "dec": (1, 1),
    "=": (1, None),
    "not=": (1, None),
    "<": (1, None),
    ">": (1, None),
    "<=": (1, None),
    ">=": (1, None),
    "not": (1, 1),
    "len": (1, 1),
    "get": (2, 3),
    "first": (1, 1),
    "last": (1, 1),
    "nth": (2, 2),
    "list": (0, None),
    "dict": (0, None),
    "chunk-every": (2, 2),
    "assert": (1, 2),
}
"""The pure functions a recipe may call, with their arity (min, max or None)."""

_SPECIAL_FORMS: Final = frozenset({"if", "and", "or", "bind", "->"})
_STATEMENTS: Final = frozenset({"def", "stage", "asset", "include"})

_REFUSED_FORMS: Final = {
    "lambda": "a recipe has no user functions (so nothing recurses): compute settings with the built-in functions",
    "fn": "a recipe has no user functions (so nothing recurses): compute settings with the built-in functions",
    "defn": "a recipe has no user functions (so nothing recurses): compute settings with the built-in functions",
    "define": "a recipe has no user functions (so nothing recurses): compute settings with the built-in functions",
    "analyzer": "analyzers are built in: (analyze clip :features [beats energy])",
    "construct": "constructs are not supported: write the steps they made, or slice-on with :effect",
    "define-construct": "constructs are not supported: write the steps they made, or slice-on with :effect",
}

_INCLUDE_PLACE = "(include :cid CID) goes at the top of the recipe or of a stage, not inside another form"
_INCLUDE_BY_CID = (
    "a recipe includes only texts already stored, by CID (`artdag upload FILE`, then (include :cid CID)):"
    " never a file or a URL"
)

_SLICE_TIMES = ("beats", "downbeats", "onsets", "scene_changes")
_LAYER_SHORTHAND = ("x", "y", "opacity", "scale")


class _Template:
    """The item a MAP applies its operation to: the clip a template form stands without."""


_TEMPLATE: Final = _Template()


@dataclass(frozen=True)
class _Input:
    """A recipe input, as a clip: steps read it by name."""

    name: str


@dataclass(eq=False)
class _Node:
    """A step being made: what the YAML form writes for it, and where each part was written."""

    type: str
    pos: Pos
    head_pos: Pos
    inputs: list[_Node | _Input | _Template]
    input_pos: list[Pos]
    config: dict[str, Any]
    config_pos: dict[_Path, Pos]
    makes_list: bool = False
    name: str | None = None
    name_pos: Pos | None = None


_Clip = _Node | _Input | _Template


@dataclass(frozen=True)
class _NameOf:
    """A step named in a setting (an analysis a binding follows): its name is known once all are."""

    node: _Node


@dataclass(frozen=True, eq=False)
class _Bind:
    """`(bind analysis :feature f …)`: an effect parameter that follows an ANALYZE step."""

    analysis: _Node
    analysis_pos: Pos
    feature: str
    options: dict[str, Any]
    option_pos: dict[str, Pos]
    pos: Pos


@dataclass
class _Env:
    """The names a form sees: the whole recipe's, or a stage's (its own, the pre-stage ones, its inputs)."""

    names: dict[str, Any]
    stage: str | None = None
    defs: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class SexpRecipeSource:
    """An S-expression recipe as the data of the YAML L1 form, with where each part was written."""

    value: dict[str, Any]
    positions: dict[_Path, Pos]

    def where(self, path: _Path) -> str:
        """Line and column of the value at `path`, or of the nearest enclosing one written."""
        for n in range(len(path), -1, -1):
            pos = self.positions.get(path[:n])
            if pos is not None:
                return f"line {pos.line}, column {pos.column}"
        return "line 1, column 1"


def read_sexp_recipe(text: str, params: Mapping[str, Any] | None = None) -> RecipeSource:
    """`(recipe …)` text as L1-form data to build a `Recipe` from; `params` override `:params` defaults."""
    try:
        form = read_one(text, "a recipe")
    except SexpError as exc:
        raise SyntaxInputError(f"not a valid S-expression recipe: {exc.message}", field=_FIELD) from None
    return _Translator(params or {}).recipe(form)


def parse_recipe_sexp(text: str, params: Mapping[str, Any] | None = None) -> Recipe:
    """An S-expression recipe validated into a `Recipe`, with `params` for its `:params` defaults
    (`recipe.parse_recipe` takes either form, with the defaults)."""
    return build_recipe(read_sexp_recipe(text, params))


def sexp_effects_named(text: str) -> set[str]:
    """The user effects (CIDs) an S-expression recipe's steps name; none when it does not translate
    (`parse_recipe` then says why)."""
    from artdag_effects.user import effect_cids

    try:
        return effect_cids(read_sexp_recipe(text).value["steps"])
    except InvalidInputError:
        return set()


def _snake(name: str) -> str:
    return name.replace("-", "_")


def _kebab(name: str) -> str:
    return ":" + name.replace("_", "-")


def _is_clip(value: Any) -> bool:
    return isinstance(value, _Node | _Input | _Template)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _truthy(value: Any) -> bool:
    return value is not None and value is not False


def _describe(value: Any) -> str:
    if isinstance(value, _Node):
        return f"the {value.type} step {value.name!r}" if value.name else f"a {value.type} step"
    if isinstance(value, _Input):
        return f"the input {value.name!r}"
    if isinstance(value, _Bind):
        return "a (bind …)"
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:37] + "...")
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return "a map"
    return repr(value)


def _where(pos: Pos) -> str:
    return f"line {pos.line}, column {pos.column}"


def _fail(pos: Pos, message: str) -> SexpError:
    return pos.error(message, field=_FIELD)


class _Translator:
    """One recipe's evaluation: its inputs, names, stages and the steps made so far, in order."""

    def __init__(self, overrides: Mapping[str, Any]) -> None:
        self.overrides = dict(overrides)
        self.budget = MAX_EVAL_STEPS
        self.nodes: list[_Node] = []
        self.inputs: dict[str, dict[str, Any]] = {}
        self.input_pos: dict[str, Pos] = {}
        self.top: dict[str, Any] = {}
        self.defined: dict[str, Pos] = {}  # every input, param and def name, and where it was given
        self.defining: str | None = None
        self.effects: dict[str, str] = {}  # effects declared (effect NAME :cid CID)
        self.effect_pos: dict[str, Pos] = {}
        self.assets: dict[str, dict[str, str]] = {}
        self.pre_stage: dict[str, Any] | None = None  # what every stage sees: the names before the first
        self.stages: dict[str, list[str]] = {}  # stage → its outputs
        self.stage_outputs: dict[str, tuple[str, Any]] = {}  # output name → (stage, value)
        self.private: dict[str, str] = {}  # name def'd in a stage → that stage
        self.weights: dict[int, tuple[int, int]] = {}  # id → (items, depth) of every list and map made
        self.kept: list[object] = []  # ... kept alive, so that no id is reused
        self.config_items = 0
        self.including: list[str] = []  # the includes being evaluated, outermost first

    # -- the recipe form -------------------------------------------------------------------------

    def recipe(self, form: Value) -> SexpRecipeSource:
        if head(form) != "recipe" or not isinstance(form, SList):
            raise _fail(form.pos, 'an S-expression recipe is one (recipe "name" …) form')
        items = form.items
        if len(items) < 2 or not isinstance(items[1], Atom | Symbol):
            raise _fail(form.pos, 'the recipe\'s name comes first: (recipe "name" …)')
        name_item = items[1]
        name = name_item.value if isinstance(name_item, Atom) else name_item.name
        if not isinstance(name, str):
            raise _fail(name_item.pos, 'the recipe\'s name is a string: (recipe "name" …)')
        positions: dict[_Path, Pos] = {(): form.pos, ("name",): name_item.pos}
        raw: dict[str, Any] = {"name": name}
        header: dict[str, tuple[Keyword, Value]] = {}
        body: list[Value] = []
        rest = list(items[2:])
        while rest:
            item = rest.pop(0)
            if not isinstance(item, Keyword):
                body.append(item)
                continue
            key = _snake(item.name)
            if key == "encoding":
                raise _fail(item.pos, "every output is encoded with one fixed, deterministic profile: remove :encoding")
            if key not in _HEADER_KEYS:
                known = ", ".join(_kebab(k) for k in _HEADER_KEYS)
                raise _fail(item.pos, f"unknown recipe keyword :{item.name} (known: {known})")
            if key in header:
                raise _fail(item.pos, f":{item.name} is given twice")
            if not rest:
                raise _fail(item.pos, f":{item.name} needs a value")
            header[key] = (item, rest.pop(0))
        for key in ("version", "description", "owner"):
            if key in header:
                raw[key] = self._header_text(key, header[key][1])
                positions[(key,)] = header[key][1].pos
        if "inputs" in header:
            self._declare_inputs(header["inputs"][1])
        self._params(header.get("params"))
        env = _Env(self.top)
        output: Any = None
        output_pos = form.pos
        for item in body:
            value = self._statement(item, env)
            if value is not None:
                output, output_pos = value, item.pos
        if not self.nodes:
            raise _fail(form.pos, "the recipe makes no step: end it with the node whose result is the output")
        if not isinstance(output, _Node):
            what = "nothing" if output is None else _describe(output)
            raise _fail(
                output_pos, f"the recipe's last form gives {what}: end it with the step whose result is the output"
            )
        if output.makes_list:
            raise _fail(output_pos, "the output is a list of clips: (sequence …) it into one clip")
        return self._emit(raw, positions, output, output_pos)

    def _header_text(self, key: str, value: Value) -> str:
        if isinstance(value, Atom) and isinstance(value.value, str):
            return value.value
        if key == "version" and isinstance(value, Atom) and _is_number(value.value):
            return str(value.value)
        raise _fail(value.pos, f":{key} is a string")

    def _declare_inputs(self, spec: Value) -> None:
        """`:inputs (video (music :type audio :description "…") (clips :list true))`: names steps read."""
        if not isinstance(spec, SList):
            raise _fail(spec.pos, ":inputs is a list: ((video :type video) (music :type audio))")
        for item in spec.items:
            options: tuple[Value, ...] = ()
            if isinstance(item, Symbol):
                name_sym = item
            elif isinstance(item, SList) and item.items and isinstance(item.items[0], Symbol):
                name_sym, options = item.items[0], item.items[1:]
            else:
                raise _fail(item.pos, 'an input is a name, or (name :type video :description "…")')
            given = self._keywords(options, item.pos, "an input")
            fields: dict[str, Any] = {}
            for key, (keyword, value) in given.items():
                if key not in ("type", "description", "list", "asset"):
                    raise _fail(
                        keyword.pos,
                        f"unknown input keyword :{keyword.name} (known: :type, :description, :list, :asset)",
                    )
                fields[key] = self._literal_name(value) if key == "type" else self._literal(value)
            self._declare_input(name_sym.name, fields, name_sym.pos)
            self._bind_name(name_sym.name, _Input(name_sym.name), name_sym.pos, self.top)

    def _declare_input(self, name: str, fields: dict[str, Any], pos: Pos) -> _Input:
        if not NAME_RE.match(name):
            raise _fail(pos, f"input name {name!r} must be letters, digits, '_' or '-' (at most 64)")
        kind = fields.get("type")
        if kind is not None and kind not in _INPUT_TYPES:
            raise _fail(pos, f"an input's type is {', '.join(_INPUT_TYPES)}, not {kind!r}")
        for key, kind_of in (("description", str), ("list", bool), ("asset", str)):
            if key in fields and not isinstance(fields[key], kind_of):
                raise _fail(pos, f"input {name!r}: :{key} must be {'true or false' if kind_of is bool else 'a string'}")
        if name in self.inputs:
            for key, value in fields.items():
                earlier = self.inputs[name].get(key)
                if earlier is not None and earlier != value:
                    raise _fail(
                        pos,
                        f"input {name!r} was declared with :{key} {_describe(earlier)}"
                        f" at {_where(self.input_pos[name])}, not {_describe(value)}",
                    )
            self.inputs[name].update(fields)
            return _Input(name)
        if name in self.defined:
            raise _fail(
                pos, f"{name!r} is already defined at {_where(self.defined[name])}: an input needs a name of its own"
            )
        self.inputs[name] = dict(fields)
        self.input_pos[name] = pos
        self.defined[name] = pos
        return _Input(name)

    def _params(self, spec: tuple[Keyword, Value] | None) -> None:
        """`:params ((n :type int :default 3 :range [1 10] :choices […] :desc "…") …)`: checked constants."""
        declared: set[str] = set()
        if spec is not None:
            value = spec[1]
            if not isinstance(value, SList):
                raise _fail(value.pos, ":params is a list: ((name :type int :default 3 :range [1 10]) …)")
            for item in value.items:
                if not (isinstance(item, SList) and item.items and isinstance(item.items[0], Symbol)):
                    raise _fail(item.pos, "a parameter is (name :type int :default 3 :range [1 10])")
                name_sym = item.items[0]
                declared.add(name_sym.name)
                self._param(name_sym, item)
        for name in self.overrides:
            if name not in declared:
                known = ", ".join(sorted(declared)) or "none"
                raise InvalidInputError(
                    f"the recipe has no parameter {name!r} (its parameters: {known})", field=f"params.{name}"
                )

    def _param(self, name_sym: Symbol, item: SList) -> None:
        name = name_sym.name
        given = self._keywords(item.items[1:], item.pos, "a parameter")
        known = ("type", "default", "range", "choices", "desc", "description")
        for key, (keyword, _) in given.items():
            if key not in known:
                raise _fail(
                    keyword.pos,
                    f"unknown parameter keyword :{keyword.name} (known: :type, :default, :range, :choices, :desc)",
                )
        kind = self._literal_name(given["type"][1]) if "type" in given else None
        if kind is not None and kind not in _PARAM_TYPES:
            raise _fail(given["type"][1].pos, f"a parameter's type is {', '.join(_PARAM_TYPES)}, not {kind!r}")
        if name in self.overrides:
            value, where = self.overrides[name], item.pos
            label = f"parameter {name!r} given as {_describe(value)}"
        elif "default" in given:
            value, where = self._literal(given["default"][1]), given["default"][1].pos
            label = f"parameter {name!r}: its default {_describe(value)}"
        else:
            raise _fail(item.pos, f"parameter {name!r} has no :default (and no value was given)")
        value = self._param_value(value, kind, label, where)
        if "range" in given:
            bounds = self._literal(given["range"][1])
            if not (isinstance(bounds, list) and len(bounds) == 2 and all(_is_number(b) for b in bounds)):
                raise _fail(given["range"][1].pos, f"parameter {name!r}: :range is [low high], two numbers")
            if bounds[0] > bounds[1]:
                raise _fail(given["range"][1].pos, f"parameter {name!r}: :range low is above high")
            if not _is_number(value) or not bounds[0] <= value <= bounds[1]:
                raise _fail(where, f"{label} is outside its range [{bounds[0]} {bounds[1]}]")
        if "choices" in given:
            choices = self._literal(given["choices"][1])
            if not (isinstance(choices, list) and choices):
                raise _fail(given["choices"][1].pos, f"parameter {name!r}: :choices is a non-empty list")
            if not any(self._equal(value, choice) for choice in choices):
                raise _fail(where, f"{label} is not one of its choices {choices!r}")
        self._bind_name(name, value, name_sym.pos, self.top)

    @staticmethod
    def _param_value(value: Any, kind: str | None, label: str, where: Pos) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            raise _fail(where, f"{label} is not a finite number")
        if kind == "int":
            if isinstance(value, float) and value.is_integer() and abs(value) <= _INT_LIMIT:
                value = int(value)
            if not isinstance(value, int) or isinstance(value, bool) or abs(value) > _INT_LIMIT:
                raise _fail(where, f"{label} is not an int")
        elif kind == "float":
            if not _is_number(value) or abs(value) > 1e300:
                raise _fail(where, f"{label} is not a number")
            value = float(value)
        elif kind == "bool" and not isinstance(value, bool):
            raise _fail(where, f"{label} is not true or false")
        elif kind == "string" and not isinstance(value, str):
            raise _fail(where, f"{label} is not a string")
        elif kind is None and not (value is None or isinstance(value, str | bool) or _is_number(value)):
            raise _fail(where, f"{label} is not a number, a string or true/false")
        return value

    def _bind_name(self, name: str, value: Any, pos: Pos, names: dict[str, Any]) -> None:
        if name in self.defined and not isinstance(value, _Input):
            raise _fail(pos, f"{name!r} is already defined at {_where(self.defined[name])}")
        self.defined.setdefault(name, pos)
        names[name] = value

    # -- statements: def, stage, declarations, expressions ----------------------------------------

    def _statement(self, form: Value, env: _Env) -> Any:
        """A body form of the recipe or of a stage: its value (None for declarations)."""
        name = head(form)
        if not isinstance(form, SList) or name is None:
            return self._eval(form, env)
        self._tick(form.pos)
        if name == "def":
            return self._def(form, env)
        if name == "stage":
            if env.stage is not None:
                raise _fail(form.pos, f"a stage cannot hold another stage (this one is in :{env.stage})")
            return self._stage(form)
        if name == "include":
            return self._include(form, env)
        if name == "asset":
            self._asset(form)
            return None
        if name in ("effect", "fx") and self._is_declaration(form):
            self._declare_effect(form)
            return None
        return self._eval(form, env)

    def _def(self, form: SList, env: _Env) -> Any:
        if len(form.items) != 3 or not isinstance(form.items[1], Symbol):
            raise _fail(form.pos, "(def NAME value): a name and one value")
        sym = form.items[1]
        if not NAME_RE.match(sym.name):
            raise _fail(sym.pos, f"a def's name is letters, digits, '_' or '-' (at most 64), not {sym.name!r}")
        if sym.name in self.defined:
            raise _fail(sym.pos, f"{sym.name!r} is already defined at {_where(self.defined[sym.name])}")
        self.defining = sym.name
        try:
            value = self._eval(form.items[2], env)
        finally:
            self.defining = None
        if isinstance(value, _Node) and value.name is None:
            value.name, value.name_pos = sym.name, sym.pos
        self._bind_name(sym.name, value, sym.pos, env.names)
        env.defs.add(sym.name)
        if env.stage is not None:
            self.private[sym.name] = env.stage
        return value

    def _stage(self, form: SList) -> Any:
        """`(stage :name :requires [:a] :inputs [x] :outputs [y] body…)`: a scope with declared hand-offs."""
        items = list(form.items[1:])
        if not items:
            raise _fail(form.pos, "(stage :name …): a stage needs a name")
        name_item = items.pop(0)
        stage = self._stage_name(name_item)
        if stage in self.stages:
            raise _fail(name_item.pos, f"stage :{stage} is defined twice")
        options: dict[str, tuple[Keyword, list[tuple[str, Pos]]]] = {}
        while items and isinstance(keyword := items[0], Keyword):
            items.pop(0)
            key = keyword.name
            if key not in ("requires", "inputs", "outputs"):
                raise _fail(keyword.pos, f"unknown stage keyword :{key} (known: :requires, :inputs, :outputs)")
            if key in options:
                raise _fail(keyword.pos, f":{key} is given twice")
            if not items:
                raise _fail(keyword.pos, f":{key} needs a list")
            options[key] = (keyword, self._stage_names(key, items.pop(0)))
        requires = [name for name, _ in options.get("requires", (None, []))[1]]
        for required, pos in options.get("requires", (None, []))[1]:
            if required not in self.stages:
                raise _fail(
                    pos,
                    f"stage :{stage} requires undefined stage :{required}"
                    " (a stage is defined before one that requires it)",
                )
        if self.pre_stage is None:
            self.pre_stage = dict(self.top)
        env = _Env(dict(self.pre_stage), stage=stage)
        for name, pos in options.get("inputs", (None, []))[1]:
            producer = self.stage_outputs.get(name)
            if producer is None or producer[0] not in requires:
                required_list = ", ".join(f":{r}" for r in requires) or "none"
                raise _fail(
                    pos,
                    f"stage :{stage}: input {name!r} is not an output of any required stage"
                    f" (requires: {required_list})",
                )
            env.names[name] = producer[1]
        self.stages[stage] = []
        value: Any = None
        for item in items:
            if isinstance(item, Keyword):
                raise _fail(item.pos, f"stage keywords (:{item.name}) come before the stage's body")
            result = self._statement(item, env)
            if result is not None:
                value = result
        for name, pos in options.get("outputs", (None, []))[1]:
            if name not in env.defs:
                raise _fail(pos, f"stage :{stage}: output {name!r} is not defined in the stage body (def it there)")
            self.stage_outputs[name] = (stage, env.names[name])
            self.top[name] = env.names[name]
            self.stages[stage].append(name)
        return value

    @staticmethod
    def _stage_name(item: Value) -> str:
        if isinstance(item, Keyword | Symbol):
            return item.name
        if isinstance(item, Atom) and isinstance(item.value, str) and item.value:
            return item.value
        raise _fail(item.pos, "(stage :name …): a stage's name is a keyword")

    def _stage_names(self, key: str, value: Value) -> list[tuple[str, Pos]]:
        items = value.items if isinstance(value, SList) else (value,)
        names: list[tuple[str, Pos]] = []
        for item in items:
            if key == "requires":
                names.append((self._stage_name(item), item.pos))
            elif isinstance(item, Symbol):
                names.append((item.name, item.pos))
            else:
                raise _fail(item.pos, f":{key} lists names: [beats tempo]")
        return names

    def _asset(self, form: SList) -> None:
        """`(asset NAME :cid CID)`: kept in the recipe's registry (shown with it; steps do not read it)."""
        if len(form.items) < 2 or not isinstance(form.items[1], Symbol | Atom):
            raise _fail(form.pos, "(asset NAME :cid CID)")
        name_item = form.items[1]
        name = name_item.name if isinstance(name_item, Symbol) else name_item.value
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise _fail(name_item.pos, "an asset's name is letters, digits, '_' or '-' (at most 64)")
        given = self._keywords(form.items[2:], form.pos, "an asset")
        for key, (keyword, _) in given.items():
            if key in ("path", "url"):
                raise _fail(keyword.pos, "a recipe reads no files or URLs: upload the asset and give its :cid")
            if key != "cid":
                raise _fail(keyword.pos, f"unknown asset keyword :{keyword.name} (known: :cid)")
        if "cid" not in given:
            raise _fail(form.pos, f"asset {name!r} needs :cid")
        if name in self.assets:
            raise _fail(name_item.pos, f"asset {name!r} is declared twice")
        self.assets[name] = {"cid": self._cid(given["cid"][1])}

    def _include(self, form: SList, env: _Env) -> None:
        """`(include [NAME] :cid CID)`: the forms of that stored text, evaluated here as if written here
        (their definitions are this recipe's or this stage's). Errors inside say which include, and
        where in its text; the steps it makes are placed at the include."""
        positional, given = self._split(form)
        for key in ("path", "url", "hash"):
            if key in given:
                raise _fail(given[key][0].pos, _INCLUDE_BY_CID)
        for key, (keyword, _) in given.items():
            if key != "cid":
                raise _fail(keyword.pos, f"unknown include keyword :{keyword.name} (known: :cid)")
        if "cid" not in given:
            raise _fail(form.pos, _INCLUDE_BY_CID)
        if len(positional) > 1 or (positional and not isinstance(positional[0], Symbol)):
            raise _fail(form.pos, "(include :cid CID), or (include NAME :cid CID): a name at most, then :cid")
        cid = self._cid(given["cid"][1])
        if cid in self.including:
            raise _fail(form.pos, f"include {cid} includes itself")
        if len(self.including) >= MAX_INCLUDE_DEPTH:
            raise _fail(form.pos, f"includes nest more than {MAX_INCLUDE_DEPTH} levels deep")
        text = included_text(cid)
        if text is None:
            raise _fail(given["cid"][1].pos, f"include {cid}: no text with that CID is stored (upload it first)")
        first_node = len(self.nodes)
        self.including.append(cid)
        try:
            for item in read(text):
                value = self._statement(item, env)
                if head(item) not in _STATEMENTS and value is not None and not isinstance(value, _Node):
                    raise _fail(item.pos, f"an included text holds definitions and steps, not {_describe(value)}")
        except SexpError as exc:
            raise _fail(form.pos, f"in include {cid}: {exc.message}") from None
        finally:
            self.including.pop()
        for node in self.nodes[first_node:]:  # the recipe's own positions: the include's
            node.pos = node.head_pos = form.pos
            node.input_pos = [form.pos] * len(node.input_pos)
            node.config_pos = dict.fromkeys(node.config_pos, form.pos)
            if node.name_pos is not None:
                node.name_pos = form.pos

    def _cid(self, value: Value) -> str:
        text = self._literal(value)
        try:
            return validate_cid(text)
        except InvalidCidError as exc:
            raise _fail(value.pos, exc.message) from None

    @staticmethod
    def _is_declaration(form: SList) -> bool:
        return any(isinstance(item, Keyword) and item.name in ("cid", "hash", "path", "url") for item in form.items)

    def _declare_effect(self, form: SList) -> None:
        """`(effect NAME :cid CID)`: NAME stands for the user effect whose source has that CID."""
        positional, given = self._split(form)
        for key in ("path", "url", "hash"):
            if key in given:
                raise _fail(
                    given[key][0].pos,
                    "an effect is named by the CID of its stored source (POST /effects, `artdag effect add`):"
                    f" write :cid, not :{key}",
                )
        if len(positional) != 1 or not isinstance(positional[0], Symbol):
            raise _fail(form.pos, "(effect NAME :cid CID) declares an effect: a name and its :cid, nothing else")
        for key, (keyword, _) in given.items():
            if key != "cid":
                raise _fail(keyword.pos, f"unknown effect declaration keyword :{keyword.name} (known: :cid)")
        name = positional[0].name
        if name in self.effects:
            raise _fail(
                positional[0].pos, f"effect {name!r} is declared twice (first at {_where(self.effect_pos[name])})"
            )
        self.effects[name] = self._cid(given["cid"][1])
        self.effect_pos[name] = positional[0].pos

    # -- expressions -------------------------------------------------------------------------------

    def _tick(self, pos: Pos) -> None:
        self.budget -= 1
        if self.budget < 0:
            raise _fail(pos, f"the recipe takes more than {MAX_EVAL_STEPS:,} evaluation steps")

    def _eval(self, value: Value, env: _Env) -> Any:
        self._tick(value.pos)
        if isinstance(value, Atom):
            return value.value
        if isinstance(value, Keyword):
            return _snake(value.name)
        if isinstance(value, Symbol):
            return self._lookup(value, env)
        if isinstance(value, SMap):
            out: dict[str, Any] = {}
            for key, item in value.entries:
                name = _snake(key.name)
                if name in out:
                    raise _fail(key.pos, f":{key.name} is given twice in this map")
                out[name] = self._eval(item, env)
            return self._container(out, value.pos)
        if value.kind == "vector":
            return self._container([self._eval(item, env) for item in value.items], value.pos)
        return self._call(value, env, None)

    def _lookup(self, sym: Symbol, env: _Env) -> Any:
        if sym.name in env.names:
            return env.names[sym.name]
        if sym.name == self.defining:
            raise _fail(sym.pos, f"{sym.name!r} refers to itself: a def's value cannot use its own name")
        producer = self.stage_outputs.get(sym.name)
        if producer is not None and env.stage is not None:
            raise _fail(
                sym.pos,
                f"{sym.name!r} is an output of stage :{producer[0]}: stage :{env.stage} sees it with"
                f" :requires [:{producer[0]}] and :inputs [{sym.name}]",
            )
        if sym.name in self.private and producer is None:
            raise _fail(
                sym.pos,
                f"{sym.name!r} is defined in stage :{self.private[sym.name]} only:"
                " list it in that stage's :outputs to use it outside",
            )
        if sym.name in self.defined and env.stage is not None:
            raise _fail(
                sym.pos,
                f"{sym.name!r} (defined at {_where(self.defined[sym.name])}) is not visible in stage :{env.stage}:"
                " a stage sees what was defined before the first stage, and the :inputs it declares",
            )
        if sym.name in self.defined:
            raise _fail(sym.pos, f"{sym.name!r} (defined at {_where(self.defined[sym.name])}) is not visible here")
        if sym.name in _FUNCTIONS or sym.name in _NODE_FORMS:
            raise _fail(sym.pos, f"{sym.name!r} is a function: call it as ({sym.name} …)")
        raise _fail(sym.pos, f'undefined name {sym.name!r} (a text value is written in quotes: "{sym.name}")')

    def _call(self, form: SList, env: _Env, threaded: Any) -> Any:
        if not form.items:
            raise _fail(form.pos, "() is empty: a form starts with a name, like (effect blur clip)")
        first = form.items[0]
        if not isinstance(first, Symbol):
            raise _fail(
                first.pos, f"a form starts with a name, like (effect blur clip), not {_describe(self._quiet(first))}"
            )
        name = first.name
        if name in _REFUSED_FORMS:
            raise _fail(first.pos, _REFUSED_FORMS[name])
        if name == "include":
            raise _fail(first.pos, _INCLUDE_PLACE)
        if name in _STATEMENTS:
            raise _fail(first.pos, f"({name} …) goes at the top of the recipe or of a stage, not inside another form")
        if name in _NODE_FORMS:
            return self._node_form(name, form, env, threaded)
        if name == "source":
            if threaded is not None:
                raise _fail(first.pos, "(source …) takes no clip: it names a recipe input")
            return self._source(form)
        if threaded is not None:
            raise _fail(first.pos, f"({name} …) cannot take a clip: only node forms (effect, segment, …) go in a ->")
        if name == "->":
            return self._thread(form, env)
        if name == "if":
            if not 3 <= len(form.items) <= 4:
                raise _fail(form.pos, "(if test then else): a test and one or two branches")
            if _truthy(self._eval(form.items[1], env)):
                return self._eval(form.items[2], env)
            return self._eval(form.items[3], env) if len(form.items) == 4 else None
        if name in ("and", "or"):
            result: Any = name == "and"
            for item in form.items[1:]:
                result = self._eval(item, env)
                if _truthy(result) != (name == "and"):
                    return result
            return result
        if name == "bind":
            return self._bind(form, env)
        if name in _FUNCTIONS:
            args = form.items[1:]
            low, high = _FUNCTIONS[name]
            if len(args) < low or (high is not None and len(args) > high):
                want = str(low) if low == high else f"{low} or more" if high is None else f"{low} to {high}"
                raise _fail(form.pos, f"({name} …) takes {want} argument(s), got {len(args)}")
            values = [self._eval(arg, env) for arg in args]
            return self._apply(name, values, [arg.pos for arg in args], form.pos)
        if name in env.names:
            raise _fail(first.pos, f"{name!r} is not a function: it names {_describe(env.names[name])}")
        raise _fail(first.pos, f"unknown form {name!r}")

    def _quiet(self, value: Value) -> Any:
        return value.value if isinstance(value, Atom) else "a list" if isinstance(value, SList | SMap) else value

    def _thread(self, form: SList, env: _Env) -> Any:
        """`(-> clip form…)`: each form takes the result so far as its first clip."""
        items = form.items[1:]
        if not items:
            raise _fail(form.pos, "(-> clip form …): a clip comes first")
        value = self._eval(items[0], env)
        for item in items[1:]:
            self._tick(item.pos)
            if not _is_clip(value):
                raise _fail(item.pos, f"{_describe(value)} is no clip: -> passes a clip from form to form")
            if isinstance(item, Symbol | Atom):
                value = self._effect_step(item, value, [], {}, env, item.pos)
            elif isinstance(item, SList) and item.kind == "list":
                value = self._call(item, env, value)
            else:
                raise _fail(item.pos, "a -> holds node forms, like (effect blur :radius 2), or effect names")
        return value

    def _container(self, value: list[Any] | dict[str, Any], pos: Pos) -> Any:
        """A list or map made by evaluation, counted with everything it holds (repeats included) and
        how deep it nests."""
        measures = [
            self.weights.get(id(item), (1, 0)) for item in (value.values() if isinstance(value, dict) else value)
        ]
        weight = 1 + sum(items for items, _ in measures)
        depth = 1 + max((nested for _, nested in measures), default=0)
        if weight > MAX_VALUE_ITEMS:
            raise _fail(pos, f"this value holds more than {MAX_VALUE_ITEMS:,} items")
        if depth > MAX_VALUE_DEPTH:
            raise _fail(pos, f"this value nests lists and maps deeper than {MAX_VALUE_DEPTH} levels")
        self.weights[id(value)] = (weight, depth)
        self.kept.append(value)
        return value

    # -- pure functions ----------------------------------------------------------------------------

    def _apply(self, name: str, args: list[Any], where: list[Pos], pos: Pos) -> Any:
        def number(i: int) -> int | float:
            value = args[i]
            if not _is_number(value):
                raise _fail(where[i], f"({name} …) takes numbers, not {_describe(value)}")
            result: int | float = value
            return result

        def whole(i: int) -> int:
            value = args[i]
            if not isinstance(value, int) or isinstance(value, bool):
                raise _fail(where[i], f"({name} …) takes a whole number here, not {_describe(value)}")
            return value

        def items(i: int) -> list[Any]:
            value = args[i]
            if not isinstance(value, list):
                raise _fail(where[i], f"({name} …) takes a list here, not {_describe(value)}")
            return value

        if name in ("+", "*"):
            total: int | float = 0 if name == "+" else 1
            for i in range(len(args)):
                total = self._finite(total + number(i) if name == "+" else total * number(i), pos)
            return total
        if name == "-":
            if len(args) == 1:
                return -number(0)
            total = number(0)
            for i in range(1, len(args)):
                total = self._finite(total - number(i), pos)
            return total
        if name == "/":
            total = 1 if len(args) == 1 else number(0)
            for i in range(0 if len(args) == 1 else 1, len(args)):
                divisor = number(i)
                if divisor == 0:
                    raise _fail(where[i], "division by zero")
                total = self._finite(total / divisor, pos)
            return total
        if name == "mod":
            a, b = number(0), number(1)
            if b == 0:
                raise _fail(where[1], "(mod a 0): division by zero")
            return self._finite(a % b, pos)
        if name in ("max", "min"):
            values = [number(i) for i in range(len(args))]
            return max(values) if name == "max" else min(values)
        if name in ("floor", "ceil"):
            return self._finite(math.floor(number(0)) if name == "floor" else math.ceil(number(0)), pos)
        if name == "round":
            if len(args) == 1:
                return self._finite(round(number(0)), pos)
            digits = whole(1)
            if not 0 <= digits <= 15:
                raise _fail(where[1], "(round x digits): digits is 0 to 15")
            return round(float(number(0)), digits)
        if name == "abs":
            return abs(number(0))
        if name == "sqrt":
            if number(0) < 0:
                raise _fail(where[0], "(sqrt x) of a negative number")
            return math.sqrt(number(0))
        if name == "pow":
            return self._pow(number(0), number(1), where, pos)
        if name in ("inc", "dec"):
            return self._finite(number(0) + (1 if name == "inc" else -1), pos)
        if name in ("=", "not="):
            same = all(self._equal(args[0], other) for other in args[1:])
            return same if name == "=" else not same
        if name in ("<", ">", "<=", ">="):
            compare: dict[str, Callable[[float, float], bool]] = {
                "<": lambda a, b: a < b,
                ">": lambda a, b: a > b,
                "<=": lambda a, b: a <= b,
                ">=": lambda a, b: a >= b,
            }
            values = [number(i) for i in range(len(args))]
            return all(compare[name](a, b) for a, b in itertools.pairwise(values))
        if name == "not":
            return not _truthy(args[0])
        if name == "len":
            if not isinstance(args[0], list | dict | str):
                raise _fail(where[0], f"(len x) takes a list, a map or a string, not {_describe(args[0])}")
            return len(args[0])
        if name == "get":
            return self._get(args, where)
        if name in ("first", "last"):
            values = items(0)
            return (values[0] if name == "first" else values[-1]) if values else None
        if name == "nth":
            values, index = items(0), whole(1)
            if not 0 <= index < len(values):
                raise _fail(where[1], f"(nth list {index}): the list has {len(values)} item(s)")
            return values[index]
        if name == "list":
            return self._container(list(args), pos)
        if name == "dict":
            if len(args) % 2:
                raise _fail(pos, "(dict :key value …): a value for every key")
            out: dict[str, Any] = {}
            for i in range(0, len(args), 2):
                if not isinstance(args[i], str):
                    raise _fail(where[i], f"(dict :key value …): keys are keywords, not {_describe(args[i])}")
                out[args[i]] = args[i + 1]
            return self._container(out, pos)
        if name == "chunk-every":
            values, size = items(0), whole(1)
            if size < 1:
                raise _fail(where[1], "(chunk-every list n): n is 1 or more")
            chunks = [self._container(values[k : k + size], pos) for k in range(0, len(values), size)]
            return self._container(chunks, pos)
        if name == "assert":
            if not _truthy(args[0]):
                message = args[1] if len(args) == 2 and isinstance(args[1], str) else "the assertion is false"
                raise _fail(pos, f"assert: {message}")
            return True
        raise _fail(pos, f"unknown function {name!r}")  # pragma: no cover - _FUNCTIONS and this agree

    @staticmethod
    def _finite(value: int | float, pos: Pos) -> int | float:
        if isinstance(value, float) and not math.isfinite(value):
            raise _fail(pos, "the result is not a finite number")
        if isinstance(value, int) and abs(value) > _INT_LIMIT:
            raise _fail(pos, f"the result is over {_INT_LIMIT} (too large a number)")
        return value

    def _pow(self, base: int | float, exponent: int | float, where: list[Pos], pos: Pos) -> int | float:
        if base == 0 and exponent < 0:
            raise _fail(where[0], "(pow 0 negative): division by zero")
        if base < 0 and not float(exponent).is_integer():
            raise _fail(where[1], "(pow negative fraction) is not a real number")
        if isinstance(base, int) and isinstance(exponent, int) and exponent >= 0:
            if abs(base) > 1 and exponent > 64:
                raise _fail(pos, f"the result is over {_INT_LIMIT} (too large a number)")
            return self._finite(base**exponent, pos)
        try:
            return self._finite(math.pow(base, exponent), pos)
        except (OverflowError, ValueError):
            raise _fail(pos, "the result is not a finite number") from None

    @staticmethod
    def _equal(a: Any, b: Any) -> bool:
        if isinstance(a, bool) or isinstance(b, bool):
            return a is b
        if _is_clip(a) or _is_clip(b):
            return a is b or (isinstance(a, _Input) and a == b)
        return bool(a == b)

    @staticmethod
    def _get(args: list[Any], where: list[Pos]) -> Any:
        collection, key = args[0], args[1]
        default = args[2] if len(args) == 3 else None
        if isinstance(collection, dict):
            if not isinstance(key, str):
                raise _fail(where[1], f"(get map :key): a map's keys are keywords, not {_describe(key)}")
            return collection.get(key, default)
        if isinstance(collection, list):
            if not isinstance(key, int) or isinstance(key, bool):
                raise _fail(where[1], f"(get list index): an index is a whole number, not {_describe(key)}")
            return collection[key] if 0 <= key < len(collection) else default
        raise _fail(where[0], f"(get …) takes a map or a list, not {_describe(collection)}")

    # -- node forms --------------------------------------------------------------------------------

    def _split(self, form: SList) -> tuple[list[Value], dict[str, tuple[Keyword, Value]]]:
        """A form's positional arguments, and its `:keyword value` pairs by snake_case name."""
        positional: list[Value] = []
        keywords: dict[str, tuple[Keyword, Value]] = {}
        items = form.items[1:]
        k = 0
        while k < len(items):
            item = items[k]
            if isinstance(item, Keyword):
                if k + 1 >= len(items):
                    raise _fail(item.pos, f":{item.name} needs a value")
                key = _snake(item.name)
                if key in keywords:
                    raise _fail(item.pos, f":{item.name} is given twice")
                keywords[key] = (item, items[k + 1])
                k += 2
            else:
                positional.append(item)
                k += 1
        return positional, keywords

    def _keywords(
        self, items: tuple[Value, ...] | list[Value], pos: Pos, what: str
    ) -> dict[str, tuple[Keyword, Value]]:
        """`:keyword value` pairs only (a declaration's options)."""
        form = SList((Symbol("_", pos), *items), pos)
        positional, keywords = self._split(form)
        if positional:
            raise _fail(positional[0].pos, f"{what} takes :keyword value pairs here")
        return keywords

    def _literal(self, value: Value) -> Any:
        """A declaration's value: written out, not computed (numbers, strings, true/false, lists, maps)."""
        if isinstance(value, Atom):
            return value.value
        if isinstance(value, SList) and value.kind == "vector":
            return [self._literal(item) for item in value.items]
        if isinstance(value, SMap):
            return {_snake(k.name): self._literal(v) for k, v in value.entries}
        raise _fail(value.pos, "a declaration's value is written out: a number, a string, true/false or [a list]")

    def _literal_name(self, value: Value) -> str:
        if isinstance(value, Symbol):
            return value.name
        if isinstance(value, Atom) and isinstance(value.value, str):
            return value.value
        raise _fail(value.pos, 'a name was expected, like video or "video"')

    def _clips(self, values: list[tuple[Any, Pos]], what: str) -> tuple[list[_Clip], list[Pos]]:
        clips: list[_Clip] = []
        where: list[Pos] = []
        for value, pos in values:
            for item in value if isinstance(value, list) else [value]:
                if not _is_clip(item):
                    raise _fail(pos, f"{_describe(item)} is no clip: {what} takes clips, and its settings as :keywords")
                clips.append(item)
                where.append(pos)
        return clips, where

    def _settings(
        self, node_type: str, keywords: dict[str, tuple[Keyword, Value]], env: _Env
    ) -> tuple[dict[str, Any], dict[_Path, Pos]]:
        fields = OPERATIONS[node_type].config_model.model_fields
        config: dict[str, Any] = {}
        where: dict[_Path, Pos] = {}
        for key, (keyword, value) in keywords.items():
            if key not in fields or key in ("frames",):
                known = ", ".join(_kebab(f) for f in fields if f != "frames") or "none"
                raise _fail(keyword.pos, f"{node_type} has no setting :{keyword.name} (its settings: {known})")
            config[key] = self._data(self._eval(value, env), value.pos)
            where[(key,)] = value.pos
        return config, where

    def _data(self, value: Any, pos: Pos) -> Any:
        """A computed value as a setting: plain data (no clips, no bindings), counted against the budget."""
        self.config_items += self.weights.get(id(value), (1, 0))[0]
        if self.config_items > MAX_CONFIG_ITEMS:
            raise _fail(pos, f"the recipe's settings hold more than {MAX_CONFIG_ITEMS:,} items")
        return self._plain(value, pos)

    def _plain(self, value: Any, pos: Pos) -> Any:
        if isinstance(value, _Bind):
            raise _fail(pos, "a (bind …) sets an effect's parameter: (effect NAME clip :param (bind …))")
        if _is_clip(value):
            raise _fail(pos, f"{_describe(value)} is a clip, not a setting: give clips before the :keywords")
        if isinstance(value, dict):
            return {key: self._plain(item, pos) for key, item in value.items()}
        if isinstance(value, list):
            return [self._plain(item, pos) for item in value]
        return value

    def _add(
        self,
        node_type: str,
        form: SList,
        inputs: list[_Clip],
        input_pos: list[Pos],
        config: dict[str, Any],
        config_pos: dict[_Path, Pos],
        *,
        makes_list: bool = False,
    ) -> _Node:
        if len(self.nodes) >= MAX_STEPS:
            raise _fail(form.pos, f"the recipe makes more than {MAX_STEPS:,} steps")
        node = _Node(node_type, form.pos, form.items[0].pos, inputs, input_pos, config, config_pos, makes_list)
        self.nodes.append(node)
        return node

    def _node_form(self, name: str, form: SList, env: _Env, threaded: Any) -> _Node:
        if name in ("effect", "fx"):
            if self._is_declaration(form):
                raise _fail(form.pos, "(effect NAME :cid CID) declares an effect: write it at the top of the recipe")
            positional, keywords = self._split(form)
            if not positional:
                raise _fail(form.pos, "(effect NAME clip :param value …): the effect's name comes first")
            clips = [(self._eval(item, env), item.pos) for item in positional[1:]]
            return self._effect_step(positional[0], threaded, clips, keywords, env, form.pos, form)
        if name == "analyze":
            return self._analyze(form, env, threaded)
        if name == "slice-on":
            return self._slice_on(form, env, threaded)
        if name == "map":
            return self._map(form, env, threaded)
        node_type = _PLAIN_NODES[name]
        positional, keywords = self._split(form)
        placing = {k: keywords.pop(k) for k in _LAYER_SHORTHAND if k in keywords} if node_type == "LAYER" else {}
        given: list[tuple[Any, Pos]] = [(threaded, form.pos)] if threaded is not None else []
        numbers: list[tuple[Any, Pos]] = []
        for item in positional:
            value = self._eval(item, env)
            if node_type == "RESIZE" and _is_number(value):
                numbers.append((value, item.pos))
            else:
                given.append((value, item.pos))
        inputs, input_pos = self._clips(given, f"({name} …)")
        config, config_pos = self._settings(node_type, keywords, env)
        if numbers:
            if len(numbers) != 2 or "width" in config or "height" in config:
                raise _fail(numbers[0][1], "(resize clip WIDTH HEIGHT): two numbers, or :width and :height")
            for key, (value, pos) in zip(("width", "height"), numbers, strict=True):
                config[key], config_pos[(key,)] = value, pos
        if placing:
            self._place_overlay(form, placing, env, config, config_pos, len(inputs))
        return self._add(node_type, form, inputs, input_pos, config, config_pos)

    def _place_overlay(
        self,
        form: SList,
        placing: dict[str, tuple[Keyword, Value]],
        env: _Env,
        config: dict[str, Any],
        where: dict[_Path, Pos],
        count: int,
    ) -> None:
        """`(layer base overlay :x 10 :y 20 :opacity 0.5 :scale 1)`: the one overlay's placement, as LAYER's
        `:inputs [{:position [x y] :opacity o :scale s}]` writes it."""
        if "inputs" in config or count != 2:
            raise _fail(
                form.pos,
                "(layer base overlay :x :y :opacity :scale) places one overlay;"
                " for several, give :inputs [{:position [x y] :opacity o :scale s} …]",
            )
        overlay: dict[str, Any] = {}
        values = {
            key: (self._data(self._eval(value, env), value.pos), value.pos) for key, (_, value) in placing.items()
        }
        if "x" in values or "y" in values:
            overlay["position"] = [values.get(axis, (0, form.pos))[0] for axis in ("x", "y")]
            where[("inputs", 0, "position")] = values.get("x", values.get("y", (0, form.pos)))[1]
        for key in ("opacity", "scale"):
            if key in values:
                overlay[key], where[("inputs", 0, key)] = values[key]
        config["inputs"] = [overlay]

    def _effect_step(
        self,
        name_item: Value,
        threaded: Any,
        clips: list[tuple[Any, Pos]],
        keywords: dict[str, tuple[Keyword, Value]],
        env: _Env,
        pos: Pos,
        form: SList | None = None,
    ) -> _Node:
        effect = self._effect_name(name_item)
        given = ([(threaded, pos)] if threaded is not None else []) + clips
        inputs, input_pos = self._clips(given, f"(effect {effect} …)")
        config: dict[str, Any] = {"effect": effect}
        where: dict[_Path, Pos] = {("effect",): name_item.pos}
        params: dict[str, Any] = {}
        bindings: dict[str, Any] = {}
        for key, (_, value_form) in keywords.items():
            value = self._eval(value_form, env)
            if isinstance(value, _Bind):
                bindings[key] = {"analysis": _NameOf(value.analysis), "feature": value.feature, **value.options}
                where[("bindings", key)] = value.pos
                where[("bindings", key, "analysis")] = value.analysis_pos
                for option, option_pos in value.option_pos.items():
                    where[("bindings", key, option)] = option_pos
            else:
                params[key] = self._data(value, value_form.pos)
                where[("params", key)] = value_form.pos
        if params:
            config["params"] = params
        if bindings:
            config["bindings"] = bindings
        node_form = form if form is not None else SList((Symbol("effect", pos), name_item), pos)
        return self._add("EFFECT", node_form, inputs, input_pos, config, where)

    def _effect_name(self, item: Value) -> str:
        """An effect's name as written (a built-in's, a declared one's) or a user effect's CID."""
        if isinstance(item, Symbol):
            if item.name in self.effects:
                return self.effects[item.name]
            return self._installed_spelling(item.name)
        if isinstance(item, Atom) and isinstance(item.value, str) and item.value:
            return item.value
        raise _fail(item.pos, "an effect is named by a name (blur) or a CID, like (effect blur clip :radius 2)")

    @staticmethod
    def _installed_spelling(name: str) -> str:
        """`hue-shift` is the installed `hue_shift` (names keep their own spelling when installed as such)."""
        if "-" not in name:
            return name
        from artdag_effects.registry import available_aliases, available_effects

        known = available_effects().keys() | available_aliases().keys()
        return name if name in known or _snake(name) not in known else _snake(name)

    def _bind(self, form: SList, env: _Env) -> _Bind:
        """`(bind analysis :feature energy :range [lo hi] :smooth s :offset s :decay s :noise a)`."""
        positional, keywords = self._split(form)
        if len(positional) != 1:
            raise _fail(form.pos, "(bind analysis :feature energy :range [lo hi]): one (analyze …) step, then settings")
        analysis = self._eval(positional[0], env)
        if not (isinstance(analysis, _Node) and analysis.type == "ANALYZE"):
            raise _fail(positional[0].pos, f"bind follows an (analyze …) step, not {_describe(analysis)}")
        if "feature" not in keywords:
            raise _fail(form.pos, "(bind analysis :feature energy …): name the feature to follow")
        feature = _snake(self._literal_name(keywords["feature"][1]))
        options: dict[str, Any] = {}
        where: dict[str, Pos] = {"feature": keywords["feature"][1].pos}
        for key, (keyword, value) in keywords.items():
            if key == "feature":
                continue
            if key not in ("range", "smooth", "offset", "decay", "noise"):
                raise _fail(
                    keyword.pos,
                    f"unknown bind keyword :{keyword.name} (known: :feature, :range, :smooth, :offset, :decay, :noise)",
                )
            options[key] = self._data(self._eval(value, env), value.pos)
            where[key] = value.pos
        return _Bind(analysis, positional[0].pos, feature, options, where, form.pos)

    def _analyze(self, form: SList, env: _Env, threaded: Any) -> _Node:
        """`(analyze clip :features [beats energy] :params {…})`, or `(analyze beats clip)`."""
        positional, keywords = self._split(form)
        names = list(positional)
        if threaded is not None:
            clip: tuple[Any, Pos] = (threaded, form.pos)
        elif names:
            last = names.pop()
            clip = (self._eval(last, env), last.pos)
        else:
            raise _fail(form.pos, "(analyze clip :features [beats energy]): a clip to analyze")
        features = [_snake(self._literal_name(item)) for item in names]
        where: dict[_Path, Pos] = {("features",): names[0].pos} if names else {}
        config: dict[str, Any] = {}
        for key, (keyword, value) in keywords.items():
            if key in ("feature", "features"):
                items = value.items if isinstance(value, SList) else (value,)
                features.extend(_snake(self._literal_name(item)) for item in items)
                where[("features",)] = value.pos
            elif key == "params":
                config["params"] = self._data(self._eval(value, env), value.pos)
                where[("params",)] = value.pos
            else:
                raise _fail(keyword.pos, f"unknown analyze keyword :{keyword.name} (known: :features, :params)")
        if not features:
            raise _fail(form.pos, "(analyze clip :features [beats energy]): name what to extract")
        config["features"] = features
        inputs, input_pos = self._clips([clip], "(analyze …)")
        return self._add("ANALYZE", form, inputs, input_pos, config, where)

    def _slice_on(self, form: SList, env: _Env, threaded: Any) -> _Node:
        """`(slice-on clip analysis :times beats [:every n] [:effect fx])`: the clip cut at the analysed
        times (SEGMENT_AT), each slice through `fx` (a MAP); a list of clips to (sequence …)."""
        positional, keywords = self._split(form)
        for key in ("fn", "init", "lambda"):
            if key in keywords:
                raise _fail(
                    keywords[key][0].pos,
                    "slice-on with a function per slice is not supported (a recipe has no user functions):"
                    " write :effect for what each slice goes through",
                )
        args = [(self._eval(item, env), item.pos) for item in positional]
        if threaded is not None:
            args.insert(0, (threaded, form.pos))
        if len(args) != 2:
            raise _fail(form.pos, "(slice-on clip analysis :times beats): a clip, then an (analyze …) step")
        (video, video_pos), (analysis, analysis_pos) = args
        if not (isinstance(analysis, _Node) and analysis.type == "ANALYZE"):
            raise _fail(analysis_pos, f"slice-on cuts at the times of an (analyze …) step, not {_describe(analysis)}")
        if "times" not in keywords:
            raise _fail(form.pos, f"(slice-on clip analysis :times beats): :times is one of {', '.join(_SLICE_TIMES)}")
        times = _snake(self._literal_name(keywords["times"][1]))
        config: dict[str, Any] = {"times_from": _NameOf(analysis), "feature": times}
        where: dict[_Path, Pos] = {("times_from",): analysis_pos, ("feature",): keywords["times"][1].pos}
        template: Value | None = None
        for key, (keyword, value) in keywords.items():
            if key == "times":
                continue
            if key == "pattern":
                if self._literal_name(value) != "all":
                    raise _fail(
                        value.pos, "slice-on :pattern all is the only pattern: every slice goes through :effect"
                    )
            elif key == "effect":
                template = value
            elif key in ("every", "precise", "max_segments"):
                config[key] = self._data(self._eval(value, env), value.pos)
                where[(key,)] = value.pos
            else:
                raise _fail(
                    keyword.pos,
                    f"unknown slice-on keyword :{keyword.name}"
                    " (known: :times, :every, :precise, :max-segments, :effect)",
                )
        inputs, input_pos = self._clips([(video, video_pos)], "(slice-on …)")
        cut = self._add("SEGMENT_AT", form, inputs, input_pos, config, where, makes_list=True)
        if template is None:
            return cut
        operation, settings, settings_pos = self._template(template, env)
        map_where = {("operation",): template.pos, **{("config", *k): p for k, p in settings_pos.items()}}
        return self._add(
            "MAP", form, [cut], [form.pos], {"operation": operation, "config": settings}, map_where, makes_list=True
        )

    def _map(self, form: SList, env: _Env, threaded: Any) -> _Node:
        """`(map clips (resize 64 48))`: one operation applied to every clip of a list (MAP)."""
        positional, keywords = self._split(form)
        if keywords:
            first = next(iter(keywords.values()))[0]
            raise _fail(first.pos, "(map clips (operation …)): settings go in the operation's form")
        if threaded is not None:
            if len(positional) != 1:
                raise _fail(form.pos, "(-> clips (map (operation …))): one operation")
            items: tuple[Any, Pos] = (threaded, form.pos)
            template = positional[0]
        else:
            if len(positional) != 2:
                raise _fail(form.pos, "(map clips (operation …)): a list of clips and one operation")
            items = (self._eval(positional[0], env), positional[0].pos)
            template = positional[1]
        inputs, input_pos = self._clips([items], "(map …)")
        operation, settings, settings_pos = self._template(template, env)
        where = {("operation",): template.pos, **{("config", *k): p for k, p in settings_pos.items()}}
        return self._add(
            "MAP", form, inputs, input_pos, {"operation": operation, "config": settings}, where, makes_list=True
        )

    def _template(self, value: Value, env: _Env) -> tuple[str, dict[str, Any], dict[_Path, Pos]]:
        """A node form without its clip (`(effect blur :radius 2)`, or just `blur`): its type and settings."""
        if isinstance(value, Symbol | Atom):
            node = self._effect_step(value, _TEMPLATE, [], {}, env, value.pos)
        elif isinstance(value, SList) and value.kind == "list" and head(value) in _NODE_FORMS:
            before = len(self.nodes)
            node = self._call(value, env, _TEMPLATE)
            if len(self.nodes) != before + 1 or self.nodes[-1] is not node:
                raise _fail(value.pos, "an operation applied to each clip makes one step: (effect blur :radius 2)")
        else:
            raise _fail(
                value.pos, "an operation applied to each clip is a node form without its clip, like (effect blur)"
            )
        if node.inputs != [_TEMPLATE] or node.makes_list:
            raise _fail(
                value.pos, "an operation applied to each clip takes that clip only: (resize 64 48), no clip of its own"
            )
        self.nodes.pop()
        return node.type, node.config, node.config_pos

    def _source(self, form: SList) -> _Input:
        """`(source :input "name" :type audio)`, `(source :input true :name "name")`, `(source :asset "logo")`."""
        positional, keywords = self._split(form)
        for key in ("path", "paths", "url"):
            if key in keywords:
                raise _fail(keywords[key][0].pos, PATH_REFUSED)
        for key in ("cid", "hash"):
            if key in keywords:
                raise _fail(
                    keywords[key][0].pos,
                    'a recipe names its inputs; their CIDs are given when it runs: (source :input "video")',
                )
        fields: dict[str, Any] = {}
        for key, (keyword, value) in keywords.items():
            if key in ("type", "description", "list", "asset"):
                fields[key] = self._literal_name(value) if key == "type" else self._literal(value)
            elif key not in ("input", "name"):
                raise _fail(
                    keyword.pos,
                    f"unknown source keyword :{keyword.name}"
                    " (known: :input, :name, :type, :description, :list, :asset)",
                )
        if positional:
            if len(positional) != 1 or "input" in keywords or "asset" in keywords:
                raise _fail(form.pos, '(source NAME) reads the named asset; (source :input "name") a recipe input')
            fields["asset"] = self._literal_name(positional[0])
        name_at = form.pos
        if "asset" in fields:
            if not isinstance(fields["asset"], str) or not NAME_RE.match(fields["asset"]):
                raise _fail(form.pos, "an asset's name is letters, digits, '_' or '-' (at most 64)")
            fields.setdefault("type", "any")
            name = fields["asset"]
            if "name" in keywords:
                name, name_at = self._literal_name(keywords["name"][1]), keywords["name"][1].pos
        elif "input" in keywords:
            value = self._literal(keywords["input"][1])
            name_at = keywords["input"][1].pos
            if value is True and "name" in keywords:
                name, name_at = self._literal_name(keywords["name"][1]), keywords["name"][1].pos
            elif isinstance(value, str):
                name = value
            else:
                raise _fail(name_at, '(source :input "name"): the input\'s name')
        else:
            raise _fail(form.pos, '(source :input "name") reads a recipe input; (source :asset "name") a named asset')
        return self._declare_input(name, fields, name_at)

    # -- the YAML form's data --------------------------------------------------------------------

    def _emit(
        self, raw: dict[str, Any], positions: dict[_Path, Pos], output: _Node, output_pos: Pos
    ) -> SexpRecipeSource:
        taken = set(self.defined)
        counters: dict[str, int] = {}
        for node in self.nodes:
            if node.name is None:
                kind = node.type.lower().replace("_", "-")
                while True:
                    counters[kind] = counters.get(kind, 0) + 1
                    candidate = f"{kind}-{counters[kind]}"
                    if candidate not in taken:
                        break
                node.name = candidate
                taken.add(candidate)
        raw["inputs"] = {name: dict(fields) for name, fields in self.inputs.items()}
        for name, pos in self.input_pos.items():
            positions[("inputs", name)] = pos
        steps: list[dict[str, Any]] = []
        for i, node in enumerate(self.nodes):
            base: _Path = ("steps", i)
            positions[base] = node.pos
            positions[(*base, "id")] = node.name_pos or node.pos
            positions[(*base, "type")] = node.head_pos
            positions[(*base, "config")] = node.pos
            for j, pos in enumerate(node.input_pos):
                positions[(*base, "inputs", j)] = pos
            for key, pos in node.config_pos.items():
                positions[(*base, "config", *key)] = pos
            steps.append(
                {
                    "id": node.name,
                    "type": node.type,
                    "inputs": [self._ref(clip) for clip in node.inputs],
                    "config": _named(node.config),
                }
            )
        raw["steps"] = steps
        raw["output"] = output.name
        positions[("output",)] = output_pos
        if self.assets:
            raw["registry"] = {"assets": self.assets}
        return SexpRecipeSource(raw, positions)

    @staticmethod
    def _ref(clip: _Clip) -> str:
        if isinstance(clip, _Node | _Input) and clip.name is not None:
            return clip.name
        raise AssertionError("every step has a name by now")  # pragma: no cover


def _named(value: Any) -> Any:
    """Settings with the steps they name (`_NameOf`) written as those steps' names."""
    if isinstance(value, _NameOf):
        return value.node.name
    if isinstance(value, dict):
        return {key: _named(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_named(item) for item in value]
    return value
