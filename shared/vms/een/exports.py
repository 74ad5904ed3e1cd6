"""What an EEN export job's result means: which file holds which time, and where the file lives.

EEN's OpenAPI spec gives each result file only `{name, size, mimetype, url, description}`: no time
range (the archive's `exportFileDetails` repeat the export's *period*, not the file's). An export
yields one file per recorded part of its period and lists the parts it could not export in
`detailedState.intervals.missingIntervals`. So the adapter exports one covered interval at a time:
then the period less the missing intervals is one part, and its one file has known times. If an
unexpected gap still splits an export, its files are matched to the parts in the order EEN lists them
(chronological, as their names show); if the counts differ, no time can be trusted and the export is
reported failed rather than delivered with guessed times.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

from shared.vms.base import Download, Interval, clip_to_window, gaps

EXPORT_DIRECTORY = "/clearance-agent"
"""Where exports are put in the customer's archive (each file is deleted after delivery)."""
_ARCHIVE_FILE_URL = re.compile(r"/files/([0-9A-Fa-f-]{36}):download(?:$|\?)")


def parse_een_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def media_interval(item: dict[str, Any]) -> Interval:
    return Interval(parse_een_time(item["startTimestamp"]), parse_een_time(item["endTimestamp"]))


def missing_intervals(job: dict[str, Any]) -> list[Interval]:
    detailed = job.get("detailedState") or {}
    intervals = (detailed.get("intervals") or {}) if isinstance(detailed, dict) else {}
    missing = []
    for item in intervals.get("missingIntervals") or []:
        try:
            missing.append(media_interval(item))
        except (KeyError, TypeError, ValueError):
            continue
    return missing


def export_downloads(export: dict[str, Any], job: dict[str, Any], base_url: str) -> tuple[list[Download], str]:
    """(downloads with their true times, a problem when the files cannot be matched to times)."""
    start, end = datetime.fromisoformat(export["start"]), datetime.fromisoformat(export["end"])
    missing = clip_to_window(missing_intervals(job), start, end)
    parts = gaps(missing, start, end)
    files = [f for f in (job.get("result") or {}).get("files") or [] if isinstance(f, dict)]
    if len(files) != len(parts):
        problem = (
            f"export {export['job_id']} returned {len(files)} file(s) for {len(parts)} recorded part(s) of "
            f"{start.isoformat()}..{end.isoformat()}; their times cannot be told, so none is delivered"
        )
        return [], problem
    downloads = [
        Download(
            url=urljoin(base_url + "/", item["url"]) if item.get("url") else "",
            start=part.start,
            end=part.end,
            name=str(item.get("name") or f"{part.start:%Y%m%dT%H%M%SZ}.mp4"),
            size=item.get("size") if isinstance(item.get("size"), int) else None,
            source={"kind": "export", "job_id": export["job_id"], "index": index},
        )
        for index, (item, part) in enumerate(zip(files, parts, strict=True))
    ]
    return downloads, ""


def archive_file_id(item: dict[str, Any]) -> str | None:
    """The archive id of a result file whose URL is the archive's `/files/{id}:download`."""
    match = _ARCHIVE_FILE_URL.search(str(item.get("url") or ""))
    return match.group(1) if match else None
