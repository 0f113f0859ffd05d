"""`timeline serve --workers N`: N serving processes on one port (SO_REUSEPORT: the kernel
spreads connections over them), started, watched and stopped together. A worker that exits
unexpectedly is started again; SIGTERM or SIGINT stops them all, each draining what it has
accepted. The workers share nothing but the database (PostgreSQL), which makes them one
service: one log, one feed, webhooks delivered once."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from collections.abc import Sequence

from events.waits import set_within

READY = "Timeline is serving http://"  # the line a worker prints once it listens
RESTART_DELAY = 1.0


class Worker:
    """One child `timeline serve --worker` and what it prints."""

    def __init__(self, number: int, command: Sequence[str]) -> None:
        self.number, self.command = number, list(command)
        self.process: asyncio.subprocess.Process | None = None
        self._echoing: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *self.command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        assert self.process.stdout is not None
        while line := (await self.process.stdout.readline()).decode():
            if READY in line:
                break
            print(f"worker {self.number}: {line}", end="", flush=True)
        else:
            raise RuntimeError(f"worker {self.number} exited before it was serving")
        print(f"worker {self.number} is serving (pid {self.process.pid})", flush=True)
        self._echoing = asyncio.create_task(self._echo())

    async def _echo(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        while line := (await self.process.stdout.readline()).decode():
            print(f"worker {self.number}: {line}", end="", flush=True)

    def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)


def reserve(host: str, port: int) -> socket.socket:
    """Bind (without listening) the port the workers will share, so that port 0 becomes one
    free port for all of them, and no one else takes it before they do."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    held = socket.socket(family, socket.SOCK_STREAM)
    held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    held.bind((host, port))
    return held


async def supervise(command: Sequence[str], count: int, host: str, port: int) -> int:
    """Run `count` workers of `command` (which gets `--port P`) until SIGTERM or SIGINT."""
    held = reserve(host, port)
    port = held.getsockname()[1]
    command = [*command, "--port", str(port)]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    workers = [Worker(n, command) for n in range(1, count + 1)]
    try:
        await asyncio.gather(*(worker.start() for worker in workers))
    except BaseException:
        for worker in workers:
            worker.stop()
        raise
    finally:
        held.close()
    print(f"Timeline is serving http://{host}:{port}/ with {count} workers", flush=True)
    print(f"Dashboard: http://{host}:{port}/", flush=True)
    watchers = {asyncio.create_task(_watch(worker, stop)): worker for worker in workers}
    await stop.wait()
    print("Timeline is stopping", flush=True)
    for worker in workers:
        worker.stop()
    codes = [await task for task in watchers]
    return 0 if all(code == 0 for code in codes) else 1


async def _watch(worker: Worker, stop: asyncio.Event) -> int:
    """Wait for the worker to exit; start it again unless the supervisor is stopping."""
    while True:
        assert worker.process is not None
        code = await worker.process.wait()
        if stop.is_set():
            return code
        print(f"worker {worker.number} exited ({code}); starting it again", file=sys.stderr)
        await set_within(stop, RESTART_DELAY)
        if stop.is_set():
            return 0
        try:
            await worker.start()
        except RuntimeError as exc:
            print(f"{exc}; trying again", file=sys.stderr)
