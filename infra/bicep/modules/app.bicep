// The Flex Consumption plan (FC1) and the function app: Python on Linux, the user-assigned identity for
// everything, keyless storage, Key Vault references for the secrets and every setting the agent reads
// (shared/settings.py SETTINGS_READ). Flex deprecates FUNCTIONS_WORKER_RUNTIME, FUNCTIONS_EXTENSION_VERSION,
// WEBSITE_RUN_FROM_PACKAGE, WEBSITE_CONTENT*, SCM_DO_BUILD_DURING_DEPLOYMENT and WEBSITE_TIME_ZONE:
// none of them is set here (the runtime comes from functionAppConfig.runtime).
param planName string
param appName string
param location string
param tags object = {}
@description('The azure.yaml service this app hosts: azd finds the app by its azd-service-name tag.')
param serviceName string = 'agent'
@description('Subnet for VNet integration (delegated to Microsoft.App/environments); empty: no VNet.')
param virtualNetworkSubnetId string = ''
param identityId string
param identityClientId string
param storageBlobEndpoint string
param storageQueueEndpoint string
param storageTableEndpoint string
param deploymentContainerUrl string
param appInsightsConnectionString string
param keyVaultName string
@description('CREDENTIALS_KEY_URI: the Key Vault key that wraps the data keys sealing stored VMS credentials.')
param credentialsKeyUri string
@allowed([
  '3.11'
  '3.12'
])
param pythonVersion string
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int
@allowed([
  2048
  4096
])
param instanceMemoryMB int
@description('process_job runs (work items) in flight on one instance: the host\'s batchSize + newBatchThreshold, and the Python worker\'s threads (docs/deployment.md, Scaling).')
@minValue(1)
@maxValue(48)
param itemsPerInstance int
@description('How a deployment or a setting change replaces running instances (functionAppConfig.siteUpdateStrategy).')
@allowed([
  'Recreate'
  'RollingUpdate'
])
param siteUpdateStrategy string
param pollSchedule string
param renewSchedule string
param jobsQueueName string
param locksTableName string
param eenTokenTableName string
param maxInFlightJobs int
param maxDequeueCount int
param itemFailureLimit int
param maxSegmentMinutes int
param lockRenewMarginSeconds int
param maxJobAgeMinutes int
param progressIntervalSeconds int
param exportTimeoutSeconds int
param exportWaitSeconds int
param retryDelaySeconds int
param releaseLimit int
param agentPauseSeconds int
param retentionDays int
param uploadConcurrency int
param uploadBlockMib int
param uploadAllowedHosts string
@allowed([
  'een'
  'rhombus'
  'verkada'
])
param vmsKind string
param clearanceAgentId string
param clearanceAgentServiceUrl string
param eenClientId string
param eenAuthUrl string
param eenApiUrl string
@allowed([
  'direct'
  'export'
])
param eenVideoRoute string
@allowed([
  'us'
  'eu'
])
param rhombusRegion string
param rhombusApiUrl string
param rhombusMediaUrl string
param verkadaOrgId string
@allowed([
  'us'
  'eu'
  'au'
  'gov'
])
param verkadaRegion string
param verkadaApiUrl string
param connectionFileSecretName string
param eenClientSecretSecretName string
param eenRefreshTokenSecretName string
param rhombusApiKeySecretName string
param verkadaApiKeySecretName string

// Only the selected VMS's secrets are referenced: an unused reference would show as unresolved.
var isEen = vmsKind == 'een'
var isRhombus = vmsKind == 'rhombus'
var isVerkada = vmsKind == 'verkada'
// One number decides how many work items run at once on an instance. The host lets batchSize +
// newBatchThreshold queue messages be in flight (it fetches a new batch when the running ones drop to the
// threshold): two thirds and one third of itemsPerInstance (12 -> 8 + 4, as host.json). Synchronous Python
// functions run on the worker's thread pool, by default min(32, CPUs + 4) threads: fewer than 12 on a small
// instance, and a message waiting for a thread still counts toward functionTimeout. So the pool is sized
// from the same number, plus one thread for each timer (poll_jobs, renew_locks), which must never wait
// behind work items: renew_locks keeps the jobs' locks alive.
var queueBatchSize = itemsPerInstance - itemsPerInstance / 3
var queueNewBatchThreshold = itemsPerInstance / 3
var timerFunctions = 2
var workerThreads = itemsPerInstance + timerFunctions

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

// 2024-11-01 or later: functionAppConfig.siteUpdateStrategy.
resource app 'Microsoft.Web/sites@2024-11-01' = {
  name: appName
  location: location
  tags: union(tags, {
    'azd-service-name': serviceName
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    keyVaultReferenceIdentity: identityId
    virtualNetworkSubnetId: empty(virtualNetworkSubnetId) ? null : virtualNetworkSubnetId
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
      // Recreate (Flex's default) stops every instance at once, runs in flight included; RollingUpdate
      // (preview) drains instances in batches and lets their runs finish (docs/deployment.md, section 11).
      siteUpdateStrategy: {
        type: siteUpdateStrategy
      }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: [
        // Host storage with the managed identity (no connection string, no keys).
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'AzureWebJobsStorage__clientId'
          value: identityClientId
        }
        {
          name: 'AzureWebJobsStorage__blobServiceUri'
          value: storageBlobEndpoint
        }
        {
          name: 'AzureWebJobsStorage__queueServiceUri'
          value: storageQueueEndpoint
        }
        {
          name: 'AzureWebJobsStorage__tableServiceUri'
          value: storageTableEndpoint
        }
        {
          name: 'AZURE_CLIENT_ID'
          value: identityClientId
        }
        // Telemetry with Entra ID auth (the App Insights resource has local auth disabled).
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: appInsightsConnectionString
        }
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'ClientId=${identityClientId};Authorization=AAD'
        }
        // OpenTelemetry (preview on Flex; host.json telemetryMode): the Python worker passes each invocation's
        // trace context to our code and the host stops forwarding our log lines a second time. The agent
        // configures the Azure Monitor distro itself with the managed identity (shared/telemetry/setup.py);
        // PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY is not set: the worker would configure it without one.
        {
          name: 'PYTHON_ENABLE_OPENTELEMETRY'
          value: 'true'
        }
        // Schedules (6-field NCRONTAB, UTC) read by the host through %POLL_SCHEDULE% / %RENEW_SCHEDULE%.
        {
          name: 'POLL_SCHEDULE'
          value: pollSchedule
        }
        {
          name: 'RENEW_SCHEDULE'
          value: renewSchedule
        }
        // Clearance.
        {
          name: 'CLEARANCE_CONNECTION_FILE'
          value: '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${connectionFileSecretName})'
        }
        {
          name: 'CLEARANCE_AGENT_ID'
          value: clearanceAgentId
        }
        {
          name: 'CLEARANCE_AGENT_SERVICE_URL'
          value: clearanceAgentServiceUrl
        }
        // Queue and tables: the same names the storage module creates.
        {
          name: 'JOBS_QUEUE_NAME'
          value: jobsQueueName
        }
        {
          name: 'LOCKS_TABLE_NAME'
          value: locksTableName
        }
        {
          name: 'EEN_TOKEN_TABLE'
          value: eenTokenTableName
        }
        // The credentials table's tokens are sealed with data keys this Key Vault key wraps (docs/security.md).
        {
          name: 'CREDENTIALS_KEY_URI'
          value: credentialsKeyUri
        }
        // Capacity and timing.
        {
          name: 'MAX_IN_FLIGHT_JOBS'
          value: string(maxInFlightJobs)
        }
        {
          name: 'MAX_DEQUEUE_COUNT'
          value: string(maxDequeueCount)
        }
        {
          name: 'ITEM_FAILURE_LIMIT'
          value: string(itemFailureLimit)
        }
        // The host's maxDequeueCount from the same parameter (overrides host.json), so the delivery the agent
        // treats as final is the one after which the host would poison the message.
        {
          name: 'AzureFunctionsJobHost__extensions__queues__maxDequeueCount'
          value: string(maxDequeueCount)
        }
        // Work items in flight per instance: the host's batch and the worker's threads from one number
        // (itemsPerInstance, above); these override host.json.
        {
          name: 'AzureFunctionsJobHost__extensions__queues__batchSize'
          value: string(queueBatchSize)
        }
        {
          name: 'AzureFunctionsJobHost__extensions__queues__newBatchThreshold'
          value: string(queueNewBatchThreshold)
        }
        {
          name: 'PYTHON_THREADPOOL_THREAD_COUNT'
          value: string(workerThreads)
        }
        {
          name: 'MAX_SEGMENT_MINUTES'
          value: string(maxSegmentMinutes)
        }
        {
          name: 'LOCK_RENEW_MARGIN_SECONDS'
          value: string(lockRenewMarginSeconds)
        }
        {
          name: 'MAX_JOB_AGE_MINUTES'
          value: string(maxJobAgeMinutes)
        }
        {
          name: 'PROGRESS_INTERVAL_SECONDS'
          value: string(progressIntervalSeconds)
        }
        {
          name: 'EXPORT_TIMEOUT_SECONDS'
          value: string(exportTimeoutSeconds)
        }
        {
          name: 'EXPORT_WAIT_SECONDS'
          value: string(exportWaitSeconds)
        }
        {
          name: 'RETRY_DELAY_SECONDS'
          value: string(retryDelaySeconds)
        }
        {
          name: 'RELEASE_LIMIT'
          value: string(releaseLimit)
        }
        {
          name: 'AGENT_PAUSE_SECONDS'
          value: string(agentPauseSeconds)
        }
        {
          name: 'RETENTION_DAYS'
          value: string(retentionDays)
        }
        {
          name: 'UPLOAD_CONCURRENCY'
          value: string(uploadConcurrency)
        }
        {
          name: 'UPLOAD_BLOCK_MIB'
          value: string(uploadBlockMib)
        }
        {
          name: 'UPLOAD_ALLOWED_HOSTS'
          value: uploadAllowedHosts
        }
        {
          name: 'UPLOAD_ALLOW_HTTP_LOOPBACK'
          value: 'false'
        }
        // The VMS.
        {
          name: 'VMS_KIND'
          value: vmsKind
        }
        {
          name: 'EEN_CLIENT_ID'
          value: eenClientId
        }
        {
          name: 'EEN_CLIENT_SECRET'
          value: isEen ? '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${eenClientSecretSecretName})' : ''
        }
        {
          name: 'EEN_REFRESH_TOKEN'
          value: isEen ? '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${eenRefreshTokenSecretName})' : ''
        }
        {
          name: 'EEN_AUTH_URL'
          value: eenAuthUrl
        }
        {
          name: 'EEN_API_URL'
          value: eenApiUrl
        }
        {
          name: 'EEN_VIDEO_ROUTE'
          value: eenVideoRoute
        }
        {
          name: 'RHOMBUS_API_KEY'
          value: isRhombus ? '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${rhombusApiKeySecretName})' : ''
        }
        {
          name: 'RHOMBUS_REGION'
          value: rhombusRegion
        }
        {
          name: 'RHOMBUS_API_URL'
          value: rhombusApiUrl
        }
        {
          name: 'RHOMBUS_MEDIA_URL'
          value: rhombusMediaUrl
        }
        {
          name: 'VERKADA_API_KEY'
          value: isVerkada ? '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${verkadaApiKeySecretName})' : ''
        }
        {
          name: 'VERKADA_ORG_ID'
          value: verkadaOrgId
        }
        {
          name: 'VERKADA_REGION'
          value: verkadaRegion
        }
        {
          name: 'VERKADA_API_URL'
          value: verkadaApiUrl
        }
      ]
    }
  }
}

// Basic (user name and password) publishing credentials off for the deployment endpoint (scm) and FTP:
// azd, `az functionapp deployment` and Core Tools publish with the caller's Entra ID token.
resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-11-01' = {
  parent: app
  name: 'scm'
  properties: {
    allow: false
  }
}

resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-11-01' = {
  parent: app
  name: 'ftp'
  properties: {
    allow: false
  }
}

output id string = app.id
output name string = app.name
output defaultHostName string = app.properties.defaultHostName
