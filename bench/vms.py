"""VMS download throughput: our adapter's resumable stream vs plain `requests` on the same URL.

Both read the same simulator MP4 (EEN route A, ~1 GiB) into a null sink, interleaved, in one run; a
third pass measures the peak Python heap growth while streaming it through the adapter.
"""

from __future__ import annotations

import time
import tracemalloc
from datetime import UTC, datetime, timedelta

import requests

from devstack.agent_env import agent_settings
from devstack.stack import LocalStack
from shared.settings import AgentSettings
from shared.storage import table_client
from shared.vms.een.adapter import EenAdapter
from shared.vms.settings import build_adapter

MiB = 1024 * 1024
TARGET_BYTES = 1024 * MiB


def measure(runs: int, size: int = TARGET_BYTES) -> dict[str, tuple[float, str]]:
    with LocalStack(state_dir=None) as stack:
        control = stack.een.control
        minutes = 60
        control.configure(BitrateKbps=max(1, round(size * 8 / 1000 / (minutes * 60))))
        start = (datetime.now(UTC) - timedelta(hours=3)).replace(second=0, microsecond=0)
        camera = control.add_camera(
            Name="bench", Recordings=[[start.isoformat(), (start + timedelta(minutes=minutes)).isoformat()]]
        )
        settings = AgentSettings.from_env(agent_settings(stack, unique=True))
        adapter = build_adapter(settings.vms, token_table=table_client(settings.storage, settings.vms.een_token_table))
        assert isinstance(adapter, EenAdapter)
        ticket = adapter.start_clip(camera["Id"], start, start + timedelta(minutes=minutes), tag="clr-bench")
        download = adapter.poll_clip(ticket).downloads[0]
        token = adapter._tokens.token()  # the raw baseline needs the same bearer token
        url = adapter.resolve_url(download)  # the same signed mp4Url the adapter resolves when it opens
        total = control.stream_info_for_url(url)["Size"]

        def through_adapter() -> None:
            with adapter.open_download(download) as stream:
                for _ in stream:
                    pass

        def raw_requests() -> None:
            with requests.get(
                url, headers={"Authorization": f"Bearer {token}"}, stream=True, timeout=(10, 120)
            ) as response:
                response.raise_for_status()
                for _ in response.iter_content(MiB):
                    pass

        ours: list[float] = []
        raw: list[float] = []
        passes = [(through_adapter, ours), (raw_requests, raw)]
        for run in range(runs):
            for work, rates in passes if run % 2 == 0 else passes[::-1]:  # alternate who goes first
                started = time.perf_counter()
                work()
                rates.append(total / (time.perf_counter() - started) / 1e6)

        tracemalloc.start()
        through_adapter()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return {
        # best of the runs: the simulator serves from this process, so GIL contention adds noise to both
        "vms_download_mbps": (max(ours), "MB/s"),
        "raw_http_download_mbps": (max(raw), "MB/s"),
        "vms_download_heap_peak_mib_1g": (peak / MiB, "MiB"),
    }
