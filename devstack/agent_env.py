"""App settings that point the agent at the local stack: what `local.settings.json` would hold."""

from __future__ import annotations

import uuid
from pathlib import Path

from devstack.funchost.config import THREAD_COUNT_SETTING, HostConfig, deployed_worker_threads
from devstack.stack import LocalStack

REPO = Path(__file__).resolve().parent.parent


def agent_settings(stack: LocalStack, *, vms: str = "een", unique: bool = False, **overrides: str) -> dict[str, str]:
    """Settings for the agent on this stack; `unique` gives the queue and tables fresh names (tests)."""
    suffix = uuid.uuid4().hex[:8] if unique else ""
    settings = {
        "AzureWebJobsStorage": stack.storage_connection_string,
        "CLEARANCE_CONNECTION_FILE": stack.connection_file_json,
        "CLEARANCE_AGENT_SERVICE_URL": stack.agent_service_url,
        "CLEARANCE_AGENT_ID": "local-agent",
        "JOBS_QUEUE_NAME": f"clearance-jobs{suffix}",
        "LOCKS_TABLE_NAME": f"clearancelocks{suffix}",
        "EEN_TOKEN_TABLE": f"vmstokens{suffix}",
        "POLL_SCHEDULE": "*/2 * * * * *",
        "RENEW_SCHEDULE": "*/5 * * * * *",
        "MAX_IN_FLIGHT_JOBS": "8",
        "PROGRESS_INTERVAL_SECONDS": "1",
        "UPLOAD_ALLOWED_HOSTS": "127.0.0.1",
        "UPLOAD_ALLOW_HTTP_LOOPBACK": "true",  # Azurite speaks plain http on loopback; never in Azure
        "VMS_KIND": vms,
        "CREDENTIALS_KEY_FILE": stack.credentials_key_file,  # local only: Key Vault's key in Azure
        # The worker's threads as a deployment sets them (app.bicep, from itemsPerInstance): one per work item
        # host.json lets in flight, plus the timers. Without it the local host, like Azure's worker, would run
        # at most min(32, CPUs + 4) functions at once.
        THREAD_COUNT_SETTING: str(deployed_worker_threads(HostConfig.load(REPO, environ={}).queues)),
    }
    if vms == "een":
        een = stack.een
        settings.update(
            EEN_CLIENT_ID=een.client_id,
            EEN_CLIENT_SECRET=een.client_secret,
            EEN_REFRESH_TOKEN=een.initial_refresh_token,
            EEN_AUTH_URL=een.auth_url,
            EEN_API_URL=een.api_url,
        )
    elif vms == "verkada":
        verkada = stack.verkada
        settings.update(VERKADA_API_KEY=verkada.api_key, VERKADA_ORG_ID=verkada.org_id, VERKADA_API_URL=verkada.api_url)
    else:
        rhombus = stack.rhombus
        settings.update(
            RHOMBUS_API_KEY=rhombus.api_key, RHOMBUS_API_URL=rhombus.api_url, RHOMBUS_MEDIA_URL=rhombus.media_url
        )
    settings.update(overrides)
    return settings
