"""The Bicep templates, parsed offline with pycep-parser: the structure a deployment depends on."""

from __future__ import annotations

import json
import re

import pytest

from shared.settings import SETTINGS_READ, AgentSettings
from shared.vms.settings import DEFAULT_TOKEN_TABLE
from tests.infra.bicep_model import (
    BICEP_DIR,
    MODULES_DIR,
    ROOT,
    app_settings,
    bicep_files,
    config,
    main,
    module,
    parse,
    resources_of_type,
    strings,
)

EXPECTED_MODULES = {
    *("identity", "storage", "keyvault", "monitoring", "app", "rbac", "alerts"),
    *("network", "private-endpoint"),
}
ROLE_IDS = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",  # Storage Blob Data Owner
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88",  # Storage Queue Data Contributor
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",  # Storage Table Data Contributor
    "4633458b-17de-408a-b874-0445c86b69e6",  # Key Vault Secrets User
    "e147488a-f6f5-4113-8e2d-b22465e65bf6",  # Key Vault Crypto Service Encryption User (the credentials key)
    "3913510d-42f4-4e42-8a64-420c390055eb",  # Monitoring Metrics Publisher
}
SECRET_SETTINGS = {
    "CLEARANCE_CONNECTION_FILE": "connectionFileSecretName",
    "EEN_CLIENT_SECRET": "eenClientSecretSecretName",
    "EEN_REFRESH_TOKEN": "eenRefreshTokenSecretName",
    "RHOMBUS_API_KEY": "rhombusApiKeySecretName",
    "VERKADA_API_KEY": "verkadaApiKeySecretName",
}
FLEX_DEPRECATED = re.compile(
    r"^(FUNCTIONS_WORKER_RUNTIME|FUNCTIONS_EXTENSION_VERSION|WEBSITE_RUN_FROM_PACKAGE|WEBSITE_CONTENT.*"
    r"|SCM_DO_BUILD_DURING_DEPLOYMENT|WEBSITE_TIME_ZONE|WEBSITE_NODE_DEFAULT_VERSION|AzureWebJobsStorage)$"
)
# Not set in Azure: the connection string is the local alternative to the identity-based settings,
# and the path is a local-only alternative to the Key Vault-held connection file.
LOCAL_ONLY_SETTINGS = {"AzureWebJobsStorage", "CLEARANCE_CONNECTION_FILE_PATH", "CREDENTIALS_KEY_FILE"}
# Set in Azure for the platform, not read by the agent's code: the host's identity-based storage and queue
# settings, the SDKs' identity and the telemetry connection.
PLATFORM_SETTINGS = {
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__blobServiceUri",
    "AzureFunctionsJobHost__extensions__queues__maxDequeueCount",
    "AzureFunctionsJobHost__extensions__queues__batchSize",
    "AzureFunctionsJobHost__extensions__queues__newBatchThreshold",
    "PYTHON_THREADPOOL_THREAD_COUNT",
    "AZURE_CLIENT_ID",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
}
# Being added: the template sets them ahead of the code that reads them (the Verkada adapter). When
# shared/settings.py reads one, move it out of this list (a test says so).
BEING_ADDED_SETTINGS: set[str] = set()  # settings the template carries before the code reads them
# Resource types that take no tags (extension and child resources).
UNTAGGED_TYPES = re.compile(
    r"^Microsoft\.Authorization/roleAssignments$|^Microsoft\.Insights/diagnosticSettings$"
    r"|^Microsoft\.\w+/\w+/\w+"  # child resources: containers, queues, tables, secrets, zone groups...
)


def _default(name: str):
    return AgentSettings.model_fields[name].default


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: p.relative_to(BICEP_DIR).as_posix())
def test_every_bicep_file_parses(path):
    template = parse(path)
    assert template["globals"]["scope"]["value"] == "resourceGroup"
    assert template.get("resources") or template.get("modules")


def test_main_wires_every_local_module_with_matching_parameters():
    modules = main()["modules"]
    assert {m["detail"]["path"] for m in modules.values()} == {f"modules/{n}.bicep" for n in EXPECTED_MODULES}
    assert {p.stem for p in MODULES_DIR.glob("*.bicep")} == EXPECTED_MODULES
    for name, mod in modules.items():
        assert mod["type"] == "local", f"{name} must be a local module (offline tools cannot read registries)"
        target = parse(BICEP_DIR / mod["detail"]["path"])["parameters"]
        passed = set(config(mod)["params"])
        assert passed <= set(target), f"{name}: unknown params {passed - set(target)}"
        required = {p for p, spec in target.items() if spec.get("default") is None}
        assert required <= passed, f"{name}: missing required params {required - passed}"


def test_no_typed_arrays_or_user_defined_types():
    # checkov's bundled (older) Bicep parser cannot read them; the scan would silently skip the file.
    for path in bicep_files():
        text = path.read_text()
        assert not re.search(r"^\s*type\s+\w+\s*=", text, re.M), path
        assert not re.search(r"^\s*param\s+\w+\s+\w+\[\]", text, re.M), path


def test_flex_consumption_plan_and_python_runtime():
    app = module("app")
    plans = resources_of_type(app, "Microsoft.Web/serverfarms")
    assert [config(p)["sku"] for p in plans.values()] == [{"tier": "FlexConsumption", "name": "FC1"}]
    site = config(app["resources"]["app"])
    assert site["kind"] == "functionapp,linux"
    flex = site["properties"]["functionAppConfig"]
    assert flex["runtime"] == {"name": "python", "version": "pythonVersion"}
    assert main()["parameters"]["pythonVersion"]["default"] == "3.11"
    assert flex["scaleAndConcurrency"]["maximumInstanceCount"] == "maximumInstanceCount"
    assert main()["modules"]["app"]["config"]["params"]["maximumInstanceCount"] == "maximumInstanceCount"
    deployment = flex["deployment"]["storage"]
    assert deployment["type"] == "blobContainer"
    assert deployment["authentication"] == {
        "type": "UserAssignedIdentity",
        "userAssignedIdentityResourceId": "identityId",
    }


def test_app_uses_the_user_assigned_identity_and_is_hardened():
    site = config(module("app")["resources"]["app"])
    assert site["identity"]["type"] == "UserAssigned"
    assert list(site["identity"]["userAssignedIdentities"]) == ["'${identityId}'"]
    props = site["properties"]
    assert props["keyVaultReferenceIdentity"] == "identityId"
    assert props["httpsOnly"] is True
    assert props["siteConfig"]["ftpsState"] == "Disabled"
    assert props["siteConfig"]["minTlsVersion"] == "1.2"
    wiring = main()["modules"]["app"]["config"]["params"]
    assert "identity" in json.dumps(wiring["identityId"])
    assert "identity" in json.dumps(wiring["identityClientId"])


def test_maximum_instance_count_follows_the_flex_consumption_limits():
    # Flex Consumption: the lowest maximum is 40, the highest 1000 (Microsoft's Flex Consumption docs).
    for template in (main(), module("app")):
        decorators = template["parameters"]["maximumInstanceCount"]["decorators"]
        assert {"type": "min_value", "argument": 40} in decorators
        assert {"type": "max_value", "argument": 1000} in decorators
    assert 40 <= main()["parameters"]["maximumInstanceCount"]["default"] <= 1000


def test_every_setting_the_code_reads_is_in_the_template():
    settings = app_settings()
    missing = set(SETTINGS_READ) - LOCAL_ONLY_SETTINGS - set(settings)
    assert not missing, f"app settings missing from infra/bicep/modules/app.bicep: {sorted(missing)}"


def test_the_template_sets_no_setting_nothing_reads():
    unread = set(app_settings()) - set(SETTINGS_READ) - PLATFORM_SETTINGS - BEING_ADDED_SETTINGS
    assert not unread, f"app settings that nothing reads: {sorted(unread)}"


def test_being_added_settings_are_not_read_yet():
    now_read = BEING_ADDED_SETTINGS & set(SETTINGS_READ)
    assert not now_read, f"the code reads these now: remove them from BEING_ADDED_SETTINGS: {sorted(now_read)}"
    assert set(app_settings()) >= BEING_ADDED_SETTINGS


def test_segment_length_and_verkada_settings():
    settings = app_settings()
    assert settings["MAX_SEGMENT_MINUTES"] == _string_of("maxSegmentMinutes")
    segment = main()["parameters"]["maxSegmentMinutes"]
    assert segment["default"] == _default("max_segment_minutes") == 15
    # The same bounds as shared/settings.py (1 to 60 minutes).
    assert {"type": "min_value", "argument": 1} in segment["decorators"]
    assert {"type": "max_value", "argument": 60} in segment["decorators"]
    assert settings["VERKADA_ORG_ID"] == "verkadaOrgId"
    assert settings["VERKADA_REGION"] == "verkadaRegion"
    assert settings["VERKADA_API_URL"] == "verkadaApiUrl"
    params = main()["parameters"]
    assert params["verkadaRegion"]["default"] == "us"
    assert params["verkadaApiUrl"]["default"] == ""
    allowed = next(d["argument"] for d in params["vmsKind"]["decorators"] if d["type"] == "allowed")
    assert set(allowed) == {"een", "rhombus", "verkada"}
    for name in ("maxSegmentMinutes", "verkadaOrgId", "verkadaRegion", "verkadaApiUrl", "verkadaApiKeySecretName"):
        assert main()["modules"]["app"]["config"]["params"][name] == name


def _string_of(param: str) -> dict:
    """pycep's form of `string(param)`."""
    return {"function": {"type": "string", "parameters": {"value_to_convert": param}}}


def test_the_host_dequeue_count_comes_from_the_same_parameter_as_the_agents():
    settings = app_settings()
    host_setting = settings["AzureFunctionsJobHost__extensions__queues__maxDequeueCount"]
    assert host_setting == settings["MAX_DEQUEUE_COUNT"]
    assert host_setting == _string_of("maxDequeueCount")
    assert main()["modules"]["app"]["config"]["params"]["maxDequeueCount"] == "maxDequeueCount"


def test_identity_based_host_storage():
    settings = app_settings()
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    assert settings["AzureWebJobsStorage__clientId"] == "identityClientId"
    for service in ("blob", "queue", "table"):
        assert settings[f"AzureWebJobsStorage__{service}ServiceUri"] == f"storage{service.title()}Endpoint"
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "ClientId=${identityClientId};Authorization=AAD"


def test_no_setting_flex_deprecates_and_no_connection_string():
    deprecated = [name for name in app_settings() if FLEX_DEPRECATED.match(name)]
    assert not deprecated
    text = (MODULES_DIR / "app.bicep").read_text()
    assert "listKeys" not in text and "AccountKey=" not in text and "InstrumentationKey=" not in text


def test_secret_settings_are_key_vault_references():
    settings = app_settings()
    for name, secret_param in SECRET_SETTINGS.items():
        expected = f"@Microsoft.KeyVault(VaultName=${{keyVaultName}};SecretName=${{{secret_param}}})"
        assert expected in set(strings(settings[name])), f"{name} is not a Key Vault reference"
    for name, value in settings.items():
        if name not in SECRET_SETTINGS:
            assert not any("KeyVault" in s for s in strings(value)), name


def test_storage_is_hardened():
    account = config(module("storage")["resources"]["account"])["properties"]
    assert account["allowSharedKeyAccess"] is False
    assert account["allowBlobPublicAccess"] is False
    assert account["minimumTlsVersion"] == "TLS1_2"
    assert account["supportsHttpsTrafficOnly"] is True
    container = config(module("storage")["resources"]["deploymentContainer"])
    assert container["properties"]["publicAccess"] == "None"


def test_queues_and_tables_are_the_ones_the_app_settings_name():
    storage = module("storage")
    queues = {
        config(r)["name"]
        for r in resources_of_type(storage, "Microsoft.Storage/storageAccounts/queueServices/queues").values()
    }
    tables = {
        config(r)["name"]
        for r in resources_of_type(storage, "Microsoft.Storage/storageAccounts/tableServices/tables").values()
    }
    assert queues == {"jobsQueueName", "${jobsQueueName}-poison"}
    assert tables == {"locksTableName", "eenTokenTableName"}
    settings = app_settings()
    assert settings["JOBS_QUEUE_NAME"] == "jobsQueueName"
    assert settings["LOCKS_TABLE_NAME"] == "locksTableName"
    assert settings["EEN_TOKEN_TABLE"] == "eenTokenTableName"
    # main passes the same parameter to both modules, and its defaults are the code's defaults.
    modules = main()["modules"]
    for param in ("jobsQueueName", "locksTableName", "eenTokenTableName"):
        assert modules["storage"]["config"]["params"][param] == param
        assert modules["app"]["config"]["params"][param] == param
    defaults = main()["parameters"]
    assert defaults["jobsQueueName"]["default"] == _default("jobs_queue")
    assert defaults["locksTableName"]["default"] == _default("locks_table")
    assert defaults["eenTokenTableName"]["default"] == DEFAULT_TOKEN_TABLE
    assert defaults["maxInFlightJobs"]["default"] == _default("max_in_flight_jobs")
    host = json.loads((ROOT / "host.json").read_text())
    assert defaults["maxDequeueCount"]["default"] == host["extensions"]["queues"]["maxDequeueCount"]


def test_role_assignments_are_the_least_privilege_set_each_commented():
    rbac = module("rbac")
    assignments = resources_of_type(rbac, "Microsoft.Authorization/roleAssignments")
    role_vars = {
        config(a)["properties"]["roleDefinitionId"]["function"]["parameters"]["resource_name_1"]
        for a in assignments.values()
    }
    assert {rbac["variables"][v]["value"] for v in role_vars} == ROLE_IDS
    assert len(assignments) == len(ROLE_IDS)
    for name, assignment in assignments.items():
        props = config(assignment)["properties"]
        assert props["principalId"] == "principalId"
        assert props["principalType"] == "ServicePrincipal"
        assert config(assignment)["scope"] in {"storage", "vault", "credentialsKey", "appInsights"}, name
    crypto = [a for a in assignments.values() if config(a)["scope"] == "credentialsKey"]
    assert len(crypto) == 1  # the only key role, on the one key: wrap/unwrap, never decrypt or sign
    key = rbac["resources"]["credentialsKey"]
    assert key["config"]["parent"] == "vault" and key["config"]["name"] == "credentialsKeyName"
    lines = (MODULES_DIR / "rbac.bicep").read_text().splitlines()
    for i, line in enumerate(lines):
        if line.startswith("resource ") and "roleAssignments" in line:
            assert lines[i - 1].startswith("//"), f"role assignment without a comment: {line}"
    assert "identity" in json.dumps(main()["modules"]["rbac"]["config"]["params"]["principalId"])


def test_key_vault_rbac_soft_delete_purge_protection_and_secure_secret_params():
    kv = module("keyvault")
    props = config(kv["resources"]["vault"])["properties"]
    assert props["enableRbacAuthorization"] is True
    assert props["enableSoftDelete"] is True
    assert props["enablePurgeProtection"] is True
    assert "accessPolicies" not in props
    secrets = resources_of_type(kv, "Microsoft.KeyVault/vaults/secrets")
    assert len(secrets) == len(SECRET_SETTINGS)
    for name, secret in secrets.items():
        assert "condition" in secret["config"], f"{name} must be created only when its value is given"
        body = config(secret)
        assert body["properties"]["contentType"], name
        value_param = body["properties"]["value"]
        assert {"type": "secure"} in kv["parameters"][value_param]["decorators"], value_param
        assert kv["parameters"][value_param]["default"] == ""
        assert {"type": "secure"} in main()["parameters"][value_param]["decorators"], value_param


def test_monitoring_has_local_auth_disabled():
    mon = module("monitoring")
    insights = config(mon["resources"]["appInsights"])["properties"]
    assert insights["DisableLocalAuth"] is True
    assert insights["WorkspaceResourceId"]


def _alert_queries() -> dict[str, str]:
    """Each log alert's query with the module's string variables substituted (one level of `${var}`)."""
    alerts = module("alerts")
    variables = {name: v["value"] for name, v in alerts["variables"].items() if isinstance(v["value"], str)}

    def expand(text: str) -> str:
        text = re.sub(r"\$\{(\w+)\}", lambda m: variables.get(m[1], m[0]), text)
        return re.sub(r"\\(.)", r"\1", text)  # Bicep string escapes (\\ and \')

    return {
        name: expand(variables[config(r)["properties"]["criteria"]["allOf"][0]["query"]])
        for name, r in resources_of_type(alerts, "Microsoft.Insights/scheduledQueryRules").items()
    }


def _matches(query: str, line: str) -> bool:
    """Whether a `traces | where message startswith "a" or message startswith "b"` query selects `line`."""
    where = query.split("| where ", 1)[1].split(" | ", 1)[0]
    assert " and " not in where, "the outcome alerts are a plain or of message prefixes"
    prefixes = re.findall(r'message startswith "([^"]+)"', where)
    assert prefixes and len(prefixes) == where.count(" or ") + 1, where
    return any(line.startswith(p) for p in prefixes)


def test_every_log_alert_skips_query_validation():
    # The tables a query reads do not exist in a new workspace until data arrives; validation would fail.
    rules = resources_of_type(module("alerts"), "Microsoft.Insights/scheduledQueryRules")
    assert len(rules) == 4
    for name, rule in rules.items():
        assert config(rule)["properties"]["skipQueryValidation"] is True, name


def test_alerts_fire_on_what_an_operator_must_act_on_and_not_on_retries():
    queries = _alert_queries()
    assert not resources_of_type(module("alerts"), "Microsoft.Insights/metricAlerts"), "no alert on failed runs"
    not_delivered, lost = queries["jobsNotDeliveredAlert"], queries["lockLostAlert"]
    for state in ("Failed", "Released", "Abandoned"):
        line = f"Job ended: state={state} job_id=7c1e0c52-0000-4000-8000-000000000001 type=mediarequest"
        assert _matches(not_delivered, line) and not _matches(lost, line), state
    lost_line = "Job ended: state=Lost job_id=42"
    assert _matches(lost, lost_line) and not _matches(not_delivered, lost_line)
    for state in ("Completed", "PartiallyCompleted", "Canceled"):
        line = f"Job ended: state={state} job_id=42"
        assert not _matches(not_delivered, line) and not _matches(lost, line), state
    # A state whose name merely starts like another's, and retry lines, select nothing.
    assert not _matches(not_delivered, "Job ended: state=FailedOver job_id=42")
    assert not _matches(not_delivered, "Transient failure on delivery 2/5, the host will retry: VmsTransient")
    for query in (not_delivered, lost):
        assert query.startswith("traces | where ")
        assert 'extract(@"job_id=(\\S+)", 1, message)' in query
    timers = queries["timersFailingAlert"]
    assert timers.startswith("requests | where success == false") and '"poll_jobs", "renew_locks"' in timers
    assert "process_job" not in timers
    timer_rule = config(module("alerts")["resources"]["timersFailingAlert"])["properties"]["criteria"]["allOf"][0]
    assert timer_rule["failingPeriods"] == {"numberOfEvaluationPeriods": 3, "minFailingPeriodsToAlert": 3}
    poison = queries["poisonQueueAlert"]
    assert "StorageQueueLogs" in poison and "PutMessage" in poison and "${poisonQueueName}" in poison
    storage = module("storage")
    assert config(storage["resources"]["poisonQueue"])["name"] == "${jobsQueueName}-poison"
    diag = config(storage["resources"]["queueDiagnostics"])
    assert diag["scope"] == "queueService"
    assert {log["category"] for log in diag["properties"]["logs"]} >= {"StorageWrite"}


def test_outputs_azd_and_operators_read():
    outputs = main()["outputs"]
    assert {
        "AZURE_LOCATION",
        "AZURE_TENANT_ID",
        "AZURE_RESOURCE_GROUP",
        "AZURE_FUNCTION_APP_NAME",
        "AZURE_STORAGE_ACCOUNT_NAME",
        "AZURE_KEY_VAULT_NAME",
        "APPLICATIONINSIGHTS_NAME",
        "SERVICE_AGENT_NAME",
    } <= set(outputs)
    assert all(re.fullmatch(r"[A-Z][A-Z0-9_]*", name) for name in outputs), "azd's environment variable style"
    assert "AZURE_CLIENT_ID" not in outputs, "azd exports outputs to hooks: it must not redirect DefaultAzureCredential"


def test_every_taggable_resource_carries_the_environment_tags():
    tags = main()["variables"]["allTags"]["value"]["function"]
    assert tags["type"] == "union"
    assert tags["parameters"]["arg_1"] == {"'azd-env-name'": "environmentName", "application": "clearance-agent"}
    assert tags["parameters"]["arg_2"] == "tags"
    for name, mod in main()["modules"].items():
        params = config(mod)["params"]
        if "tags" in parse(BICEP_DIR / mod["detail"]["path"])["parameters"]:
            assert params.get("tags") == "allTags", f"module {name} does not pass the tags"
    for path in MODULES_DIR.glob("*.bicep"):
        template = parse(path)
        for name, resource in template["resources"].items():
            if resource["existing"] or UNTAGGED_TYPES.match(resource["type"]):
                continue
            assert "tags" in config(resource), f"{path.name}: {name} ({resource['type']}) has no tags"


def test_azd_finds_the_function_app_by_its_service_tag():
    site = config(module("app")["resources"]["app"])
    union = site["tags"]["function"]
    assert union["type"] == "union" and union["parameters"]["arg_1"] == "tags"
    assert union["parameters"]["arg_2"] == {"'azd-service-name'": "serviceName"}
    assert main()["modules"]["app"]["config"]["params"]["serviceName"] == "agent"


def test_key_vault_name_can_be_chosen_and_a_deleted_vault_recovered():
    params = main()["parameters"]
    assert params["keyVaultName"]["default"] == "" and params["keyVaultRecover"]["default"] is False
    name = main()["variables"]["vaultName"]["value"]["operator"]["operands"]
    assert name["condition"] == {"function": {"type": "empty", "parameters": {"item_to_test": "keyVaultName"}}}
    assert name["true_value"] == "kv${suffix}" and name["false_value"] == "keyVaultName"
    wiring = main()["modules"]["keyvault"]["config"]["params"]
    assert wiring["name"] == "vaultName" and wiring["recover"] == "keyVaultRecover"
    create_mode = config(module("keyvault")["resources"]["vault"])["properties"]["createMode"]
    expected = {"condition": "recover", "true_value": "recover", "false_value": "default"}
    assert create_mode["operator"]["operands"] == expected


def test_private_networking_is_optional_and_complete():
    template = main()
    assert template["parameters"]["vnetEnabled"]["default"] is False
    modules = template["modules"]
    endpoints = {n: m for n, m in modules.items() if m["detail"]["path"] == "modules/private-endpoint.bicep"}
    groups = {config(m)["params"]["groupId"]: config(m)["params"] for m in endpoints.values()}
    assert set(groups) == {"blob", "queue", "table", "vault"}
    assert groups["vault"]["dnsZoneName"] == "vaultDnsZoneName"  # from environment(): tests/infra/test_bicep_deploy.py
    for service in ("blob", "queue", "table"):
        assert groups[service]["dnsZoneName"] == f"privatelink.{service}.${{environment().suffixes.storage}}"
    for name in ("network", *endpoints):
        assert modules[name]["config"]["condition"] == "vnetEnabled", f"{name} must exist only with vnetEnabled"
    assert set(endpoints) <= set(modules["app"]["config"]["dependsOn"]), "the app starts after its endpoints"
    subnet = modules["app"]["config"]["params"]["virtualNetworkSubnetId"]["operator"]["operands"]
    assert subnet["condition"] == "vnetEnabled" and subnet["false_value"] == ""
    assert modules["storage"]["config"]["params"]["privateNetworking"] == "vnetEnabled"
    assert modules["keyvault"]["config"]["params"]["privateNetworking"] == "vnetEnabled"
    # The app's subnet is delegated to Flex Consumption's environment, and every subnet has an NSG.
    vnet = config(module("network")["resources"]["vnet"])
    subnets = {s["name"]: s["properties"] for s in vnet["properties"]["subnets"]}
    app_subnet = subnets["appSubnetName"]
    assert app_subnet["delegations"][0]["properties"]["serviceName"] == "Microsoft.App/environments"
    assert all("networkSecurityGroup" in props for props in subnets.values())
    # Each endpoint's DNS zone is linked to the VNet and attached to the endpoint.
    pe = module("private-endpoint")
    assert config(pe["resources"]["zoneLink"])["properties"]["virtualNetwork"] == {"id": _property("vnet", "id")}
    zone_configs = config(pe["resources"]["zoneGroup"])["properties"]["privateDnsZoneConfigs"]
    assert zone_configs[0]["properties"]["privateDnsZoneId"] == _property("zone", "id")


def _property(resource: str, name: str) -> dict:
    """pycep's form of `resource.name`."""
    return {"operator": {"type": "property_accessor", "operands": {"operand_1": resource, "operand_2": name}}}


def test_storage_and_vault_close_their_public_endpoints_with_private_networking():
    for name, resource in (("storage", "account"), ("keyvault", "vault")):
        props = config(module(name)["resources"][resource])["properties"]
        public = props["publicNetworkAccess"]["operator"]["operands"]
        assert public == {"condition": "privateNetworking", "true_value": "Disabled", "false_value": "Enabled"}
        action = props["networkAcls"]["defaultAction"]["operator"]["operands"]
        assert action == {"condition": "privateNetworking", "true_value": "Deny", "false_value": "Allow"}
        assert module(name)["parameters"]["privateNetworking"]["default"] is False


def test_the_verkada_regions_offered_are_the_ones_the_code_knows():
    from shared.vms.verkada.regions import REGIONS

    decorators = main()["parameters"]["verkadaRegion"]["decorators"]
    allowed = next(d["argument"] for d in decorators if d["type"] == "allowed")
    assert sorted(allowed) == sorted(REGIONS)


def test_the_credentials_key_wraps_only_rotates_yearly_and_reaches_the_app():
    kv = module("keyvault")
    keys = resources_of_type(kv, "Microsoft.KeyVault/vaults/keys")
    assert list(keys) == ["credentialsKey"]
    props = config(keys["credentialsKey"])["properties"]
    assert props["kty"] == "RSA" and props["keySize"] >= 3072
    assert sorted(props["keyOps"]) == ["unwrapKey", "wrapKey"]
    assert props["attributes"]["exportable"] is False
    policy = props["rotationPolicy"]
    actions = {a["action"]["type"]: a["trigger"] for a in policy["lifetimeActions"]}
    assert actions["rotate"] == {"timeAfterCreate": "P1Y"} and policy["attributes"]["expiryTime"] == "P2Y"
    assert app_settings()["CREDENTIALS_KEY_URI"] == "credentialsKeyUri"
    wiring = main()["modules"]
    assert "credentialsKeyUri" in json.dumps(wiring["app"]["config"]["params"]["credentialsKeyUri"])
    assert "credentialsKeyName" in json.dumps(wiring["rbac"]["config"]["params"]["credentialsKeyName"])
