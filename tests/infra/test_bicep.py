"""The Bicep templates, parsed offline with pycep-parser: the structure a deployment depends on."""

from __future__ import annotations

import json
import re
from dataclasses import fields

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

EXPECTED_MODULES = {"identity", "storage", "keyvault", "monitoring", "app", "rbac", "alerts"}
ROLE_IDS = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",  # Storage Blob Data Owner
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88",  # Storage Queue Data Contributor
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",  # Storage Table Data Contributor
    "4633458b-17de-408a-b874-0445c86b69e6",  # Key Vault Secrets User
    "3913510d-42f4-4e42-8a64-420c390055eb",  # Monitoring Metrics Publisher
}
SECRET_SETTINGS = {
    "CLEARANCE_CONNECTION_FILE": "connectionFileSecretName",
    "EEN_CLIENT_SECRET": "eenClientSecretSecretName",
    "EEN_REFRESH_TOKEN": "eenRefreshTokenSecretName",
    "RHOMBUS_API_KEY": "rhombusApiKeySecretName",
}
FLEX_DEPRECATED = re.compile(
    r"^(FUNCTIONS_WORKER_RUNTIME|FUNCTIONS_EXTENSION_VERSION|WEBSITE_RUN_FROM_PACKAGE|WEBSITE_CONTENT.*"
    r"|SCM_DO_BUILD_DURING_DEPLOYMENT|WEBSITE_TIME_ZONE|WEBSITE_NODE_DEFAULT_VERSION|AzureWebJobsStorage)$"
)
# Not set in Azure: the connection string is the local alternative to the identity-based settings,
# and the path is a local-only alternative to the Key Vault-held connection file.
LOCAL_ONLY_SETTINGS = {"AzureWebJobsStorage", "CLEARANCE_CONNECTION_FILE_PATH"}


def _default(name: str):
    return next(f.default for f in fields(AgentSettings) if f.name == name)


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
        passed = set(mod["config"]["params"])
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


def test_every_setting_the_code_reads_is_in_the_template():
    settings = app_settings()
    missing = set(SETTINGS_READ) - LOCAL_ONLY_SETTINGS - set(settings)
    assert not missing, f"app settings missing from infra/bicep/modules/app.bicep: {sorted(missing)}"


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
        assert config(assignment)["scope"] in {"storage", "vault", "appInsights"}, name
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


def test_alerts_cover_the_poison_queue_and_function_failures():
    alerts = module("alerts")
    queries = [
        config(r)["properties"]["criteria"]["allOf"][0]["query"]
        for r in resources_of_type(alerts, "Microsoft.Insights/scheduledQueryRules").values()
    ]
    assert any("StorageQueueLogs" in q and "PutMessage" in q and "${poisonQueueName}" in q for q in queries)
    metrics = [
        config(r)["properties"]["criteria"]["allOf"][0]
        for r in resources_of_type(alerts, "Microsoft.Insights/metricAlerts").values()
    ]
    assert any(m["metricName"] == "requests/failed" and m["threshold"] == 0 for m in metrics)
    storage = module("storage")
    assert config(storage["resources"]["poisonQueue"])["name"] == "${jobsQueueName}-poison"
    diag = config(storage["resources"]["queueDiagnostics"])
    assert diag["scope"] == "queueService"
    assert {log["category"] for log in diag["properties"]["logs"]} >= {"StorageWrite"}


def test_outputs():
    assert {"functionAppName", "storageAccountName", "keyVaultName", "appInsightsName"} <= set(main()["outputs"])


def test_parameters_file_is_an_example_without_secrets():
    doc = json.loads((BICEP_DIR / "main.parameters.json").read_text())
    params = main()["parameters"]
    assert set(doc["parameters"]) <= set(params), set(doc["parameters"]) - set(params)
    required = {p for p, spec in params.items() if spec.get("default") is None}
    assert required <= set(doc["parameters"])
    secure = {p for p, spec in params.items() if {"type": "secure"} in spec["decorators"]}
    assert secure and not secure & set(doc["parameters"])
