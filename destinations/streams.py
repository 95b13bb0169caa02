"""Small stream helpers shared by reindex and restore."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator

_DONE = object()


def prefetch(chunks: Iterable[bytes], depth: int = 8) -> Iterator[bytes]:
    """Iterate `chunks` in a background thread, `depth` chunks ahead, so a download overlaps
    with the CPU work of its consumer (decompression releases the GIL). Exceptions of the
    producer are raised in the consumer; a consumer that stops early stops the producer."""
    buffer: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for chunk in chunks:
                if not _put(chunk):
                    break
        except BaseException as exc:
            _put(exc)
            return
        finally:
            close = getattr(chunks, "close", None)
            if stop.is_set() and callable(close):
                close()
        _put(_DONE)

    def _put(item: object) -> bool:
        """Hand `item` to the consumer; False once the consumer has stopped."""
        while not stop.is_set():
            try:
                buffer.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    thread = threading.Thread(target=produce, name="prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = buffer.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()
