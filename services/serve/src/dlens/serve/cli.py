"""`dlens-serve run`: the DL-ENS Serve application on a local Ray (or RAY_ADDRESS), up until interrupted.

Without DLENS_API_TOKEN it serves anonymously on loopback only (a warning says so); any other --host
needs the token or --allow-anonymous (DLENS_ALLOW_ANONYMOUS).

Exit status: 0 stopped (Ctrl-C, SIGTERM or --stop-after); 1 the application did not answer its example
request; 2 bad arguments, token, store or model (one line).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import signal
import socket
import sys
import threading
import urllib.request

from dlens.common.config import Settings, cli_settings
from dlens.common.parallel import ensure_ray
from dlens.common.reader import StoreReader
from dlens.common.species import SPECIES_NAMES
from dlens.common.store import absolute_url
from dlens.serve.args import ServeArgs, required_token
from dlens.serve.catalog import Catalog


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dlens-serve", description=__doc__.split("\n")[0])
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="serve a registered model over HTTP until interrupted")
    run.add_argument("--store", help="local path or s3://bucket/prefix (default: DLENS_STORE)")
    run.add_argument("--model", default="latest", help="default model id, or latest (default)")
    run.add_argument(
        "--bundle", action="append", default=[], metavar="DIR",
        help="a model bundle (dlens-train export) to serve beside the store's registry; repeatable",
    )  # fmt: skip
    run.add_argument(
        "--host", default="127.0.0.1",
        help="HTTP host (default 127.0.0.1; any other, e.g. 0.0.0.0, needs a token or --allow-anonymous)",
    )  # fmt: skip
    run.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
    run.add_argument("--max-batch-size", type=int, default=8, help="dynamic batching: samples per pass")
    run.add_argument(
        "--stop-after",
        type=float,
        metavar="SECONDS",
        help="stop after this long (0: once the example answered)",
    )
    run.add_argument(
        "--allow-anonymous", action="store_true",
        help="serve without a token on a non-loopback --host: anyone who reaches it may call the API",
    )  # fmt: skip
    return parser


def is_loopback(host: str) -> bool:
    """Whether `host` is this machine's loopback only (localhost, 127.0.0.0/8, ::1): not a name that may
    resolve elsewhere, not 0.0.0.0."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_auth(host: str, port: int, allow_anonymous: bool, settings: Settings) -> tuple[bool, str]:
    """Whether the application serves without a token, and the start-up warning ("" with a token).

    Without DLENS_API_TOKEN loopback is anonymous by default; any other host needs `allow_anonymous`
    (--allow-anonymous) or DLENS_ALLOW_ANONYMOUS. ValueError in one line otherwise, or for a token that
    cannot be a bearer token."""
    if required_token(settings.api_token, allow_anonymous=True):
        return False, ""
    where = f"{host}:{port}"
    if is_loopback(host):
        return True, f"warning: no DLENS_API_TOKEN: every local user and process can call the API on {where}"
    if allow_anonymous or settings.allow_anonymous:
        return True, f"warning: anonymous access on {where}: anyone who reaches it can call the API"
    raise ValueError(
        f"--host {host} is reachable from other machines: set DLENS_API_TOKEN (`openssl rand -hex 32`) "
        "or pass --allow-anonymous"
    )


def _checked_example(url: str, store: str, token: str) -> str:
    """A forecast request for the newest run in the store, sent once: the path of the `curl` line printed."""
    reader = StoreReader(store)
    runs = reader.complete_runs()
    if not runs:
        return "/v1/models"
    lead = reader.spec.leads[len(reader.spec.leads) // 2]
    path = f"/v1/forecast/{SPECIES_NAMES[0]}?run={runs[-1]}:00&lead={lead}"
    request = urllib.request.Request(
        url + path, headers={"Authorization": f"Bearer {token}"} if token else {}
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        body = json.load(response)
    if "dlens" not in body:
        raise ValueError(f"{path} answered without a field: {str(body)[:200]}")
    return path


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = cli_settings(args.log_level, no_progress=True)
    try:
        anonymous, warning = check_auth(args.host, args.port, args.allow_anonymous, settings)
    except ValueError as exc:
        print(f"dlens-serve: {exc}", file=sys.stderr)
        return 2
    store = absolute_url(args.store or settings.store)
    bundles = tuple(absolute_url(b) for b in args.bundle)
    try:
        model_id = Catalog(store, 0, bundles).model(args.model).model_id
        StoreReader(store)  # the members (and static fields) come from the store: it must open
    except (ValueError, FileNotFoundError, OSError) as exc:
        print(f"dlens-serve: {getattr(exc, 'detail', exc)}", file=sys.stderr)
        return 2
    with socket.socket() as probe:
        try:
            probe.bind((args.host, args.port))
        except OSError as exc:
            print(
                f"dlens-serve: cannot listen on {args.host}:{args.port} ({exc}); pick another --port",
                file=sys.stderr,
            )
            return 2
    from ray import serve

    from dlens.serve.app import APP_NAME, build_app

    local = ensure_ray()
    serve.start(http_options={"host": args.host, "port": args.port})
    app_args = ServeArgs(
        store=store,
        model=model_id,
        bundles=bundles,
        max_batch_size=args.max_batch_size,
        api_token=settings.api_token,
        allow_anonymous=anonymous,
    )
    serve.run(build_app(app_args), name=APP_NAME, route_prefix="/", blocking=False)
    url = f"http://{'127.0.0.1' if args.host in ('0.0.0.0', '') else args.host}:{args.port}"
    token = settings.api_token.get_secret_value() if settings.api_token else ""
    try:
        example = _checked_example(url, store, token)
    except (OSError, ValueError) as exc:
        print(f"dlens-serve: the application does not answer: {exc}", file=sys.stderr)
        _stop(local)
        return 1
    auth = ' -H "Authorization: Bearer $DLENS_API_TOKEN"' if token else ""
    if warning:
        print(f"dlens-serve: {warning}", file=sys.stderr, flush=True)
    print(f"serving model {model_id} from {store}", flush=True)
    print(f"viewer: {url}/   API docs: {url}/docs   (Ctrl-C stops)", flush=True)
    print(f"try: curl -s{auth} '{url}{example}' | head -c 400", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait(timeout=args.stop_after)
    print("dlens-serve: stopping", flush=True)
    _stop(local)
    return 0


def _stop(local: bool) -> None:
    """Remove the application; shut down the Ray this command started (Serve goes with it), never a
    shared cluster's Serve."""
    import ray
    from ray import serve

    from dlens.serve.app import APP_NAME

    serve.delete(APP_NAME)
    if local:
        ray.shutdown()


if __name__ == "__main__":
    sys.exit(main())
