"""What a deployment does to running work, how many work items an instance runs, and the private-network
details that only break in some customers' networks (issue 18)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devstack.funchost.config import HostConfig, deployed_worker_threads
from tests.infra.bicep_model import ROOT, app_settings, config, main, module, resources_of_type

QUEUE_SETTING = "AzureFunctionsJobHost__extensions__queues__{}"
# environment().suffixes.keyvaultDns in each cloud, and the private link zone Microsoft documents for it.
VAULT_ZONES = {
    ".vault.azure.net": "privatelink.vaultcore.azure.net",
    ".vault.azure.cn": "privatelink.vaultcore.azure.cn",
    ".vault.usgovcloudapi.net": "privatelink.vaultcore.usgovcloudapi.net",
}


def evaluate(node: Any, names: dict[str, Any]) -> Any:
    """The value of a pycep expression made of names, integers, + - * / and string(): enough for the
    template's arithmetic, and nothing is guessed (anything else fails the test)."""
    if isinstance(node, bool | int):
        return node
    if isinstance(node, str):
        return names[node]
    if "function" in node and node["function"]["type"] == "string":
        return str(evaluate(node["function"]["parameters"]["value_to_convert"], names))
    operator = node["operator"]
    left, right = (evaluate(operand, names) for operand in operator["operands"].values())
    return {
        "add": lambda: left + right,
        "substract": lambda: left - right,
        "multiply": lambda: left * right,
        "divide": lambda: left // right,  # Bicep divides integers as integers
    }[operator["type"]]()


def _app_names(items: int) -> dict[str, Any]:
    """The app module's variables for `itemsPerInstance` = items, evaluated in order."""
    names: dict[str, Any] = {"itemsPerInstance": items}
    for name, variable in module("app")["variables"].items():
        try:
            names[name] = evaluate(variable["value"], names)
        except (KeyError, TypeError):
            continue  # not arithmetic (a comparison of vmsKind, say)
    return names


def _settings_for(items: int) -> dict[str, int]:
    names = _app_names(items)
    settings = app_settings()
    wanted = {
        "batchSize": settings[QUEUE_SETTING.format("batchSize")],
        "newBatchThreshold": settings[QUEUE_SETTING.format("newBatchThreshold")],
        "threads": settings["PYTHON_THREADPOOL_THREAD_COUNT"],
    }
    return {key: int(evaluate(value, names)) for key, value in wanted.items()}


@pytest.mark.parametrize("items", [1, 2, 3, 6, 12, 13, 24, 48])
def test_one_number_decides_the_runs_in_flight_and_the_worker_threads(items):
    values = _settings_for(items)
    # The host holds at most batchSize + newBatchThreshold messages of one queue function at once ...
    assert values["batchSize"] + values["newBatchThreshold"] == items
    assert 1 <= values["batchSize"] <= 32  # the host's own limits
    assert 0 <= values["newBatchThreshold"] < values["batchSize"] or items == 1
    # ... and the worker has a thread for each of them, plus one per timer function: a run never waits for
    # a thread (time spent waiting counts toward functionTimeout) and renew_locks never waits behind items.
    assert values["threads"] == items + 2


def test_the_defaults_are_host_json_and_the_local_host_derives_the_same_threads():
    default = main()["parameters"]["itemsPerInstance"]["default"]
    host = json.loads((ROOT / "host.json").read_text())["extensions"]["queues"]
    values = _settings_for(default)
    assert (values["batchSize"], values["newBatchThreshold"]) == (host["batchSize"], host["newBatchThreshold"])
    # The local stack runs the agent with the thread count a deployment would set (devstack.agent_env).
    assert deployed_worker_threads(HostConfig.load(ROOT, environ={}).queues) == values["threads"]
    assert main()["modules"]["app"]["config"]["params"]["itemsPerInstance"] == "itemsPerInstance"
    # host.json's maxDequeueCount is overridden the same way; no other queue setting is.
    overridden = {name for name in app_settings() if name.startswith(QUEUE_SETTING.format(""))}
    assert overridden == {QUEUE_SETTING.format(n) for n in ("batchSize", "newBatchThreshold", "maxDequeueCount")}


def test_the_site_update_strategy_is_a_parameter_defaulting_to_recreate_while_rolling_updates_are_preview():
    params = main()["parameters"]["siteUpdateStrategy"]
    allowed = next(d["argument"] for d in params["decorators"] if d["type"] == "allowed")
    assert set(allowed) == {"Recreate", "RollingUpdate"}
    # Microsoft documents RollingUpdate as preview, not recommended for production: the default stays Recreate.
    assert params["default"] == "Recreate"
    site = config(module("app")["resources"]["app"])
    assert site["properties"]["functionAppConfig"]["siteUpdateStrategy"] == {"type": "siteUpdateStrategy"}
    api_version = module("app")["resources"]["app"]["api_version"]
    assert api_version >= "2024-11-01", "siteUpdateStrategy needs Microsoft.Web API version 2024-11-01 or later"
    assert main()["modules"]["app"]["config"]["params"]["siteUpdateStrategy"] == "siteUpdateStrategy"


def test_basic_publishing_credentials_are_off_for_scm_and_ftp():
    policies = resources_of_type(module("app"), "Microsoft.Web/sites/basicPublishingCredentialsPolicies")
    by_name = {config(p)["name"]: config(p) for p in policies.values()}
    assert set(by_name) == {"scm", "ftp"}
    for policy in by_name.values():
        assert policy["parent"] == "app"
        assert policy["properties"] == {"allow": False}


def _replace(node: dict[str, Any], keyvault_dns: str) -> str:
    """pycep's `replace(environment().suffixes.keyvaultDns, old, new)`, evaluated for one cloud."""
    function = node["function"]
    assert function["type"] == "replace"
    source = json.dumps(function["parameters"]["original_string"])
    assert '"environment"' in source and '"keyvaultDns"' in source
    return keyvault_dns.replace(function["parameters"]["old_string"], function["parameters"]["new_string"])


@pytest.mark.parametrize(("keyvault_dns", "zone"), VAULT_ZONES.items())
def test_the_vault_zone_is_the_private_link_zone_of_the_cloud_deployed_to(keyvault_dns, zone):
    expression = main()["variables"]["vaultDnsZoneName"]["value"]
    assert _replace(expression, keyvault_dns) == zone


def _endpoints() -> dict[str, dict[str, Any]]:
    modules = main()["modules"]
    return {
        config(m)["params"]["groupId"]: config(m)["params"]
        for m in modules.values()
        if m["detail"]["path"] == "modules/private-endpoint.bicep"
    }


def test_only_the_blob_zone_falls_back_to_public_resolution():
    # Uploads go to Clearance's storage account; if it has a private endpoint of its own, its name must still
    # resolve inside our VNet. Queue, table and vault names are only ever our own resources'.
    endpoints = _endpoints()
    assert endpoints["blob"]["resolutionPolicy"] == "NxDomainRedirect"
    for service in ("queue", "table", "vault"):
        assert "resolutionPolicy" not in endpoints[service], service
    pe = module("private-endpoint")
    assert pe["parameters"]["resolutionPolicy"]["default"] == "Default"
    link = pe["resources"]["zoneLink"]
    assert link["api_version"] >= "2024-06-01", "resolutionPolicy needs privateDnsZones API 2024-06-01 or later"
    assert config(link)["properties"]["resolutionPolicy"] == "resolutionPolicy"


def test_an_optional_nat_gateway_gives_the_app_subnet_one_static_outbound_ip():
    template = main()
    assert template["parameters"]["natGatewayEnabled"]["default"] is False
    assert config(template["modules"]["network"])["params"]["natGatewayEnabled"] == "natGatewayEnabled"
    network = module("network")
    ip = network["resources"]["natPublicIp"]
    gateway = network["resources"]["natGateway"]
    for resource in (ip, gateway):
        assert resource["config"]["condition"] == "natGatewayEnabled"
    assert config(ip)["sku"]["name"] == "Standard"
    assert config(ip)["properties"]["publicIPAllocationMethod"] == "Static"
    assert config(gateway)["properties"]["publicIpAddresses"] == [{"id": _property("natPublicIp", "id")}]
    subnets = {s["name"]: s["properties"] for s in config(network["resources"]["vnet"])["properties"]["subnets"]}
    attached = subnets["appSubnetName"]["natGateway"]["operator"]["operands"]
    assert attached["condition"] == "natGatewayEnabled" and attached["false_value"] is None
    assert attached["true_value"] == {"id": _property("natGateway", "id")}
    assert "natGateway" not in subnets["privateEndpointSubnetName"], "only the app's outbound traffic needs it"
    # The address an allow-list needs is an output; empty when there is no NAT gateway.
    output = template["outputs"]["OUTBOUND_IP_ADDRESS"]["value"]["operator"]["operands"]
    assert output["condition"] == {
        "operator": {"type": "and", "operands": {"operand_1": "vnetEnabled", "operand_2": "natGatewayEnabled"}}
    }
    assert output["false_value"] == ""
    assert "natPublicIpAddress" in json.dumps(output["true_value"])


def _property(resource: str, name: str) -> dict[str, Any]:
    return {"operator": {"type": "property_accessor", "operands": {"operand_1": resource, "operand_2": name}}}
