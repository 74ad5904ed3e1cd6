"""The credentials keyring on Azurite: one data key however many instances start at once, unwrapped keys
cached for a bounded time, rotation by age, Key Vault trouble retried then handed back, and plain-text rows
of an older version rewritten sealed."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from azure.data.tables import TableClient, TableServiceClient
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.agent.locks.records import LockRecord, LockRecords
from shared.crypto.jwk import private_jwk
from shared.failures import Disposition, disposition_of
from shared.registry.connection_file import parse_connection_file
from shared.secrets.keyring import PARTITION, DataKeyRing, LocalKeyFileWrapper, WrappedKey, credentials_sealer
from shared.secrets.lock_tokens import lock_token_sealer
from shared.secrets.sealing import KeyAccessDenied, KeyUnavailable, Sealer, is_sealed
from shared.vms.grant_store import GrantStore, StoredGrant, fingerprint
from shared.vms.verkada.tokens import SharedCredentialStore


class CountingWrapper:
    """The stack's local key file, counting calls, failing the first `failures` of them as told."""

    def __init__(self, inner: LocalKeyFileWrapper, failures: int = 0, error: type[Exception] = KeyUnavailable) -> None:
        self.inner, self.failures, self.error = inner, failures, error
        self.wraps = self.unwraps = self.calls = 0
        self.lock = threading.Lock()

    def _call(self) -> None:
        with self.lock:
            self.calls += 1
            if self.calls <= self.failures:
                raise self.error("Key Vault answered HTTP 429")

    def wrap(self, key: bytes) -> WrappedKey:
        self._call()
        self.wraps += 1
        return self.inner.wrap(key)

    def unwrap(self, wrapped: WrappedKey) -> bytes:
        self._call()
        self.unwraps += 1
        return self.inner.unwrap(wrapped)


@pytest.fixture
def table(stack) -> TableClient:
    service = TableServiceClient.from_connection_string(stack.storage_connection_string)
    return service.get_table_client(f"creds{uuid.uuid4().hex[:12]}")


@pytest.fixture
def local_key(stack) -> LocalKeyFileWrapper:
    return LocalKeyFileWrapper(stack.credentials_key_file)


def keyring_rows(table: TableClient) -> list[dict]:
    return [dict(row) for row in table.query_entities(f"PartitionKey eq '{PARTITION}'")]


def test_instances_starting_at_once_adopt_one_data_key(table, local_key):
    rings = [DataKeyRing(table, local_key) for _ in range(4)]
    barrier, ids = threading.Barrier(4), []

    def first_use(ring: DataKeyRing) -> None:
        barrier.wait()
        ids.append(ring.current()[0])

    threads = [threading.Thread(target=first_use, args=(ring,)) for ring in rings]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(ids)) == 1
    rows = keyring_rows(table)
    assert sorted(row["RowKey"] for row in rows) == sorted(["current", f"dk-{ids[0]}"])  # losers cleaned up
    stored = next(row for row in rows if row["RowKey"].startswith("dk-"))
    assert stored["WrapAlgorithm"] == "A256KW" and stored["WrapKeyId"].startswith("local-file:")


def test_an_unwrapped_key_is_reused_within_the_cache_time_and_unwrapped_again_after(table, local_key):
    writer = credentials_sealer(table, local_key)
    sealed = [writer.seal(f"token-{n}", f"row-{n}") for n in range(10)]
    counting = CountingWrapper(local_key)
    reader = Sealer(DataKeyRing(table, counting), "vms credential")
    assert [reader.open(value, f"row-{n}") for n, value in enumerate(sealed)] == [f"token-{n}" for n in range(10)]
    reader.seal("one more", "row-x")
    assert counting.unwraps == 1  # a refresh costs no Key Vault call while the key is cached
    expiring = CountingWrapper(local_key)
    uncached = Sealer(DataKeyRing(table, expiring, cache_ttl=timedelta(0)), "vms credential")
    for n, value in enumerate(sealed[:3]):
        uncached.open(value, f"row-{n}")
    assert expiring.unwraps == 3  # no cache time: the key never outlives its use


def test_an_old_data_key_is_replaced_and_what_it_sealed_still_opens(table, local_key):
    now = [datetime(2027, 1, 1, tzinfo=UTC)]
    ring = DataKeyRing(table, local_key, cache_ttl=timedelta(0), max_age=timedelta(days=90), clock=lambda: now[0])
    sealer = Sealer(ring, "vms credential")
    old = sealer.seal("old token", "row")
    now[0] += timedelta(days=91)
    new = sealer.seal("new token", "row")
    assert old.split(":")[2] != new.split(":")[2]  # another key id
    assert sealer.open(old, "row") == "old token" and sealer.open(new, "row") == "new token"
    assert len([row for row in keyring_rows(table) if row["RowKey"].startswith("dk-")]) == 2


def test_key_vault_throttling_is_retried_with_growing_waits(table, local_key):
    waits: list[float] = []
    flaky = CountingWrapper(local_key, failures=2)
    ring = DataKeyRing(table, flaky, backoff=0.5, sleep=waits.append)
    assert ring.current()[0]
    assert flaky.wraps == 1 and len(waits) == 2 and waits[0] < waits[1] <= 1.0


def test_key_vault_down_for_good_is_retry_later_and_a_refused_identity_is_misconfigured(table, local_key):
    waits: list[float] = []
    down = CountingWrapper(local_key, failures=100)
    with pytest.raises(KeyUnavailable, match="after 4 attempts") as raised:
        DataKeyRing(table, down, attempts=4, sleep=waits.append).current()
    assert disposition_of(raised.value) is Disposition.RETRY_LATER and len(waits) == 3
    denied = CountingWrapper(local_key, failures=100, error=KeyAccessDenied)
    with pytest.raises(KeyAccessDenied) as refused:
        DataKeyRing(table, denied, sleep=waits.append).current()
    assert disposition_of(refused.value) is Disposition.MISCONFIGURED and denied.calls == 1  # not retried


def test_a_plain_text_grant_of_an_older_version_is_read_once_and_rewritten_sealed(table, local_key):
    expires = datetime.now(UTC) + timedelta(hours=1)
    table.create_table()
    table.create_entity(
        {
            "PartitionKey": "een",
            "RowKey": "client",
            "RefreshToken": "plain-refresh-1",
            "SeedFingerprint": "f",
            "AccessToken": "plain-access-1",
            "AccessExpiresAt": expires,
        }
    )
    store = GrantStore(table, "een", "client", credentials_sealer(table, local_key))
    grant = store.read()
    assert grant is not None and (grant.refresh_token, grant.access_token) == ("plain-refresh-1", "plain-access-1")
    row = table.get_entity("een", "client")
    assert is_sealed(row["RefreshToken"]) and is_sealed(row["AccessToken"])
    assert "plain-refresh-1" not in repr(dict(row)) and "plain-access-1" not in repr(dict(row))
    again = store.read()
    assert again is not None and again.refresh_token == "plain-refresh-1" and again.etag == row.metadata["etag"]


def test_a_plain_text_verkada_token_is_rewritten_sealed(table, local_key):
    store = SharedCredentialStore(table, "api-token", "api-key", credentials_sealer(table, local_key))
    store.read()  # creates the table
    expires = datetime.now(UTC) + timedelta(minutes=30)
    row_key = f"api-token-{fingerprint('api-key')}"
    table.create_entity({"PartitionKey": "verkada", "RowKey": row_key, "Value": "v2_plain", "ExpiresAt": expires})
    row = store.read()
    assert row.credential is not None and row.credential.value == "v2_plain"
    stored = table.get_entity("verkada", row_key)
    assert is_sealed(stored["Value"]) and "v2_plain" not in repr(dict(stored))


def test_a_plain_lock_token_still_reads_and_is_sealed_at_the_next_write(table, stack):
    connection = parse_connection_file(stack.connection_file_json)
    old = LockRecords(table)  # as an earlier version wrote it: no sealer
    old.create(LockRecord("job-1", "thumbnail", "plain-lock-token", datetime.now(UTC) + timedelta(minutes=5)))
    records = LockRecords(table, sealer=lock_token_sealer(connection))
    record = records.get("job-1")
    assert record is not None and record.lock_token == "plain-lock-token"
    records.transition("job-1", "Processing", generation=record.generation)
    stored = table.get_entity("job", "job-1")
    assert is_sealed(stored["LockToken"]) and "plain-lock-token" not in repr(dict(stored))
    assert records.get("job-1").lock_token == "plain-lock-token"
    assert LockRecords(table).get("job-1").lock_token == ""  # an operator without the connection file sees none


def test_a_grant_whose_key_is_gone_reads_as_empty_so_a_new_consent_can_replace_it(table, local_key, tmp_path):
    lost_key = LocalKeyFileWrapper(LocalKeyFileWrapper.create(tmp_path / "lost.key"))
    GrantStore(table, "een", "client", credentials_sealer(table, lost_key)).create(
        StoredGrant("refresh-under-a-lost-key", "seed-1")
    )
    table.delete_entity(PARTITION, "current")  # the keyring lost its data key (e.g. rows deleted by hand)
    for row in keyring_rows(table):
        table.delete_entity(PARTITION, row["RowKey"])
    store = GrantStore(table, "een", "client", credentials_sealer(table, local_key))
    grant = store.read()
    assert grant is not None and grant.refresh_token == "" and grant.seed_fingerprint == "seed-1"
    assert grant.etag is not None
    assert store.replace(StoredGrant("new-consent", "seed-2"), grant.etag) is not None
    assert store.read().refresh_token == "new-consent"


def test_a_lock_token_sealed_under_another_connection_file_reads_as_unknown(table, stack):
    other = json.loads(stack.connection_file_json)
    other["ServicePrincipalKey"] = private_jwk(rsa.generate_private_key(public_exponent=65537, key_size=2048), "k2")
    before = LockRecords(table, sealer=lock_token_sealer(parse_connection_file(json.dumps(other))))
    before.create(LockRecord("job-2", "thumbnail", "token-of-the-old-file", datetime.now(UTC) + timedelta(minutes=5)))
    now = LockRecords(table, sealer=lock_token_sealer(parse_connection_file(stack.connection_file_json)))
    assert [r.lock_token for r in now.active()] == [""]  # listed (renew_locks keeps working), token unknown


def test_a_current_data_key_deleted_by_hand_is_replaced(table, local_key):
    first = DataKeyRing(table, local_key).current()[0]
    table.delete_entity(PARTITION, f"dk-{first}")
    second = DataKeyRing(table, local_key).current()[0]
    assert second != first and table.get_entity(PARTITION, "current")["DataKeyId"] == second
