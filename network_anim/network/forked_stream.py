"""Items made in a forked process, streamed back in chunks while this one works on.

A big file's rows are checked on both cores: this process checks its share and writes
what is done while a forked child checks the rest. The child sends each chunk as soon
as it is made; a thread here takes them off the pipe, so the child never waits for this
process to get round to reading. The items travel pickled: make them plain tuples.
"""

from __future__ import annotations

import multiprocessing
import pickle
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any

from network_anim.gc_pause import collector_paused

_END = b""  # what the reader thread queues when the pipe closes


class ForkedStream:
    """``produce()``'s items, made in a forked child, as lists of ``chunk`` items; after
    the last item, ``handed`` holds ``hand_over()`` as the child returned it (work for
    this process to share while the child runs ``finish()``), then ``trailer`` holds
    ``finish()``'s value once ``wait()`` has it.

    The child may die (killed, out of memory): the chunks then stop early,
    ``complete`` stays False and ``received`` says how many items did arrive, for this
    process to make the rest itself."""

    def __init__(
        self,
        produce: Callable[[], Iterable[Any]],
        finish: Callable[[], Any],
        *,
        chunk: int,
        hand_over: Callable[[], Any] | None = None,
    ) -> None:
        self.complete = False
        self.received = 0
        self.handed: Any = None
        self.trailer: Any = None
        self._over = False  # the pipe closed
        self._queue: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        context = multiprocessing.get_context("fork")
        receiver, sender = context.Pipe(duplex=False)
        self._child = context.Process(
            target=_child, args=(sender, produce, finish, hand_over, chunk), daemon=True
        )
        try:
            self._child.start()
        finally:
            sender.close()
        self._reader = threading.Thread(target=_read, args=(receiver, self._queue), daemon=True)
        self._reader.start()

    @classmethod
    def start(
        cls,
        produce: Callable[[], Iterable[Any]],
        finish: Callable[[], Any],
        *,
        chunk: int,
        hand_over: Callable[[], Any] | None = None,
    ) -> ForkedStream | None:
        """A running stream, or None where this system cannot fork."""
        try:
            return cls(produce, finish, chunk=chunk, hand_over=hand_over)
        except (ValueError, OSError):
            return None

    def chunks(self) -> Iterator[list[Any]]:
        """Each chunk as it arrives (waiting for it), until the hand-over, the child's
        end or its death."""
        while (message := self._next()) is not None:
            kind, value = message
            if kind == "handed":
                self.handed = value
                return
            if kind == "end":
                self._ended(value)
                return
            self.received += len(value)
            yield value
        self.close()

    def wait(self) -> None:
        """After the chunks: wait for ``finish()``'s value (``complete`` says if it came)."""
        if not self.complete and (message := self._next()) is not None:
            self._ended(message[1])
        self.close()

    def _next(self) -> tuple[str, Any] | None:
        """The child's next message; None once the pipe closed (or a message came cut)."""
        if not self._over:
            payload = self._queue.get()
            try:
                if payload != _END:
                    return pickle.loads(payload)  # type: ignore[no-any-return]
            except pickle.UnpicklingError:
                pass
            self._over = True
        return None

    def _ended(self, trailer: Any) -> None:
        self.trailer, self.complete = trailer, True
        self.close()

    def close(self) -> None:
        """Stop the child if it still runs (a problem was found: its work is moot)."""
        if self._child.is_alive() and not self.complete:
            self._child.terminate()
        self._child.join()
        self._reader.join()


def _read(receiver: Any, into: queue.SimpleQueue[bytes]) -> None:
    try:
        while True:
            into.put(receiver.recv_bytes())
    except (EOFError, OSError):
        pass
    finally:
        receiver.close()
        into.put(_END)


def _child(
    sender: Any,
    produce: Callable[[], Iterable[Any]],
    finish: Callable[[], Any],
    hand_over: Callable[[], Any] | None,
    chunk: int,
) -> None:  # pragma: no cover (runs in the child)
    # Forked before the parent paused its collector, maybe: the items live until sent,
    # and a collection walking all of them again and again cost a third of the child's time.
    with collector_paused():
        items = iter(produce())
        while batch := list(islice(items, chunk)):
            sender.send_bytes(pickle.dumps(("chunk", batch), protocol=5))
        if hand_over is not None:
            sender.send_bytes(pickle.dumps(("handed", hand_over()), protocol=5))
        sender.send_bytes(pickle.dumps(("end", finish()), protocol=5))
    sender.close()
