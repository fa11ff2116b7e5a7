"""The ``trio-ws`` command (``python -m trio_ws``): serve an ASGI app with :func:`trio_ws.serve`.

One worker runs in this process. ``--workers N`` binds the listening socket here, then starts N
worker processes (the standard library's ``multiprocessing``, spawn context) that share it;
this process only forwards SIGINT and SIGTERM to them and waits. Each worker drains on SIGINT
or SIGTERM (open sessions close with 1001) and exits 0.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import logging
import multiprocessing
import os
import signal
import socket
import sys
from collections.abc import Sequence
from multiprocessing.connection import wait
from types import FrameType
from typing import Any

import trio
from hypercorn.config import Config

from ._server import _check_app as check_app, serve
from ._types import ASGIApp

__all__ = ["main"]

logger = logging.getLogger("trio_ws")

# How a worker that stops by a signal reports it: 0, the command then exits 0 too.
_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_LOG_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"
_LOG_DATE_FORMAT = "%Y-%m-%d %H:%M:%S %z"


class AppLoadError(Exception):
    """The ``module:attribute`` argument names nothing that can be served."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trio-ws",
        description=(
            "Serve an ASGI application with Hypercorn's trio worker through trio_ws.serve: "
            "on SIGINT or SIGTERM open WebSocket sessions are drained (closed with 1001), "
            "stalled connections are aborted, then the server exits 0."
        ),
    )
    add = parser.add_argument
    add(
        "application",
        help="The application to dispatch to as path.to.module:instance.path "
        "(the instance defaults to 'app')",
    )
    add("--host", default="127.0.0.1", help="The host/address to bind to (default 127.0.0.1)")
    add(
        "--port",
        type=int,
        default=8000,
        help="The TCP port to bind to (default 8000; 0 picks a free port)",
    )
    add("--certfile", help="Location of the SSL certificate file (serves https and wss)")
    add("--keyfile", help="Location of the SSL key file")
    add(
        "-w",
        "--workers",
        type=_positive_int,
        default=1,
        help="The number of worker processes sharing the listening socket (default 1: "
        "serve in this process)",
    )
    add(
        "--drain-close-code",
        type=int,
        default=1001,
        help="The close code sent to open WebSocket sessions on shutdown (default 1001)",
    )
    add(
        "--drain-seconds",
        type=float,
        default=2.0,
        help="Seconds sessions get to finish closing before stalled connections are "
        "aborted (default 2)",
    )
    add(
        "--graceful-timeout",
        type=float,
        default=3.0,
        help="Seconds Hypercorn then gives HTTP requests to finish (default 3)",
    )
    add(
        "--no-abort-stalled",
        dest="abort_stalled",
        action="store_false",
        help="Do not abort connections still open after the drain",
    )
    add(
        "--no-permessage-deflate",
        dest="permessage_deflate",
        action="store_false",
        help="Refuse the permessage-deflate extension",
    )
    add(
        "--no-client-close-codes",
        dest="fix_client_close_codes",
        action="store_false",
        help="Report Hypercorn's 1006 instead of the client's close code",
    )
    add(
        "--ping-interval",
        type=_seconds_or_off,
        metavar="SECONDS",
        help="Seconds between keepalive pings, or 'off' (default: serve's)",
    )
    add(
        "--ping-timeout",
        type=_seconds_or_off,
        metavar="SECONDS",
        help="Seconds to wait for a pong before closing with 1011, or 'off' (default: serve's)",
    )
    add(
        "--no-data-plane",
        dest="data_plane",
        action="store_const",
        const=False,
        help="Leave every connection to Hypercorn's own WebSocket code",
    )
    add(
        "--access-logfile",
        help="The target location for the access log, use '-' for stderr (default: none)",
    )
    add(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error", "critical"],
        help="The (error) log level (default info)",
    )
    return parser


_OFF = "off"


def _seconds_or_off(text: str) -> float | str:
    if text.lower() == _OFF:
        return _OFF
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(
            f"must be a positive number of seconds or 'off', not {text}"
        )
    return value


def _serve_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments for :func:`trio_ws.serve`; options left out keep serve's default."""
    options: dict[str, Any] = {
        "drain_close_code": args.drain_close_code,
        "drain_seconds": args.drain_seconds,
        "abort_stalled": args.abort_stalled,
        "permessage_deflate": args.permessage_deflate,
        "fix_client_close_codes": args.fix_client_close_codes,
    }
    if args.data_plane is not None:
        options["data_plane"] = args.data_plane
    for name in ("ping_interval", "ping_timeout"):
        value = getattr(args, name)
        if value is not None:
            options[name] = None if value == _OFF else value
    return options


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def load_app(path: str) -> ASGIApp:
    """Import ``module:attribute.path`` (the attribute defaults to ``app``), as Hypercorn does.

    Raises:
        AppLoadError: The module cannot be imported or has no such attribute.
    """
    module_name, _, attributes = path.partition(":")
    if not module_name:
        raise AppLoadError(f"{path!r} names no module; use path.to.module:app")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` does, for the console script too
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        if exc.name is not None and (
            exc.name == module_name or module_name.startswith(exc.name + ".")
        ):
            raise AppLoadError(f"cannot import module {module_name!r}: {exc}") from exc
        raise  # the module was found, and failed to import something of its own
    for attribute in (attributes or "app").split("."):
        try:
            target = getattr(target, attribute)
        except AttributeError:
            raise AppLoadError(
                f"{module_name!r} has no attribute {attributes or 'app'!r}"
            ) from None
    if not callable(target):
        raise AppLoadError(f"{path!r} is not callable, so not an ASGI application")
    return target  # type: ignore[no-any-return]


def _config(args: argparse.Namespace, sock: socket.socket | None) -> Config:
    config = Config()
    if sock is not None:
        config.bind = [f"fd://{sock.fileno()}"]
    elif ":" in args.host:
        config.bind = [f"[{args.host}]:{args.port}"]
    else:
        config.bind = [f"{args.host}:{args.port}"]
    config.certfile = args.certfile
    config.keyfile = args.keyfile
    config.graceful_timeout = args.graceful_timeout
    config.accesslog = args.access_logfile
    config.loglevel = args.log_level.upper()
    return config


async def _serve(app: ASGIApp, args: argparse.Namespace, sock: socket.socket | None) -> None:
    """Serve until the first SIGINT or SIGTERM, then drain; later signals are ignored."""
    received: list[int] = []
    stop = trio.Event()
    token = trio.lowlevel.current_trio_token()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        token.run_sync_soon(stop.set, idempotent=True)

    async def shutdown_trigger() -> None:
        await stop.wait()
        logger.info("trio-ws: %s received, draining", signal.Signals(received[0]).name)

    for signum in _SIGNALS:
        signal.signal(signum, on_signal)
    try:
        await serve(
            app,
            config=_config(args, sock),
            shutdown_trigger=shutdown_trigger,
            **_serve_options(args),
        )
    finally:
        # Shutting down: a second Ctrl+C (or the SIGTERM a supervisor adds) changes nothing.
        for signum in _SIGNALS:
            signal.signal(signum, signal.SIG_IGN)


def _setup_logging(level: str) -> None:
    """Show the ``trio_ws`` logger on stderr, formatted as Hypercorn's own log."""
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(_LOG_FORMAT, _LOG_DATE_FORMAT))
        logger.addHandler(handler)
    logger.setLevel(level.upper())


def _worker(args: argparse.Namespace, sock: socket.socket, cwd: str) -> None:
    """One worker process: import the app, serve on the shared socket until a signal."""
    _setup_logging(args.log_level)
    os.chdir(cwd)
    app = load_app(args.application)
    trio.run(_serve, app, args, sock)


def _listening_socket(args: argparse.Namespace) -> socket.socket:
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((args.host, args.port))
    sock.listen(Config.backlog)
    sock.setblocking(False)
    return sock


def _run_workers(args: argparse.Namespace) -> int:
    """Start ``args.workers`` processes on one socket; forward SIGINT/SIGTERM; wait for them."""
    sock = _listening_socket(args)
    context = multiprocessing.get_context("spawn")
    processes: list[Any] = []
    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if not stopping:
            logger.info("trio-ws: %s received, stopping the workers", signal.Signals(signum).name)
        stop()

    def stop() -> None:
        nonlocal stopping
        stopping = True
        for process in processes:
            if process.exitcode is None and process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGTERM)

    previous = {signum: signal.getsignal(signum) for signum in _SIGNALS}
    try:
        # Workers start with SIGINT ignored (inherited), so that a Ctrl+C while one is still
        # importing cannot kill it with a traceback; each worker then handles it itself.
        # (A Python-level handler is not inherited: workers start with SIGTERM's default.)
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for _ in range(args.workers):
            process = context.Process(target=_worker, args=(args, sock, os.getcwd()))
            process.start()
            processes.append(process)
        signal.signal(signal.SIGINT, on_signal)
        if stopping:  # SIGTERM while starting them: the later ones must hear it too
            stop()
        exit_code = 0
        running = list(processes)
        while running:
            for sentinel in wait([process.sentinel for process in running]):
                process = next(p for p in running if p.sentinel == sentinel)
                process.join()
                running.remove(process)
                # A worker still starting when told to stop dies by the signal: nothing to
                # drain, so that is a clean exit too.
                stopped = stopping and process.exitcode == -signal.SIGTERM
                if process.exitcode != 0 and not stopped and exit_code == 0:
                    # No restarts: one failed worker stops the server, as in Hypercorn.
                    exit_code = 1
                    logger.error("trio-ws: worker %d exited with %s", process.pid, process.exitcode)
                    stop()
        return exit_code
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        sock.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (0 after a drain on SIGINT or SIGTERM)."""
    args = _parser().parse_args(argv)
    _setup_logging(args.log_level)
    if (args.certfile is None) != (args.keyfile is None):
        _parser().error("--certfile and --keyfile go together")
    unknown = set(_serve_options(args)) - set(inspect.signature(serve).parameters)
    if unknown:  # only options this trio_ws.serve does not have
        _parser().error(f"this trio_ws.serve has no {', '.join(sorted(unknown))}")
    try:
        app = load_app(args.application)
        check_app(app)
    except (AppLoadError, TypeError) as exc:
        logger.error("trio-ws: %s", exc)
        return 1
    previous = {signum: signal.getsignal(signum) for signum in _SIGNALS}
    try:
        if args.workers > 1:
            return _run_workers(args)
        trio.run(_serve, app, args, None)
    except OSError as exc:  # the address is in use, or not this machine's
        logger.error("trio-ws: cannot listen on %s port %s: %s", args.host, args.port, exc)
        return 1
    except KeyboardInterrupt:  # Ctrl+C before the server was up: nothing to drain
        return 0
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0
