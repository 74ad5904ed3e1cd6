"""The queries operators get (alerts, the workbook, docs) ask for what the agent really sends."""

from __future__ import annotations

import re
from pathlib import Path

from shared.telemetry.context import DIMENSIONS
from shared.telemetry.metrics import METRIC_NAMES
from tests.infra.bicep_model import config, module, resources_of_type

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [
    ROOT / "infra/bicep/modules/alerts.bicep",
    ROOT / "infra/bicep/modules/workbook.bicep",
    ROOT / "docs/deployment.md",
    ROOT / "docs/telemetry.md",
]
# attributes the metrics carry besides the job dimensions (shared/telemetry/metrics.py)
METRIC_ATTRIBUTES = {"state", "service", "status"}
SPAN_ATTRIBUTES = {"clearance.service", "clearance.operation", "clearance.bytes", "clearance.blocks", "thread.name"}


def test_every_metric_a_query_names_is_one_the_agent_records():
    known = set(METRIC_NAMES)
    for path in SOURCES:
        text = path.read_text()
        named = set(re.findall(r'"(clearance\.[a-z_.]+)"', text))
        assert named, f"{path.name} queries no clearance.* metric"
        assert named <= known | SPAN_ATTRIBUTES, (path.name, named - known)


def test_every_custom_dimension_a_query_reads_is_sent():
    sent = set(DIMENSIONS) | METRIC_ATTRIBUTES | SPAN_ATTRIBUTES | {"job_event"}
    for path in SOURCES:
        text = path.read_text()
        used = set(re.findall(r"customDimensions\.(\w+)", text))
        used |= set(re.findall(r'customDimensions\[\\?"([\w.]+)\\?"\]', text))
        assert used <= sent, (path.name, used - sent)


def test_the_absence_and_backlog_alerts_watch_metrics_recorded_on_every_poll():
    alerts = module("alerts")
    rules = resources_of_type(alerts, "Microsoft.Insights/scheduledQueryRules")
    no_poll = config(rules["noPollAlert"])["properties"]["criteria"]["allOf"][0]
    assert (no_poll["timeAggregation"], no_poll["operator"], no_poll["threshold"]) == ("Count", "LessThan", 1)
    assert config(rules["noPollAlert"])["properties"]["windowSize"] == "PT10M"
    backlog = config(rules["queueBacklogAlert"])["properties"]["criteria"]["allOf"][0]
    assert backlog["timeAggregation"] == "Maximum" and backlog["metricMeasureColumn"] == "oldest_seconds"
    variables = alerts["variables"]
    assert '"clearance.polls"' in variables["pollsQuery"]["value"]
    assert '"clearance.queue.oldest_message_age"' in variables["backlogQuery"]["value"]
    poll_function = (ROOT / "poll_jobs/__init__.py").read_text()
    assert "metrics.poll_ran()" in poll_function and "record_oldest_message_age(" in poll_function


def test_secrets_near_expiry_raise_an_alert_through_event_grid():
    alerts = module("alerts")
    subscription = config(
        resources_of_type(alerts, "Microsoft.EventGrid/systemTopics/eventSubscriptions")["secretExpiryAlert"]
    )["properties"]
    assert subscription["destination"]["endpointType"] == "MonitorAlert"
    assert subscription["eventDeliverySchema"] == "CloudEventSchemaV1_0"
    assert set(subscription["filter"]["includedEventTypes"]) == {
        "Microsoft.KeyVault.SecretNearExpiry",
        "Microsoft.KeyVault.SecretExpired",
    }
