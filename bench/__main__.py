"""`make bench`: throughput and memory of the encrypted upload, each figure next to its baseline.

    python -m bench [--quick]

Every figure is measured in this run on this machine; results go to .bench/results.json as a list of
{"name", "value", "unit"}. MB/s means 10^6 bytes per second of plaintext.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from azure.storage.blob import BlobClient, BlobSasPermissions, BlobServiceClient, generate_blob_sas
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from bench import agent, cold_start, media_job, simulators, verkada, vms
from bench.null_transport import NullTransport
from bench.sources import CHUNK, ChunkReader, MiB, chunks
from devstack.azurite import Azurite
from shared.crypto.envelope import RSA_OAEP
from shared.crypto.jwk import public_jwk
from shared.upload.target import UploadTargetPolicy
from shared.upload.uploader import EncryptedBlobUploader

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / ".bench" / "results.json"
NULL_SAS = "https://bench.blob.core.windows.net/bench/file.mp4?sv=2025-01-05&sig=bench"


class KeyWrapper:
    """The key-encryption-key object azure-storage-blob's own v1 encryption asks for."""

    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        self._key = key

    def wrap_key(self, key: bytes) -> bytes:
        return self._key.public_key().encrypt(key, RSA_OAEP)

    def unwrap_key(self, key: bytes, algorithm: str) -> bytes:
        return self._key.decrypt(key, RSA_OAEP)

    def get_key_wrap_algorithm(self) -> str:
        return "RSA-OAEP"

    def get_kid(self) -> str:
        return "bench"


def mbps(size: int, seconds: float) -> float:
    return size / seconds / 1e6


def median_rate(runs: int, size: int, work: Callable[[], None]) -> float:
    rates = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        rates.append(mbps(size, time.perf_counter() - started))
    return statistics.median(rates)


def aes_cbc_limit(size: int) -> Callable[[], None]:
    """The physical limit: one core, AES-256-CBC `update_into` a reused buffer, 4 MiB chunks."""
    out = bytearray(CHUNK + 16)

    def work() -> None:
        encryptor = Cipher(algorithms.AES(b"k" * 32), modes.CBC(b"i" * 16)).encryptor()
        for chunk in chunks(size):
            encryptor.update_into(chunk, out)

    return work


def pipeline(uploader: EncryptedBlobUploader, sas: Callable[[], str], jwk: dict, size: int) -> Callable[[], None]:
    def work() -> None:
        uploader.upload(sas(), jwk, chunks(size), size_hint=size)

    return work


def sdk_v1_null(key: rsa.RSAPrivateKey, size: int) -> Callable[[], None]:
    def work() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the SDK warns that v1 is deprecated; that is the point
            blob = BlobClient.from_blob_url(
                NULL_SAS,
                transport=NullTransport(),
                key_encryption_key=KeyWrapper(key),
                require_encryption=True,
                encryption_version="1.0",
                max_block_size=4 * MiB,
                max_single_put_size=4 * MiB,
            )
            blob.upload_blob(ChunkReader(size), length=size, max_concurrency=4, overwrite=True)

    return work


def peak_rss(size_mib: int) -> float:
    output = subprocess.run(
        [sys.executable, "-m", "bench.rss_probe", str(size_mib)],
        check=True,
        capture_output=True,
        text=True,
        cwd=REPO,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])["peak_rss_mib"]


DECIMALS = {"s": 3, "bool": 3, "ratio": 2}
"""Decimals kept in results.json per unit (1 for the rest)."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes and one run each (smoke test)")
    args = parser.parse_args()
    runs = 1 if args.quick else 3
    null_size = (64 if args.quick else 512) * MiB
    azurite_size = (32 if args.quick else 256) * MiB
    rss_sizes = (64, 256) if args.quick else (256, 2048)

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = public_jwk(key.public_key(), "bench")
    results: dict[str, tuple[float, str]] = {}

    print("measuring cold_import_seconds per vendor (fresh interpreters) ...", flush=True)
    results.update(cold_start.measure(runs + 2))

    print("measuring aes_cbc_limit_mbps, pipeline_null_mbps, sdk_v1_null_mbps ...", flush=True)
    results["aes_cbc_limit_mbps"] = (median_rate(runs, null_size, aes_cbc_limit(null_size)), "MB/s")
    null_uploader = EncryptedBlobUploader(transport=NullTransport())
    results["pipeline_null_mbps"] = (
        median_rate(runs, null_size, pipeline(null_uploader, lambda: NULL_SAS, jwk, null_size)),
        "MB/s",
    )
    results["sdk_v1_null_mbps"] = (median_rate(runs, null_size, sdk_v1_null(key, null_size)), "MB/s")

    print("measuring pipeline_azurite_mbps, sdk_plain_azurite_mbps (Azurite) ...", flush=True)
    with Azurite() as azurite:
        service = BlobServiceClient.from_connection_string(azurite.connection_string)
        container = service.create_container("bench")

        def fresh_sas(prefix: str = "ours") -> str:
            name = f"{prefix}-{time.monotonic_ns()}"
            sas = generate_blob_sas(
                azurite.account_name,
                "bench",
                name,
                account_key=azurite.account_key,
                permission=BlobSasPermissions(create=True, write=True),
                expiry=datetime.now(UTC) + timedelta(hours=1),
            )
            return f"{azurite.blob_endpoint}/bench/{name}?{sas}"

        ours = EncryptedBlobUploader(UploadTargetPolicy(allow_http_loopback=True))

        def sdk_plain() -> None:
            blob = BlobClient.from_blob_url(fresh_sas("sdk"))  # same SAS auth as ours
            blob.upload_blob(ChunkReader(azurite_size), length=azurite_size, max_concurrency=4, overwrite=True)

        ours_rates, sdk_rates = [], []
        for _ in range(runs):  # interleaved, so drift in Azurite's speed hits both alike
            ours_rates.append(median_rate(1, azurite_size, pipeline(ours, fresh_sas, jwk, azurite_size)))
            sdk_rates.append(median_rate(1, azurite_size, sdk_plain))
            for blob in list(container.list_blobs()):
                container.delete_blob(blob.name)
        results["pipeline_azurite_mbps"] = (statistics.median(ours_rates), "MB/s")
        results["sdk_plain_azurite_mbps"] = (statistics.median(sdk_rates), "MB/s")

    print("measuring peak RSS in fresh processes ...", flush=True)
    small, large = rss_sizes
    results["peak_rss_mib_256m"] = (peak_rss(small), "MiB")
    results["peak_rss_mib_2g"] = (peak_rss(large), "MiB")

    print("measuring vms_download_mbps, raw_http_download_mbps (VMS simulator, EEN route A) ...", flush=True)
    results.update(vms.measure(runs + 2, size=(64 if args.quick else 1024) * MiB))

    print("measuring footage_generation_mbps, memory_copy_mbps, funchost_redelivery_seconds ...", flush=True)
    results.update(simulators.measure(runs, (64 if args.quick else 1024) * MiB))

    print("measuring verkada_remux_mbps, verkada_raw_hls_mbps (VMS simulator, Verkada HLS) ...", flush=True)
    results.update(verkada.measure(runs, size=(16 if args.quick else 64) * MiB, cdn_bytes_per_second=25_000_000))
    results.update(verkada.measure(runs, size=(32 if args.quick else 256) * MiB))

    print("measuring the agent end to end (thumbnail jobs through local Functions hosts, idle poll) ...", flush=True)
    results.update(agent.measure(40 if args.quick else 200))

    print(
        "measuring a 3-camera media job as work items (serial, parallel, 2 hosts) and thumbnail memory ...", flush=True
    )
    results.update(media_job.measure(args.quick))
    ingest = results["media_job_bytes"][0] / (results["pipeline_azurite_mbps"][0] * 1e6)
    results["media_job_ingest_limit_seconds"] = (ingest, "s")  # the job's bytes through our own pipeline alone

    report(results)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            [
                {
                    "name": name,
                    "value": round(value, 3 if unit in ("s", "bool") else 2 if unit == "ratio" else 1),
                    "unit": unit,
                }
                for name, (value, unit) in results.items()
            ],
            indent=2,
        )
        + "\n"
    )
    print(f"\nwrote {RESULTS.relative_to(REPO)}")
    return 0


def report(results: dict[str, tuple[float, str]]) -> None:
    value = {name: figure for name, (figure, _) in results.items()}
    checks = [
        ("pipeline_null_mbps", "aes_cbc_limit_mbps", 0.8),
        ("pipeline_null_mbps", "sdk_v1_null_mbps", 1.5),
        ("pipeline_azurite_mbps", "sdk_plain_azurite_mbps", 0.9),
        ("vms_download_mbps", "raw_http_download_mbps", 0.9),
        ("verkada_remux_cdn_mbps", "verkada_raw_hls_cdn_mbps", 0.9),
    ]
    print(f"\n{'figure':<34}{'value':>10}  unit")
    for name, (figure, unit) in results.items():
        print(f"{name:<34}{figure:>10.{3 if unit in ('s', 'bool') else 1}f}  {unit}")

    def row(label: str, figure: float, target: str, ok: bool) -> None:
        print(f"{label:<50}{figure:>7.2f}  {target:>7}  {'ok' if ok else 'MISS'}")

    print(f"\n{'comparison':<50}{'ratio':>7}  {'target':>7}  verdict")
    for name, baseline, target in checks:
        ratio = value[name] / value[baseline]
        row(f"{name} / {baseline}", ratio, f">= {target}", ratio >= target)
    generation = value["footage_generation_mbps"]
    row("footage_generation_mbps / memory_copy_mbps", generation / value["memory_copy_mbps"], "(info)", True)
    row("footage_generation_mbps (MB/s)", generation, ">= 1500", generation >= 1500)
    serving = value["raw_http_download_mbps"]
    row("raw_http_download_mbps (VMS simulator serving)", serving, ">= 500", serving >= 500)
    redelivery, visibility = value["funchost_redelivery_seconds"], value["funchost_message_visibility_seconds"]
    late = redelivery - visibility
    row("funchost_redelivery_seconds - _visibility_seconds", late, "<= 1.0", late <= 1.0)
    rss_small, rss_large = value["peak_rss_mib_256m"], value["peak_rss_mib_2g"]
    row("peak_rss_mib_2g / peak_rss_mib_256m", rss_large / rss_small, "<= 1.1", rss_large <= rss_small * 1.10)
    row("peak_rss_mib_2g (MiB)", rss_large, "<= 150", rss_large <= 150)
    calls = value["registry_calls_per_file_job"]
    row("registry_calls_per_file_job", calls, "<= 5", calls <= 5)
    row("idle_poll_registry_calls", value["idle_poll_registry_calls"], "== 1", value["idle_poll_registry_calls"] == 1)
    row("idle_poll_storage_writes", value["idle_poll_storage_writes"], "== 0", value["idle_poll_storage_writes"] == 0)
    requests = value["table_requests_per_file_job"]
    row("table_requests_per_file_job (poll to completion)", requests, "<= 12", requests <= 12)
    one_host = value["thumbnail_jobs_per_s_1host"]
    row("thumbnail_jobs_per_s_1host", one_host, ">= 25", one_host >= 25)
    parallel_vs_ingest = value["media_job_seconds_parallel"] / value["media_job_ingest_limit_seconds"]
    row("media_job_seconds_parallel / _ingest_limit_seconds", parallel_vs_ingest, "<= 1.5", parallel_vs_ingest <= 1.5)
    polls = value["poll_seconds_10k_history"] / value["poll_seconds_empty"]
    row("poll_seconds_10k_history / poll_seconds_empty", polls, "<= 1.5", polls <= 1.5)
    renewals = value["renew_seconds_10k_history"] / value["renew_seconds_empty"]
    row("renew_seconds_10k_history / renew_seconds_empty", renewals, "<= 1.5", renewals <= 1.5)
    remux = value["verkada_remux_mbps"] / value["verkada_raw_hls_mbps"]
    row("verkada_remux_mbps / verkada_raw_hls_mbps (uncapped)", remux, "(info)", True)
    overhead = value["telemetry_overhead_ratio"]
    row("telemetry_overhead_ratio (jobs/s on / off)", overhead, ">= 0.9", overhead >= 0.9)
    one, two = value["thumbnail_jobs_per_s_1host"], value["thumbnail_jobs_per_s_2hosts"]
    row("thumbnail_jobs_per_s_2hosts / _1host", two / one, "(info)", True)
    serial, parallel = value["media_job_seconds_serial"], value["media_job_seconds_parallel"]
    row("media_job_seconds_serial / _parallel", serial / parallel, ">= 3.0", serial / parallel >= 3.0)
    row("media_job_seconds_serial / _2hosts", serial / value["media_job_seconds_2hosts"], "(info)", True)
    longest = value["longest_execution_seconds"]
    row("longest_execution_seconds / (serial / 6)", longest / (serial / 6), "<= 1.0", longest <= serial / 6)
    rss = value["thumbnail_peak_rss_mib"]
    row("thumbnail_peak_rss_mib (1,000 cameras, 200 KiB)", rss, "<= 150", rss <= 150)
    bare = value["cold_import_seconds_baseline"]
    for vendor in ("een", "rhombus", "verkada"):
        cold = value[f"cold_import_seconds_{vendor}"]
        row(f"cold_import_seconds_{vendor} - _baseline (s)", cold - bare, "(info)", True)
    pyav = value["cold_import_seconds_verkada"] - max(
        value["cold_import_seconds_een"], value["cold_import_seconds_rhombus"]
    )
    row("cold_import_seconds_verkada - max(een, rhombus)", pyav, "(info)", True)
    no_av = value["cold_import_av_loaded_een_rhombus"] == 0
    row("PyAV imported by an EEN or Rhombus agent", value["cold_import_av_loaded_een_rhombus"], "== 0", no_av)


if __name__ == "__main__":
    sys.exit(main())
