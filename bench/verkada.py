"""Verkada footage throughput: the adapter's HLS → MP4 remux vs plain `requests` fetching the same segments.

Measured twice: with each segment download capped at 25 MB/s as a CDN serves one connection (what the
agent meets in production: the target, ≥ 0.9×), and uncapped (the remux's own cost, for information:
here the simulator generating the segments shares the same two cores).

Both read the same playlist of the Verkada simulator (MPEG-TS segments of real H.264 samples) and
count the segment bytes they consumed per second; the adapter also demuxes every segment and writes the
fragmented MP4 (PyAV), the baseline only downloads. Interleaved, best of the runs. (No heap figure: the
simulator runs in this process and its segment cache would be counted.)
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import requests

from devstack.agent_env import agent_settings
from devstack.stack import LocalStack
from shared.settings import AgentSettings
from shared.storage import table_client
from shared.vms.settings import build_adapter
from shared.vms.verkada.adapter import VerkadaAdapter

MiB = 1024 * 1024
BITRATE_KBPS = 8000  # 4 MB per 4-second segment


def measure(runs: int, size: int, cdn_bytes_per_second: int = 0) -> dict[str, tuple[float, str]]:
    """`cdn_bytes_per_second` caps each segment download like a CDN does (0: as fast as this machine goes,
    which measures the remux's own cost against a simulator sharing the same two cores)."""
    with LocalStack(state_dir=None) as stack:
        control = stack.verkada.control
        control.configure(BitrateKbps=BITRATE_KBPS, DownloadBytesPerSecond=cdn_bytes_per_second)
        seconds = min(3600, max(8, round(size * 8 / 1000 / BITRATE_KBPS)))
        start = (datetime.now(UTC) - timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
        end = start + timedelta(seconds=seconds)
        camera = control.add_camera(Name="bench", Recordings=[[start.isoformat(), end.isoformat()]])["Id"]
        settings = AgentSettings.from_env(agent_settings(stack, vms="verkada", unique=True))
        adapter = build_adapter(settings.vms, token_table=table_client(settings.storage, settings.vms.een_token_table))
        assert isinstance(adapter, VerkadaAdapter)
        download = adapter.poll_clip(adapter.start_clip(camera, start, end, tag="clr-bench")).downloads[0]
        jwt = adapter.stream_token.token()  # the raw baseline needs the same streaming token
        session = requests.Session()

        def with_jwt(url: str) -> str:
            parts = urlsplit(url)
            return urlunsplit(parts._replace(query=urlencode({**dict(parse_qsl(parts.query)), "jwt": jwt})))

        playlist_url = with_jwt(download.url)
        listed = session.get(playlist_url, timeout=(10, 120)).text.splitlines()
        segment_urls = [with_jwt(urljoin(playlist_url, line)) for line in listed if line and not line.startswith("#")]
        counted = {"bytes": 0}

        def raw_requests() -> None:
            counted["bytes"] = 0
            for url in segment_urls:
                with session.get(url, stream=True, timeout=(10, 120)) as response:
                    response.raise_for_status()
                    for chunk in response.iter_content(MiB):
                        counted["bytes"] += len(chunk)

        def through_adapter() -> None:
            with adapter.open_download(download) as stream:
                for _ in stream:
                    pass

        raw_requests()  # warms the simulator's segment cache alike for both, and measures the bytes
        total = counted["bytes"]
        ours: list[float] = []
        raw: list[float] = []
        passes = [(through_adapter, ours), (raw_requests, raw)]
        for run in range(runs):
            for work, rates in passes if run % 2 == 0 else passes[::-1]:
                started = time.perf_counter()
                work()
                rates.append(total / (time.perf_counter() - started) / 1e6)
        adapter.close()
    suffix = "_cdn" if cdn_bytes_per_second else ""
    return {
        f"verkada_remux{suffix}_mbps": (max(ours), "MB/s"),
        f"verkada_raw_hls{suffix}_mbps": (max(raw), "MB/s"),
    }


if __name__ == "__main__":
    import sys

    figures = measure(3, (int(sys.argv[1]) if len(sys.argv) > 1 else 128) * MiB)
    for name, (value, unit) in figures.items():
        print(f"{name:<30}{value:>10.1f}  {unit}")
    print(f"ratio {figures['verkada_remux_mbps'][0] / figures['verkada_raw_hls_mbps'][0]:.2f}")
