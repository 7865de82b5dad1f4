from __future__ import annotations

import signal
import threading
from typing import Any, cast

from django.core.management.base import BaseCommand, CommandError, CommandParser

from agents.model_server import Handler, ScriptError, serve


class Command(BaseCommand):
    help = "Run the offline model server: a Messages API that plays scripted tool calls (examples/scripts/)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--script", default="examples/scripts", help="a script file, or a folder of them")

    def handle(self, *args: Any, port: int, host: str, script: str, **options: Any) -> None:
        if not 0 <= port <= 65535:
            raise CommandError(f"--port: {port} is not a port number")
        try:
            server = serve(script, host, port)
        except ScriptError as exc:
            raise CommandError(str(exc)) from None
        except OSError as exc:
            raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
        # An AF_INET server's address is (host, port); typeshed allows any socket address here.
        bound_host, bound_port = cast("tuple[str, int]", server.server_address[:2])
        handler = cast("type[Handler]", server.RequestHandlerClass)  # serve() subclasses Handler with the book
        self.stdout.write(
            f"offline model server on http://{bound_host}:{bound_port} playing {', '.join(sorted(handler.book.scripts))}"
        )
        self.stdout.flush()
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        server.shutdown()
