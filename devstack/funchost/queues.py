"""Queue triggers: poll a queue, run messages concurrently, and settle each one like the real host
(Storage Queues extension 5.x):

- receive up to batchSize messages, invisible for `message_visibility` seconds (the real host: 10 min);
  fetch the next batch once no more than newBatchThreshold are still running;
- while a message runs, renew its invisibility every half `message_visibility`, so no other host
  gets it; if the host dies, the message reappears when its invisibility runs out;
- success: delete. Failure: if dequeue_count >= maxDequeueCount, copy it to <queue>-poison (created
  on demand) and delete it; otherwise make it visible again after host.json visibilityTimeout;
- a message already dequeued more than maxDequeueCount times (its hosts crashed) goes to poison unrun;
- a message that is not valid Base64 (messageEncoding "base64") goes to poison at once, unrun, its
  text unchanged: the 5.x extension does this from its MessageDecodingFailed handler;
- polling backs off exponentially to maxPollingInterval while the queue is empty (or missing).
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from dataclasses import dataclass, field

from azure.core.exceptions import AzureError, HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.functions.queue import QueueMessage as FunctionQueueMessage
from azure.storage.queue import QueueMessage

from .config import QueuesOptions
from .invocation import Invoker
from .loader import Function, QueueTrigger
from .storage import MessageDecodeError, decode_body, error_code, queue_client, redact

log = logging.getLogger("devstack.funchost.queues")

MIN_POLLING_INTERVAL = 0.1  # the real host's minimum too
_GONE = ("MessageNotFound", "PopReceiptMismatch", "QueueNotFound")


@dataclass
class _Running:
    """A message being processed; its pop receipt changes at each renewal."""

    message_id: str
    pop_receipt: str
    renew_at: float
    renewing: bool = True
    lock: threading.RLock = field(default_factory=threading.RLock)


class QueueListener:
    def __init__(
        self,
        function: Function,
        invoker: Invoker,
        options: QueuesOptions,
        *,
        instance_id: str,
        message_visibility: int = 600,
    ) -> None:
        assert isinstance(function.trigger, QueueTrigger)
        if message_visibility < 2:
            raise ValueError("message_visibility must be at least 2 seconds")
        self.function = function
        self._trigger: QueueTrigger = function.trigger
        self._invoker = invoker
        self._options = options
        self._instance_id = instance_id
        self._visibility = message_visibility
        self._queue = queue_client(self._trigger.connection_string, self._trigger.queue_name)
        self._poison = queue_client(self._trigger.connection_string, self._trigger.poison_queue_name)
        self._running: dict[str, _Running] = {}
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._stop_keeper = threading.Event()
        name = f"{instance_id}/{function.name}"
        self._poller = threading.Thread(target=self._poll_loop, name=f"{name}/poll", daemon=True)
        self._keeper = threading.Thread(target=self._keep_invisible_loop, name=f"{name}/renew", daemon=True)

    @property
    def running_count(self) -> int:
        with self._changed:
            return len(self._running)

    def start(self) -> None:
        self._poller.start()
        self._keeper.start()

    def stop_accepting(self) -> None:
        self._stop.set()
        with self._changed:
            self._changed.notify_all()

    def wait_idle(self, timeout: float | None) -> bool:
        """Waits for running invocations; False if some still run after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self._poller.join(timeout)
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        with self._changed:
            return self._changed.wait_for(lambda: not self._running, remaining)

    def close(self) -> None:
        """Stops renewing: messages still running (after a bounded shutdown) reappear when their time runs out."""
        self._stop_keeper.set()
        self._keeper.join(timeout=5)

    # -- polling -----------------------------------------------------------------------------

    def _poll_loop(self) -> None:
        options = self._options
        delay = MIN_POLLING_INTERVAL
        missing_logged = False
        while not self._stop.is_set():
            with self._changed:
                self._changed.wait_for(lambda: self._stop.is_set() or len(self._running) <= options.new_batch_threshold)
            if self._stop.is_set():
                break
            try:
                messages = list(
                    self._queue.receive_messages(
                        messages_per_page=options.batch_size,
                        max_messages=options.batch_size,
                        visibility_timeout=self._visibility,
                    )
                )
                missing_logged = False
            except ResourceNotFoundError:
                if not missing_logged:
                    log.info("queue %r does not exist (yet): waiting for it", self._trigger.queue_name)
                    missing_logged = True
                messages = []
            except AzureError as error:
                log.warning("receiving from queue %r failed: %s", self._trigger.queue_name, redact(error))
                messages = []
            if self._stop.is_set():
                self._give_back(messages)
                break
            if messages:
                delay = MIN_POLLING_INTERVAL
                for message in messages:
                    self._dispatch(message)
                continue
            self._stop.wait(delay * random.uniform(0.8, 1.0))
            delay = min(delay * 2, options.max_polling_interval)

    def _dispatch(self, message: QueueMessage) -> None:
        entry = _Running(message.id, message.pop_receipt or "", time.monotonic() + self._visibility / 2)
        with self._changed:
            self._running[message.id] = entry
        worker = threading.Thread(
            target=self._process,
            args=(message, entry),
            name=f"{self._instance_id}/{self.function.name}/{message.id[:8]}",
            daemon=True,  # a hung function must not keep a stopping process alive
        )
        worker.start()

    def _give_back(self, messages: list[QueueMessage]) -> None:
        """Messages received while stopping: make them visible again at once."""
        for message in messages:
            entry = _Running(message.id, message.pop_receipt or "", 0.0)
            self._update_visibility(entry, 0)

    # -- one message -------------------------------------------------------------------------

    def _process(self, message: QueueMessage, entry: _Running) -> None:
        options = self._options
        ids = f"MessageId={message.id}, DequeueCount={message.dequeue_count}"
        try:
            if (message.dequeue_count or 0) > options.max_dequeue_count:
                self._move_to_poison(message, entry, ids)
                return
            try:
                body = decode_body(message.content, options.message_encoding)
            except MessageDecodeError:
                log.warning(
                    "message on queue %r is not valid Base64 (host.json messageEncoding is 'base64'; "
                    "send with TextBase64EncodePolicy) (%s)",
                    self._trigger.queue_name,
                    ids,
                )
                self._move_to_poison(message, entry, ids)
                return
            argument = FunctionQueueMessage(
                id=message.id,
                body=body,
                dequeue_count=message.dequeue_count,
                insertion_time=message.inserted_on,
                expiration_time=message.expires_on,
                time_next_visible=message.next_visible_on,
                pop_receipt=message.pop_receipt,
            )
            reason = f"New queue message detected on '{self._trigger.queue_name}'."
            result = self._invoker.invoke(self.function, argument, reason=reason, details=ids)
            with entry.lock:
                entry.renewing = False
            if result.succeeded:
                self._delete(entry)
            elif (message.dequeue_count or 0) >= options.max_dequeue_count:
                self._move_to_poison(message, entry, ids)
            else:
                self._update_visibility(entry, round(options.visibility_timeout))
        except Exception:
            log.exception("settling message failed (%s); it reappears when its invisibility ends", ids)
        finally:
            with self._changed:
                self._running.pop(message.id, None)
                self._changed.notify_all()

    def _move_to_poison(self, message: QueueMessage, entry: _Running, ids: str) -> None:
        """Copies the message text unchanged (still Base64 when it was) to <queue>-poison, then deletes it."""
        poison_name = self._trigger.poison_queue_name
        log.warning(
            "Message has reached MaxDequeueCount of %d. Moving message to queue '%s'. (%s)",
            self._options.max_dequeue_count,
            poison_name,
            ids,
        )
        try:
            self._poison.send_message(message.content)
        except ResourceNotFoundError:
            with contextlib.suppress(ResourceExistsError):
                self._poison.create_queue()
            self._poison.send_message(message.content)
        self._delete(entry)

    def _delete(self, entry: _Running) -> None:
        with entry.lock:
            entry.renewing = False
            try:
                self._queue.delete_message(entry.message_id, entry.pop_receipt)
            except HttpResponseError as error:
                if error_code(error) not in _GONE and error.status_code != 404:
                    raise
                log.warning(
                    "message %s was not deleted: %s (another host took it over)", entry.message_id, error_code(error)
                )

    def _update_visibility(self, entry: _Running, seconds: int) -> bool:
        """Sets when the message becomes visible again; False when this host no longer owns it."""
        with entry.lock:
            try:
                updated = self._queue.update_message(entry.message_id, entry.pop_receipt, visibility_timeout=seconds)
            except HttpResponseError as error:
                if error_code(error) not in _GONE and error.status_code != 404:
                    raise
                log.warning("message %s is no longer ours: %s", entry.message_id, error_code(error))
                entry.renewing = False
                return False
            entry.pop_receipt = updated.pop_receipt or entry.pop_receipt
            return True

    # -- keeping running messages invisible ------------------------------------------------

    def _keep_invisible_loop(self) -> None:
        tick = min(1.0, self._visibility / 4)
        while not self._stop_keeper.wait(tick):
            now = time.monotonic()
            with self._changed:
                due = [entry for entry in self._running.values() if entry.renewing and entry.renew_at <= now]
            for entry in due:
                self._renew(entry)

    def _renew(self, entry: _Running) -> None:
        with entry.lock:
            if not entry.renewing:
                return
            try:
                if self._update_visibility(entry, self._visibility):
                    entry.renew_at = time.monotonic() + self._visibility / 2
            except AzureError as error:
                log.warning("renewing message %s failed (will retry): %s", entry.message_id, redact(error))
                entry.renew_at = time.monotonic() + 1
