"""``vaekit explore RUN``: serve the explorer page on loopback, or ``--export`` it as one file."""

from __future__ import annotations

import argparse
import ipaddress
import signal
import sys
from typing import Any, Callable

from ..errors import VaekitError


def add_command(sub: Any) -> tuple[str, Callable[[argparse.Namespace], int]]:
    x = sub.add_parser("explore", help="a live page to move through a run's latent space (or --export it as one file)")
    x.add_argument("run")
    x.add_argument("--port", type=int, default=8765, help="TCP port (0: any free port); default 8765")
    x.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1, this machine only; another one warns)")
    x.add_argument("--no-browser", action="store_true", help="do not open a browser, just print the URL")
    x.add_argument("--export", metavar="FILE.html", help="write one self-contained page that decodes offline, and exit")
    x.add_argument("--points", type=int, default=1000, help="held-out examples shown on the pad (default 1000)")
    x.add_argument("--verbose", action="store_true", help="log every request to stderr")
    return "explore", cmd_explore


def check_host(host: str) -> bool:
    """True when ``host`` is a loopback address; a bad address is a one-line error."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        raise VaekitError(f"--host: '{host}' is not an IP address (use 127.0.0.1, or e.g. 0.0.0.0 to listen everywhere)") from None


def cmd_explore(args: argparse.Namespace) -> int:
    import torch

    from .api import Explorer

    if not 0 <= args.port <= 65535:
        raise VaekitError(f"--port must be in 0..65535, got {args.port}")
    if not 1 <= args.points <= 20000:
        raise VaekitError(f"--points must be in 1..20000, got {args.points}")
    loopback = check_host(args.host)
    # One image per request: a second intra-op thread only adds spin-waits on a busy 2-core machine.
    torch.set_num_threads(1)
    explorer = Explorer.open(args.run, points=args.points)
    if args.export:
        from .export import export_page

        path = export_page(explorer, args.export)
        print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
        return 0
    return serve(explorer, args.host, args.port, loopback, browser=not args.no_browser, verbose=args.verbose)


def serve(explorer: Any, host: str, port: int, loopback: bool, browser: bool = True, verbose: bool = False) -> int:
    from .server import ExploreServer

    try:
        server = ExploreServer(explorer, host, port, verbose=verbose)
    except OSError as err:
        raise VaekitError(f"cannot listen on {host}:{port} ({err.strerror or err}); choose another --port") from None
    if not loopback:
        print(f"vaekit: warning: listening on {host}: anyone who can reach this machine can use this model "
              "and see its data; there is no authentication", file=sys.stderr)
    print(f"vaekit explore: serving {explorer.run_dir} at {server.url}  (Ctrl-C to stop)", flush=True)
    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    # Ctrl-C (even when a shell started us in the background with SIGINT ignored) and SIGTERM both
    # leave serve_forever through the same clean path.
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    if browser:
        import webbrowser

        webbrowser.open(server.url)
    try:
        server.serve_forever(poll_interval=0.25)
    except KeyboardInterrupt:
        print("vaekit explore: stopped", flush=True)
    finally:
        server.server_close()
    return 0


__all__ = ["add_command", "cmd_explore", "serve"]
