"""What an EEN export job's result tells: each file's true times, and where the file lives in the archive."""

from datetime import UTC, datetime, timedelta

from shared.vms.een.exports import archive_file_id, export_downloads

T0 = datetime(2026, 11, 1, 10, tzinfo=UTC)
EXPORT = {"job_id": "j-1", "start": T0.isoformat(), "end": (T0 + timedelta(minutes=30)).isoformat()}


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat(timespec="milliseconds")


def job(files: int, missing: list[tuple[float, float]]) -> dict:
    holes = [{"startTimestamp": at(s), "endTimestamp": at(e)} for s, e in missing]
    return {
        "state": "success",
        "detailedState": {"intervals": {"missingIntervals": holes}},
        "result": {
            "files": [{"name": f"f{n}.mp4", "size": 10, "url": f"/api/v3.0/files/{n}:download"} for n in range(files)]
        },
    }


def spans(downloads):
    return [(d.start, d.end) for d in downloads]


def test_one_file_for_a_whole_period_holds_the_whole_period():
    downloads, problem = export_downloads(EXPORT, job(1, []), "https://host")
    assert problem == "" and spans(downloads) == [(T0, T0 + timedelta(minutes=30))]
    assert downloads[0].url == "https://host/api/v3.0/files/0:download" and downloads[0].source["index"] == 0


def test_a_gap_inside_the_period_gives_each_file_its_own_part_in_order():
    downloads, problem = export_downloads(EXPORT, job(2, [(10, 12)]), "https://host")
    assert problem == ""
    assert spans(downloads) == [
        (T0, T0 + timedelta(minutes=10)),
        (T0 + timedelta(minutes=12), T0 + timedelta(minutes=30)),
    ]


def test_files_that_do_not_match_the_parts_are_not_delivered_with_guessed_times():
    downloads, problem = export_downloads(EXPORT, job(3, [(10, 12)]), "https://host")
    assert downloads == [] and "3 file(s) for 2 recorded part(s)" in problem


def test_the_archive_id_is_read_from_an_archive_download_url_only():
    assert archive_file_id({"url": "https://h/api/v3.0/files/123e4567-e89b-12d3-a456-426655440000:download"}) == (
        "123e4567-e89b-12d3-a456-426655440000"
    )
    assert (
        archive_file_id({"url": "https://h/api/v3.0/downloads/123e4567-e89b-12d3-a456-426655440000:download"}) is None
    )
