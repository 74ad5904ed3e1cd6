"""Verkada's 30-minute credentials shared through Azure Table Storage (Azurite): reused, re-minted shortly
before expiry and once after a 401, never minted by two instances at once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from shared.vms.verkada.tokens import Credential, SharedCredential, SharedCredentialStore
from tests.integration.vms_helpers import fresh_token_table, stack_sealer


class Minter:
    def __init__(self, clock) -> None:
        self.count = 0
        self.clock = clock
        self.lock = threading.Lock()

    def __call__(self) -> Credential:
        with self.lock:
            self.count += 1
            return Credential(f"token-{self.count}", self.clock() + timedelta(minutes=30))


def test_a_credential_is_reused_until_shortly_before_expiry_then_minted_once(stack):
    now = [datetime(2027, 1, 1, tzinfo=UTC)]
    mint = Minter(lambda: now[0])
    table = fresh_token_table(stack)
    first = SharedCredential(
        "API token",
        SharedCredentialStore(table, "api-token", "key", stack_sealer(stack, table)),
        mint,
        clock=lambda: now[0],
    )
    second = SharedCredential(
        "API token",
        SharedCredentialStore(table, "api-token", "key", stack_sealer(stack, table)),
        mint,
        clock=lambda: now[0],
    )
    assert first.token() == second.token() == "token-1"  # the second instance reads the first one's token
    now[0] += timedelta(minutes=24)
    assert second.token() == "token-1"
    now[0] += timedelta(minutes=2)  # 4 minutes left: under the 5-minute margin
    assert second.token() == first.token() == "token-2"
    assert mint.count == 2


def test_a_refused_credential_is_forgotten_everywhere_and_minted_once(stack):
    now = datetime(2027, 1, 1, tzinfo=UTC)
    mint = Minter(lambda: now)
    table = fresh_token_table(stack)
    first = SharedCredential(
        "JWT", SharedCredentialStore(table, "stream-jwt", "key", stack_sealer(stack, table)), mint, clock=lambda: now
    )
    second = SharedCredential(
        "JWT", SharedCredentialStore(table, "stream-jwt", "key", stack_sealer(stack, table)), mint, clock=lambda: now
    )
    assert first.token() == second.token() == "token-1"
    first.invalidate("token-1")
    second.invalidate("token-1")  # a second 401 for the same token mints nothing more
    assert first.token() == second.token() == "token-2"
    assert mint.count == 2


def test_instances_racing_for_a_first_token_mint_it_once(stack):
    now = datetime(2027, 1, 1, tzinfo=UTC)
    mint = Minter(lambda: now)
    table = fresh_token_table(stack)
    barrier = threading.Barrier(4)
    values = []

    def work() -> None:
        credential = SharedCredential(
            "API token",
            SharedCredentialStore(table, "api-token", "k", stack_sealer(stack, table)),
            mint,
            clock=lambda: now,
        )
        barrier.wait()
        values.append(credential.token())

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert values == ["token-1"] * 4 and mint.count == 1


def test_the_row_key_is_a_fingerprint_never_the_api_key(stack):
    table = fresh_token_table(stack)
    SharedCredential(
        "API token",
        SharedCredentialStore(table, "api-token", "vkd-very-secret", stack_sealer(stack, table)),
        Minter(lambda: datetime.now(UTC)),
    ).token()
    rows = list(table.query_entities("PartitionKey eq 'verkada'"))
    assert len(rows) == 1 and "vkd-very-secret" not in str(rows[0]["RowKey"])
