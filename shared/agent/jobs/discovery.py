"""discovery: the VMS's camera list, as one JSON document.

Planning: one item. The item streams the list camera by camera (an account may have thousands) and
reports the device count with the file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from shared.agent.jobs.base import Done, Draft, ItemRun, JobType, Planning
from shared.agent.states import FileKind, ItemKind
from shared.agent.work.ledger import FileEntry, OfferedJob, WorkItem
from shared.agent.work.naming import DISCOVERY_NAME
from shared.registry import contract
from shared.registry.client import RegistryClient
from shared.vms.base import Camera


class Discovery(JobType):
    name = contract.DISCOVERY
    parameters = contract.DiscoveryParameters
    item_kind = ItemKind.DISCOVERY
    file_kind = FileKind.DISCOVERY
    small = True
    nothing_delivered = "Discovery failed"

    def plan(self, job: OfferedJob, parameters: Any, planning: Planning) -> Draft:
        return Draft(items=[WorkItem(job.job_id, job.generation, "discovery", self.item_kind)])

    def run(self, run: ItemRun) -> Done:
        vms, guard = run.vms, run.guard
        counter = {"devices": 0}

        def document() -> Iterator[bytes]:
            """The camera list as one JSON document, streamed camera by camera."""
            counter["devices"] = 0
            generated = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
            yield json.dumps({"GeneratedUtc": generated, "Vendor": vms.vendor})[:-1].encode() + b', "Devices": ['
            for index, camera in enumerate(vms.list_cameras()):
                counter["devices"] += 1
                yield (b", " if index else b"") + json.dumps(_device(camera)).encode()
                if index % 200 == 199:
                    guard.check()
            yield b"]}"

        entry = FileEntry(DISCOVERY_NAME, FileKind.DISCOVERY, {})
        run.files.deliver(entry, "application/json", document, late_facts=lambda: {"DeviceCount": counter["devices"]})
        return Done()

    def complete(self, registry: RegistryClient, job_id: str, lock_token: str, entry: FileEntry) -> None:
        registry.complete_discovery(
            job_id,
            lock_token,
            entry.file_id,
            device_count=int(entry.facts["DeviceCount"]),
            size=entry.size,
            sha256=entry.sha256,
        )


def _device(camera: Camera) -> dict[str, object]:
    return {
        "DeviceId": camera.id,
        "Name": camera.name,
        "Type": "Camera",
        "Latitude": camera.latitude,
        "Longitude": camera.longitude,
        "Azimuth": camera.azimuth,
        "TimeZone": camera.timezone,
        "Online": camera.online,
        "Model": camera.model,
        "Manufacturer": camera.manufacturer,
    }
