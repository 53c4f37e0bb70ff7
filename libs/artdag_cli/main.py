"""`artdag` — the command line entry point."""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

from artdag_cli.client import Client
from artdag_cli.progress import Progress
from artdag_common.cid import cid_of_file, validate_cid
from artdag_common.errors import ArtdagError

DEFAULT_SERVER = "http://127.0.0.1:8100"


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {value!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 1-65535, got {port}")
    return port


def _replicas(value: str) -> int:
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not 1 <= count <= 64:
        raise argparse.ArgumentTypeError(f"replicas must be 1-64, got {count}")
    return count


def _binding(value: str) -> tuple[str, str]:
    name, sep, target = value.partition("=")
    if not sep or not name or not target:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH or NAME=CID, got {value!r}")
    return name, target


def _cid(value: str) -> str:
    try:
        return validate_cid(value.strip())
    except ArtdagError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a CID: {exc.message}") from None


def _add_inputs(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "-i",
        "--input",
        dest="inputs",
        type=_binding,
        action="append",
        default=[],
        metavar="NAME=PATH|CID",
        help="bind a recipe input to a file or a stored cid",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="artdag", description="Render media from recipes.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser("up", help="start the embedded stack (nats-server + every service)")
    up.add_argument(
        "--home",
        type=Path,
        default=Path(os.environ.get("ARTDAG_HOME", "~/.artdag")),
        help="data directory (ARTDAG_HOME, default ~/.artdag)",
    )
    up.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"), help="gateway address (HOST)")
    up.add_argument("--port", type=_port, default=os.environ.get("PORT", "8100"), help="gateway port (PORT)")
    up.add_argument(
        "--nats-url", default=os.environ.get("NATS_URL"), help="use this NATS server instead of starting one (NATS_URL)"
    )
    up.add_argument("--demo", action="store_true", help="upload demo media and run the example recipe")
    up.add_argument("--executors", type=_replicas, default=1, help="executor replicas to start (default 1)")
    up.add_argument(
        "--planners", type=_replicas, default=1, help="planner replicas to start (default 1; they share every run)"
    )

    cid = commands.add_parser("cid", help="print the IPFS CID of a file (what `ipfs add` would give)")
    cid.add_argument("file", type=Path)
    cid.add_argument("--cid-version", type=int, choices=(0, 1), default=0)

    render = commands.add_parser(
        "render",
        help="run a recipe (or one effect) on files or CIDs, with a live progress bar, and download the output",
    )
    render.add_argument(
        "recipe",
        metavar="RECIPE|INPUT",
        help="recipe file (YAML, or an S-expression .sexp), or a stored recipe's name, CID or name@cid"
        " (with --effect: the input file, CID or asset name)",
    )
    _add_inputs(render)
    render.add_argument(
        "-p",
        "--param",
        dest="params",
        type=_binding,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="recipe: set STEP.KEY in a step's config; --effect: set an effect parameter (VALUE is YAML)",
    )
    render.add_argument("--effect", metavar="NAME", help="quick mode: apply this effect to the input video")
    render.add_argument(
        "--sync", action="store_true", help="with --effect: wait and download (default: print the run id and exit)"
    )
    render.add_argument("-o", "--output", type=Path, help="where to write the output (default <run>.mp4)")
    render.add_argument("--server", default=os.environ.get("ARTDAG_SERVER", DEFAULT_SERVER))
    render.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the run")

    plan = commands.add_parser("plan", help="plan a recipe: every step cached or to run, and the frames to render")
    plan.add_argument("recipe", type=Path, help="recipe file (YAML, or an S-expression .sexp)")
    _add_inputs(plan)
    plan.add_argument("--dry-run", action="store_true", help="only plan (the default; executing is `render`)")
    plan.add_argument("--json", action="store_true", help="print the whole plan as JSON")
    plan.add_argument("--server", default=os.environ.get("ARTDAG_SERVER", DEFAULT_SERVER))

    analyze = commands.add_parser("analyze", help="analyze a file on the server: tempo, beats, energy, …")
    analyze.add_argument("file", type=Path, help="a media file, or a stored CID")
    analyze.add_argument("--features", default="beats,energy", help="comma-separated (default beats,energy)")
    analyze.add_argument("--window-ms", type=float, help="energy/spectrum window in ms (default 50)")
    analyze.add_argument("--tempo-min", type=float, help="slowest beat rate to consider, in BPM (default 40)")
    analyze.add_argument("--tempo-max", type=float, help="fastest beat rate to consider, in BPM (default 240)")
    analyze.add_argument(
        "--tempo-hint", type=float, help="the BPM you would tap along at: picks the metrical level of the beats"
    )
    analyze.add_argument("-o", "--output", type=Path, help="write the JSON result here instead of stdout")
    analyze.add_argument("--server", default=os.environ.get("ARTDAG_SERVER", DEFAULT_SERVER))

    runs = commands.add_parser("runs", help="list runs, newest first")
    runs.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    runs.add_argument("--json", action="store_true", help="print JSON")
    runs.add_argument("--server", default=os.environ.get("ARTDAG_SERVER", DEFAULT_SERVER))

    run = commands.add_parser("run", help="one run: `artdag run show RUN_ID`")
    run_commands = run.add_subparsers(dest="run_command", required=True, metavar="SUBCOMMAND")
    show = run_commands.add_parser("show", help="a run's status, steps and output")
    show.add_argument("run_id")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.add_argument("--server", default=os.environ.get("ARTDAG_SERVER", DEFAULT_SERVER))

    assets = commands.add_parser("assets", help="your asset names and the shared ones")
    assets.add_argument("--json", action="store_true", help="print JSON")
    assets.add_argument("--server", default=os.environ.get("ARTDAG_SERVER", DEFAULT_SERVER))
    asset = commands.add_parser("asset", help="name content: `artdag asset add NAME FILE|CID`, `artdag asset rm NAME`")
    asset_commands = asset.add_subparsers(dest="asset_command", required=True, metavar="SUBCOMMAND")
    asset_add = asset_commands.add_parser("add", help="name a file (uploaded now) or stored content")
    asset_add.add_argument("name", help="letters, digits, '_' and '-': what recipes and --effect renders call it")
    asset_add.add_argument("target", metavar="FILE|CID")
    asset_add.add_argument("--shared", action="store_true", help="admins: a name for everyone")
    asset_add.add_argument("--server", default=os.environ.get("ARTDAG_SERVER", DEFAULT_SERVER))
    asset_rm = asset_commands.add_parser("rm", help="forget a name (the content stays)")
    asset_rm.add_argument("name")
    asset_rm.add_argument("--shared", action="store_true", help="the shared name (admins)")
    asset_rm.add_argument("--server", default=os.environ.get("ARTDAG_SERVER", DEFAULT_SERVER))

    effect = commands.add_parser(
        "effect", help="effects you write: `artdag effect add FILE`, `artdag effect preview FILE INPUT`"
    )
    effect_commands = effect.add_subparsers(dest="effect_command", required=True, metavar="SUBCOMMAND")
    effect_add = effect_commands.add_parser(
        "add", help="check, store and name an effect; prints its CID and name (what recipes call it)"
    )
    effect_add.add_argument("file", type=Path, metavar="FILE", help="the effect's source, (define-effect name …)")
    effect_add.add_argument(
        "--name", help="what recipes call it (`effect: NAME`; default: its declared name); `artdag asset rm` forgets it"
    )
    effect_add.add_argument("--server", default=os.environ.get("ARTDAG_SERVER", DEFAULT_SERVER))
    preview = effect_commands.add_parser("preview", help="store an effect, render it on INPUT and download the output")
    preview.add_argument("file", type=Path, metavar="FILE", help="the effect's source")
    preview.add_argument("input", metavar="INPUT", help="a video file, CID or asset name")
    preview.add_argument("--name", help="what recipes call it (default: its declared name)")
    preview.add_argument(
        "-p", "--param", dest="params", type=_binding, action="append", default=[], metavar="KEY=VALUE"
    )
    preview.add_argument("-o", "--output", type=Path, help="where to write the output (default <run>.mp4)")
    preview.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the run")
    preview.add_argument("--server", default=os.environ.get("ARTDAG_SERVER", DEFAULT_SERVER))

    recipes = commands.add_parser("recipes", help="list the server's recipes")
    recipes.add_argument("--json", action="store_true", help="print JSON")
    recipes.add_argument("--server", default=os.environ.get("ARTDAG_SERVER", DEFAULT_SERVER))

    upload = commands.add_parser("upload", help="upload files; prints each one's CID")
    upload.add_argument("files", type=Path, nargs="+", metavar="FILE")
    upload.add_argument("--json", action="store_true", help="print the stored records as JSON")
    upload.add_argument("--server", default=os.environ.get("ARTDAG_SERVER", DEFAULT_SERVER))

    locations = commands.add_parser(
        "locations", help="where content is kept: this server's store, and its copies at your storage providers"
    )
    locations.add_argument("cid", type=_cid, help="the content's CID")
    locations.add_argument("--json", action="store_true", help="print JSON")
    locations.add_argument("--server", default=os.environ.get("ARTDAG_SERVER", DEFAULT_SERVER))

    copy = commands.add_parser("copy", help="copy content to one of your storage providers (made in the background)")
    copy.add_argument("cid", type=_cid, help="the content's CID")
    copy.add_argument(
        "--provider", metavar="ID|NAME", help="the provider's id or name (default: your default provider)"
    )
    copy.add_argument("--json", action="store_true", help="print JSON")
    copy.add_argument("--server", default=os.environ.get("ARTDAG_SERVER", DEFAULT_SERVER))

    commands.add_parser("migrate", help="bring the database schema up to date")

    token = commands.add_parser("token", help="local-mode API tokens")
    token_commands = token.add_subparsers(dest="token_command", required=True)
    create = token_commands.add_parser("create", help="make a token for a user (printed once; only its hash is kept)")
    create.add_argument("--user", required=True, help="the user the token belongs to")
    create.add_argument("--admin", action="store_true", help="give the token the admin role (sees everything)")
    create.add_argument("--scope", action="append", default=[], choices=["l2"], help="extra scopes (l2)")
    create.add_argument("--days", type=float, help="lifetime in days (default TOKEN_TTL_DAYS, 90)")
    create.add_argument(
        "--home", type=Path, default=Path(os.environ.get("ARTDAG_HOME", "~/.artdag")), help="artdag home (ARTDAG_HOME)"
    )
    create.add_argument("--save", action="store_true", help="also save it as <home>/token (mode 0600) for the CLI")

    bus = commands.add_parser(
        "bus-config",
        help="the bus logins for a NATS of your own: its `authorization` block, or a Kubernetes Secret (--secret)",
    )
    bus.add_argument(
        "--home", type=Path, default=Path(os.environ.get("ARTDAG_HOME", "~/.artdag")), help="artdag home (ARTDAG_HOME)"
    )
    bus.add_argument(
        "--bucket",
        default=os.environ.get("ARTDAG_NATS_OBJECT_BUCKET", "artdag_content"),
        help="the content store's object-store bucket (ARTDAG_NATS_OBJECT_BUCKET)",
    )
    bus.add_argument("--secret", metavar="NAME", help="print a Secret NAME (the chart's bus.existingSecret) instead")
    bus.add_argument(
        "--server-config", type=Path, metavar="FILE", help="write the nats-server config to FILE (mode 0600) instead"
    )

    verify = commands.add_parser("verify", help="check an output's signed provenance (and re-render it with --render)")
    verify.add_argument("cid", help="the output's CID")
    verify.add_argument("--render", action="store_true", help="render it again from the recorded recipe and inputs")
    verify.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the re-render")
    verify.add_argument("--server", default=os.environ.get("ARTDAG_SERVER", DEFAULT_SERVER))
    return parser


def cmd_cid(args: argparse.Namespace) -> int:
    path: Path = args.file
    if not path.is_file():
        raise ArtdagError(f"{path}: no such file")
    print(cid_of_file(path, cid_version=args.cid_version))
    return 0


def _yaml_value(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except (yaml.YAMLError, ValueError, TypeError, ArithmeticError):  # `1e999999`, `2026-13-45`…: text
        return text


def apply_params(recipe: str, params: list[tuple[str, str]]) -> str:
    """The recipe with `STEP.KEY=VALUE` settings written into its steps' configs."""
    if not params:
        return recipe
    if _is_sexp(recipe):
        raise ArtdagError(
            "-p sets STEP.KEY in a YAML recipe's steps; an S-expression recipe takes its settings from"
            " its :params defaults: change them in the file"
        )
    import yaml

    try:
        data = yaml.safe_load(recipe)
    except yaml.YAMLError as exc:
        raise ArtdagError(f"the recipe is not valid YAML: {exc}") from None
    except (ValueError, TypeError, ArithmeticError, RecursionError) as exc:
        raise ArtdagError(f"the recipe holds a value YAML cannot read: {exc}") from None
    steps = (data.get("dag") or {}).get("nodes") if isinstance(data, dict) and "dag" in data else None
    steps = steps if steps is not None else (data.get("steps") if isinstance(data, dict) else None)
    if not isinstance(steps, list):
        raise ArtdagError("-p: the recipe has no list of steps")
    by_id = {str(step.get("id")): step for step in steps if isinstance(step, dict)}
    for key, value in params:
        step_id, dot, field = key.rpartition(".")
        if not dot or not step_id or not field:
            raise ArtdagError(f"-p {key}={value}: expected STEP.KEY=VALUE")
        if step_id not in by_id:
            raise ArtdagError(f"-p {key}: no step {step_id!r} (steps: {', '.join(by_id)})")
        config = by_id[step_id].setdefault("config", {})
        if not isinstance(config, dict):
            raise ArtdagError(f"-p {key}: step {step_id!r} has no config mapping")
        config[field] = _yaml_value(value)
    return str(yaml.safe_dump(data, sort_keys=False))


def _is_sexp(recipe: str) -> bool:
    """Whether a recipe's text is an S-expression (`(recipe …)` after blank and `;` comment lines)."""
    for line in recipe.splitlines():
        text = line.strip()
        if text and not text.startswith(";"):
            return text.startswith("(")
    return False


def effect_recipe(effect: str, params: list[tuple[str, str]]) -> str:
    """A one-step recipe applying `effect` (the original L1's quick mode)."""
    import json

    config = {"effect": effect, "params": {key: _yaml_value(value) for key, value in params}}
    return "\n".join(
        [
            f"name: effect-{effect}",
            "inputs: [video]",
            "steps:",
            f"  - {{id: {json.dumps(effect)}, type: EFFECT, inputs: [video], config: {json.dumps(config)}}}",
            f"output: {json.dumps(effect)}",
            "",
        ]
    )


def cmd_render(args: argparse.Namespace) -> int:
    if args.effect:
        if args.inputs:
            raise ArtdagError("--effect takes one INPUT (a file or CID), not -i")
        recipe = effect_recipe(args.effect, args.params)
        bindings = [("video", args.recipe)]
    else:
        if args.sync:
            raise ArtdagError("--sync is for --effect; a recipe render always waits")
        bindings = args.inputs
    client = Client(args.server)
    try:
        if not args.effect:
            recipe = apply_params(_recipe_source(client, args.recipe), args.params)
        inputs = _bind_inputs(client, bindings)
        planned = client.plan(recipe, inputs)
        run_id = client.execute(planned["plan"]["plan_id"])
        print(f"run {run_id}", file=sys.stderr)
        if args.effect and not args.sync:
            print(run_id)
            return 0
        # Frames still to render (inputs and cached steps cost nothing).
        progress = Progress({s["step_id"]: int(s["frames"] or 0) for s in planned["steps"] if s["status"] == "to-run"})
        state = client.wait(run_id, args.timeout, progress.update)
        progress.finish()
        if state["status"] != "completed":
            raise ArtdagError(f"run {state['status']}: {state.get('error')}")
        output: Path = args.output or Path(f"{run_id}.mp4")
        client.download(state["output_cid"], output)
        print(f"{output}  ({state['output_cid']})")
        return 0
    finally:
        client.close()


def cmd_runs(args: argparse.Namespace) -> int:
    import json

    if not 1 <= args.limit <= 500:
        raise ArtdagError("--limit: 1-500")
    client = Client(args.server)
    try:
        body = client.runs(limit=args.limit)
    finally:
        client.close()
    if args.json:
        print(json.dumps(body, indent=2))
        return 0
    print(f"{'RUN':<36}  {'STATUS':<10}  {'RECIPE':<24}  {'STARTED':<19}  OUTPUT")
    for run in body["runs"]:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run["created_at"]))
        print(
            f"{run['run_id']:<36}  {run['status']:<10}  {run['recipe_name'][:24]:<24}  {started}  "
            f"{run['output_cid'] or '-'}"
        )
    print(f"{len(body['runs'])} of {body['total']} runs", file=sys.stderr)
    return 0


def cmd_run_show(args: argparse.Namespace) -> int:
    import json

    client = Client(args.server)
    try:
        state = client.run(args.run_id)
    finally:
        client.close()
    if args.json:
        print(json.dumps(state, indent=2))
        return 0
    steps: dict[str, dict[str, Any]] = state.get("steps") or {}
    done = sum(1 for s in steps.values() if s["status"] in ("completed", "cached"))
    print(f"run      {state['run_id']}")
    print(f"recipe   {state['recipe_name']}  ({state['recipe_id']})")
    print(f"status   {state['status']}  {done}/{len(steps)} steps")
    for name, cid in state["inputs"].items():
        print(f"input    {name} = {cid}")
    print(f"output   {state.get('output_cid') or '-'}")
    if state.get("error"):
        print(f"error    {state['error']}")
    print()
    print(f"{'STEP':<32}  {'TYPE':<10}  {'STATUS':<9}  {'TIME':>7}  OUTPUT")
    for step in steps.values():
        took = "" if step.get("elapsed_s") is None else f"{step['elapsed_s']:.2f}s"
        print(
            f"{step['name'][:32]:<32}  {step['node_type']:<10}  {step['status']:<9}  {took:>7}  "
            f"{step.get('output_cid') or '-'}"
        )
    return 0


def cmd_recipes(args: argparse.Namespace) -> int:
    import json

    client = Client(args.server)
    try:
        body = client.recipes()
    finally:
        client.close()
    if args.json:
        print(json.dumps(body, indent=2))
        return 0
    print(f"{'NAME':<24}  {'INPUTS':<28}  {'ID':<46}  DESCRIPTION")
    for recipe in body["recipes"]:
        inputs = ", ".join(f"{i['name']}:{i['type']}" for i in recipe["inputs"])
        print(f"{recipe['name'][:24]:<24}  {inputs[:28]:<28}  {recipe['recipe_id']:<46}  {recipe['description']}")
    return 0


def cmd_upload(args: argparse.Namespace) -> int:
    import json

    for path in args.files:
        if not path.is_file():
            raise ArtdagError(f"{path}: no such file")
    client = Client(args.server)
    records = []
    try:
        for path in args.files:
            record = client.upload_record(path)
            records.append(record)
            if not args.json:
                print(f"{record['cid']}  {path}  ({record['media_type']}, {record['size']} bytes)")
    finally:
        client.close()
    if args.json:
        print(json.dumps(records, indent=2))
    return 0


PROVIDER_ID = re.compile(r"[0-9a-f]{32}")


def print_locations(body: dict[str, Any]) -> None:
    """A `GET /cache/{cid}/locations` answer as a table: the local store, then each provider's copy."""
    local = "yes" if body["local"] else "no (only at the providers below)"
    print(f"cid      {body['cid']}")
    print(f"local    {local}")
    locations: list[dict[str, Any]] = body["locations"]
    if not locations:
        print("no copies at storage providers")
        return
    print()
    print(f"{'PROVIDER':<24}  {'TYPE':<8}  {'STATE':<8}  {'UPDATED':<19}  ERROR")
    for loc in locations:
        updated = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(loc["updated_at"]))
        error = loc.get("error") or "-"
        print(f"{loc['provider_name'][:24]:<24}  {loc['type']:<8}  {loc['state']:<8}  {updated}  {error}")


def _provider_id(client: Client, wanted: str) -> str:
    """The id of the provider `wanted` names: an id as it is, or the name of one of yours."""
    if PROVIDER_ID.fullmatch(wanted.lower()):
        return wanted.lower()
    providers = client.providers()
    matches = [p["id"] for p in providers if p["name"] == wanted]
    if len(matches) == 1:
        return str(matches[0])
    names = ", ".join(sorted(p["name"] for p in providers)) or "none (add one at /storage)"
    if matches:
        raise ArtdagError(
            f"--provider: {len(matches)} of your providers are named {wanted!r}: give its id (GET /storage lists them)"
        )
    raise ArtdagError(f"--provider: no provider with the id or name {wanted!r}; yours: {names}")


def cmd_locations(args: argparse.Namespace) -> int:
    import json

    client = Client(args.server)
    try:
        body = client.locations(args.cid)
    finally:
        client.close()
    if args.json:
        print(json.dumps(body, indent=2))
    else:
        print_locations(body)
    return 0


def cmd_copy(args: argparse.Namespace) -> int:
    import json

    client = Client(args.server)
    try:
        provider_id = _provider_id(client, args.provider.strip()) if args.provider else None
        body = client.copy(args.cid, provider_id)
    finally:
        client.close()
    if args.json:
        print(json.dumps(body, indent=2))
        return 0
    print_locations(body)
    print(f"copying in the background: `artdag locations {args.cid}` shows when it is stored", file=sys.stderr)
    return 0


ASSET_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")


def _stored(client: Client, target: str, label: str) -> str:
    """The cid of `target`: a file (uploaded now), a stored cid, or a named asset (yours first, then shared)."""
    path = Path(target)
    if path.is_file():
        print(f"uploading {path} …", file=sys.stderr)
        return client.upload(path)
    try:
        return validate_cid(target)
    except ArtdagError:
        pass
    if ASSET_NAME.match(target):
        named = sorted((a for a in client.assets() if a["name"] == target), key=lambda a: a["shared"])
        if named:
            cid: str = named[0]["cid"]
            return cid
        raise ArtdagError(f"{label}: {target} is no file, CID or asset name (`artdag assets` lists the names)")
    raise ArtdagError(f"{label}: {target} is neither a file nor a CID")


def cmd_assets(args: argparse.Namespace) -> int:
    import json

    client = Client(args.server)
    try:
        found = client.assets()
    finally:
        client.close()
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    for item in found:
        print(f"{item['name']:<24}  {item['cid']}  {'shared' if item['shared'] else 'yours'}")
    return 0


def cmd_effect(args: argparse.Namespace) -> int:
    try:
        source = args.file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ArtdagError(f"{args.file}: cannot read it as text ({exc})") from None
    name: str | None = args.name
    if name is not None and not ASSET_NAME.match(name):
        raise ArtdagError(f"--name {name!r}: an effect's name is letters, digits, '_' and '-' (at most 64)")
    client = Client(args.server)
    try:
        stored = client.add_effect(source, name)
    finally:
        client.close()
    where = sys.stderr if args.effect_command == "preview" else sys.stdout
    print(f"{stored['cid']}  {name or stored['name']}", file=where)
    if args.effect_command == "add":
        return 0
    render = argparse.Namespace(
        effect=stored["cid"],
        recipe=args.input,
        inputs=[],
        params=args.params,
        sync=True,
        output=args.output,
        server=args.server,
        timeout=args.timeout,
    )
    return cmd_render(render)


def cmd_asset(args: argparse.Namespace) -> int:
    if not ASSET_NAME.match(args.name):
        raise ArtdagError(f"{args.name!r}: an asset name is letters, digits, '_' and '-' (at most 64)")
    client = Client(args.server)
    try:
        if args.asset_command == "add":
            cid = _stored(client, args.target, args.name)
            record = client.add_asset(args.name, cid, shared=args.shared)
            print(f"{record['name']}  {record['cid']}")
        else:
            record = client.delete_asset(args.name, shared=args.shared)
            print(f"forgot {record['name']} ({record['cid']})")
    finally:
        client.close()
    return 0


def _bind_inputs(client: Client, bindings: list[tuple[str, str]]) -> dict[str, str]:
    return {name: _stored(client, target, f"input {name}") for name, target in bindings}


def _recipe_source(client: Client, recipe: str) -> str:
    """The text of a recipe file, else of the stored recipe that `recipe` names (name, CID or name@cid).

    What a stored recipe's name may be is the server's to say (its 400 names the forms): the thin
    client installed from a server carries no recipe parser.
    """
    path = Path(recipe)
    if path.is_file():
        return path.read_text()
    if path.suffix in (".yaml", ".yml", ".sexp") or "/" in recipe:
        raise ArtdagError(f"{recipe}: no such recipe file")
    text: str = client.recipe(recipe)["text"]
    return text


def _recipe_text(path: Path) -> str:
    if not path.is_file():
        raise ArtdagError(f"{path}: no such recipe file")
    return path.read_text()


def cmd_plan(args: argparse.Namespace) -> int:
    import json

    recipe = _recipe_text(args.recipe)
    client = Client(args.server)
    try:
        inputs = _bind_inputs(client, args.inputs)
        reply = client.plan(recipe, inputs)
    finally:
        client.close()
    if args.json:
        print(json.dumps(reply, indent=2))
        return 0
    print(f"plan {reply['plan']['plan_id']}")
    for step in reply["steps"]:
        frames = "" if step["frames"] is None else f"{step['frames']:>8} frames encoded"
        handoff = "" if step["status"] == "input" else f" [{step.get('handoff', 'deliver')}]"
        print(f"  L{step['level']:<2} {step['status']:<7} {step['node_type']:<10} {step['name']:<30} {frames}{handoff}")
        if step.get("covers"):
            print(f"      fuses {' → '.join(step['covers'])}")
    print(f"{reply['to_run']} to run, {reply['cached']} cached, {reply['cost_frames']} frames to render")
    per_frame = reply.get("encodes_per_output_frame")
    if per_frame is not None:
        print(
            f"{reply['frames_encoded']} frames encoded for {reply['output_frames']} output frames: "
            f"{per_frame:.2f} encodes per output frame"
        )
    return 0


def analysis_params(args: argparse.Namespace) -> dict[str, Any]:
    """The analyzer parameters given as options. The server checks them (the client wheel has no
    pydantic models): a bad one comes back as a 422 naming `params.<name>`."""
    names = ("window_ms", "tempo_min", "tempo_max", "tempo_hint")
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def cmd_analyze(args: argparse.Namespace) -> int:
    import json

    features = [f.strip() for f in str(args.features).split(",") if f.strip()]
    if not features:
        raise ArtdagError("--features: name at least one feature")
    params = analysis_params(args)
    client = Client(args.server)
    try:
        cid = _stored(client, str(args.file), "analyze")
        reply = client.analyze(cid, features, params)
    finally:
        client.close()
    text = json.dumps(reply["result"], indent=2)
    if args.output is not None:
        args.output.write_text(text + "\n")
        print(f"{args.output}  (analysis {reply['analysis_id'][:12]}, result {reply['result_cid']})", file=sys.stderr)
    else:
        print(text)
    return 0


def cmd_migrate(_args: argparse.Namespace) -> int:
    import asyncio

    from artdag_common.db import migrate
    from artdag_common.settings import CommonSettings, load_settings

    settings = load_settings(CommonSettings)
    asyncio.run(migrate(settings.effective_database_url))
    print("database is up to date", file=sys.stderr)
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    import asyncio

    from artdag_common.settings import CommonSettings, load_settings
    from artdag_common.tokens import issue_local_token, save_token

    if not re.match(r"^[A-Za-z0-9_.@-]{1,256}$", args.user):
        raise ArtdagError("--user: letters, digits and _ . @ - only")
    if args.days is not None and args.days <= 0:
        raise ArtdagError("--days: must be positive")
    home = args.home.expanduser().resolve()
    os.environ["ARTDAG_HOME"] = str(home)
    settings = load_settings(CommonSettings)
    if settings.auth.l2_mode:
        raise ArtdagError("this L1 is in L2 mode (L2_SERVER is set): tokens come from L2")
    days = args.days if args.days is not None else settings.auth.token_ttl_days
    token = asyncio.run(
        issue_local_token(
            settings.effective_database_url,
            args.user,
            roles=["admin"] if args.admin else [],
            scopes=list(args.scope),
            ttl_s=days * 86_400,
        )
    )
    if args.save:
        print(f"saved in {save_token(home, token)} (mode 0600)", file=sys.stderr)
    print(token)
    return 0


def cmd_bus_config(args: argparse.Namespace) -> int:
    """Print the logins in `<home>/bus` (made there first if missing) for a NATS server of the operator's.

    `artdag up --nats-url` then gives each service its login from the same home.
    """
    import base64
    import json

    from artdag_common.bus_access import USERS, BusCredentials, credentials_conf

    if not re.match(r"^[A-Za-z0-9_-]{1,64}$", args.bucket):
        raise ArtdagError("--bucket: letters, digits, _ and - only")
    home = args.home.expanduser().resolve()
    try:
        credentials = BusCredentials.ensure(home)
    except (OSError, ValueError) as exc:
        raise ArtdagError(f"bus credentials in {home}: {exc}") from None
    if args.secret is not None:
        if not re.match(r"^[a-z0-9]([-a-z0-9]{0,251}[a-z0-9])?$", args.secret):
            raise ArtdagError("--secret: a Kubernetes name (lower-case letters, digits and -)")
        data = {user: base64.b64encode(credentials.login(user).password.encode()).decode() for user in USERS}
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": args.secret},
            "type": "Opaque",
            "data": data,
        }
        print(json.dumps(secret, indent=2))
    elif args.server_config is not None:
        path = args.server_config.expanduser().resolve()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(path.name + ".tmp")
            temporary.unlink(missing_ok=True)
            # Created 0600 before a byte is written: it holds the passwords.
            with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
                out.write(credentials_conf(credentials, args.bucket))
            temporary.replace(path)
        except OSError as exc:
            raise ArtdagError(f"--server-config: cannot write {path}: {exc.strerror}") from None
        print(f"wrote the bus logins of {BusCredentials.path(home)} to {path}", file=sys.stderr)
    else:
        print(f"# artdag's bus logins (from {BusCredentials.path(home)}): include this in the nats-server config")
        print(credentials_conf(credentials, args.bucket), end="")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    import json

    from artdag_common.keys import verify_record

    cid = validate_cid(args.cid)
    client = Client(args.server)
    try:
        meta = client.get_json(f"/cache/{cid}/meta")
        provenance_cid = meta.get("provenance_cid")
        if not provenance_cid:
            raise ArtdagError(f"{cid} has no provenance record (only run outputs have one)")
        record = json.loads(client.get_bytes(f"/cache/{provenance_cid}/raw"))
        actor = client.get_json("/actor")
        trusted = actor.get("artdag:provenanceKey", {}).get("publicKeyBase64")
        ok, why = verify_record(record, trusted)
        print(f"provenance {provenance_cid}: {'signature OK' if ok else 'signature BAD'} ({why})")
        if record.get("output", {}).get("cid") != cid:
            print(f"the record is about {record.get('output', {}).get('cid')}, not {cid}")
            ok = False
        if not ok:
            return 1
        if not args.render:
            return 0
        inputs = {i["name"]: i["cid"] for i in record.get("inputs", [])}
        recipe = client.get_json(f"/runs/{record['run_id']}/recipe")["text"]
        print(f"re-rendering run {record['run_id']} (recipe {record['recipe_cid']}) …", file=sys.stderr)
        run_id = client.submit(recipe, inputs, fresh=True)
        state = client.wait(run_id, args.timeout)
        if state["status"] != "completed":
            raise ArtdagError(f"the re-render failed: {state.get('error')}")
        again = state["output_cid"]
        if again == cid:
            print(f"re-rendered: {again}: bytes match")
            return 0
        print(f"re-rendered: {again}: bytes DIFFER from {cid}")
        return 1
    finally:
        client.close()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "up":
            from artdag_cli.launcher import run_up

            return run_up(
                args.home.expanduser().resolve(),
                args.host,
                args.port,
                args.nats_url,
                args.demo,
                {"executor": args.executors, "planner": args.planners},
            )
        if args.command == "cid":
            return cmd_cid(args)
        if args.command == "render":
            return cmd_render(args)
        if args.command == "plan":
            return cmd_plan(args)
        if args.command == "analyze":
            return cmd_analyze(args)
        if args.command == "runs":
            return cmd_runs(args)
        if args.command == "run":
            return cmd_run_show(args)
        if args.command == "recipes":
            return cmd_recipes(args)
        if args.command == "assets":
            return cmd_assets(args)
        if args.command == "asset":
            return cmd_asset(args)
        if args.command == "effect":
            return cmd_effect(args)
        if args.command == "upload":
            return cmd_upload(args)
        if args.command == "locations":
            return cmd_locations(args)
        if args.command == "copy":
            return cmd_copy(args)
        if args.command == "migrate":
            return cmd_migrate(args)
        if args.command == "token":
            return cmd_token_create(args)
        if args.command == "verify":
            return cmd_verify(args)
        if args.command == "bus-config":
            return cmd_bus_config(args)
    except ArtdagError as exc:
        print(f"artdag: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `artdag runs | head`
        sys.stderr.close()
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
