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
param pollSchedule string
param renewSchedule string
param jobsQueueName string
param locksTableName string
param eenTokenTableName string
param maxInFlightJobs int
param maxDequeueCount int
param maxSegmentMinutes int
param lockRenewMarginSeconds int
param maxJobAgeMinutes int
param progressIntervalSeconds int
param exportTimeoutSeconds int
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

resource app 'Microsoft.Web/sites@2024-04-01' = {
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
        // Capacity and timing.
        {
          name: 'MAX_IN_FLIGHT_JOBS'
          value: string(maxInFlightJobs)
        }
        {
          name: 'MAX_DEQUEUE_COUNT'
          value: string(maxDequeueCount)
        }
        // The host's maxDequeueCount from the same parameter (overrides host.json), so the delivery the agent
        // treats as final is the one after which the host would poison the message.
        {
          name: 'AzureFunctionsJobHost__extensions__queues__maxDequeueCount'
          value: string(maxDequeueCount)
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

output id string = app.id
output name string = app.name
output defaultHostName string = app.properties.defaultHostName
