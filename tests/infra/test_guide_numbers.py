"""The guide's concurrency and timeout figures are the code's: each is derived here from host.json and the
template's defaults and must appear in docs/deployment.md, so changing one without the other fails."""

from __future__ import annotations

import json
import re

from devstack.funchost.config import APP_TIMER_FUNCTIONS, parse_timespan
from shared.settings import AgentSettings
from tests.infra.bicep_model import ROOT, main

GUIDE = (ROOT / "docs" / "deployment.md").read_text()


def _scaling_section() -> str:
    return GUIDE.split("## 10. Scaling and limits", 1)[1].split("\n## ", 1)[0]


def test_items_in_flight_threads_totals_and_memory_match_host_json_and_the_template():
    queues = json.loads((ROOT / "host.json").read_text())["extensions"]["queues"]
    params = main()["parameters"]
    batch, threshold = queues["batchSize"], queues["newBatchThreshold"]
    items = params["itemsPerInstance"]["default"]
    instances = params["maximumInstanceCount"]["default"]
    assert batch + threshold == items
    threads = items + APP_TIMER_FUNCTIONS
    defaults = AgentSettings.model_fields
    # (UPLOAD_CONCURRENCY + 1) × UPLOAD_BLOCK_MIB: one upload's buffers, with the settings' defaults
    upload_buffers_mib = (defaults["upload_concurrency"].default + 1) * defaults["upload_block_mib"].default
    text = _scaling_section()
    for figure in (f"**{batch}**", f"**{threshold}**", f"**{items}**", f"**{threads}**", f"**{items * instances}"):
        assert figure in text, f"docs/deployment.md section 10 should state {figure}"
    assert f"{instances} × {items} = **{items * instances}" in text
    assert f"{items} × {upload_buffers_mib} = **{items * upload_buffers_mib} MiB**" in text


def test_the_function_timeout_is_the_one_host_json_sets():
    seconds = parse_timespan(json.loads((ROOT / "host.json").read_text())["functionTimeout"])
    assert seconds % 60 == 0
    assert f"`functionTimeout` is **{int(seconds // 60)} minutes**" in _scaling_section()
    assert not re.search(r"functionTimeout`? is \*?\*?2 h", GUIDE), "the old 2-hour figure is gone"
