// Clearance Cloud Agent on Azure Functions (Flex Consumption), deployed into one resource group.
// az deployment group create -g <rg> -f infra/bicep/main.bicep -p @infra/bicep/main.parameters.json
// See docs/deployment.md. Local modules only: the offline checks (pycep-parser, checkov) read them all.
targetScope = 'resourceGroup'

@description('Short environment name used in resource names, e.g. clearance-prod.')
@minLength(3)
@maxLength(20)
param environmentName string

@description('Azure region; defaults to the resource group\'s.')
param location string = resourceGroup().location

@description('Python version of the Functions runtime.')
@allowed([
  '3.11'
  '3.12'
])
param pythonVersion string = '3.11'

@description('Flex Consumption: upper bound of instances for the whole app (1-1000).')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Flex Consumption instance memory.')
@allowed([
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('POLL_SCHEDULE: how often poll_jobs asks Clearance for jobs (6-field NCRONTAB, UTC).')
param pollSchedule string = '0 */1 * * * *'

@description('RENEW_SCHEDULE: how often renew_locks extends the locks of running jobs (6-field NCRONTAB, UTC).')
param renewSchedule string = '30 */1 * * * *'

@description('JOBS_QUEUE_NAME (at most 56 characters: its -poison queue must fit 63).')
@maxLength(56)
param jobsQueueName string = 'clearance-jobs'

@description('LOCKS_TABLE_NAME')
param locksTableName string = 'clearancelocks'

@description('EEN_TOKEN_TABLE')
param eenTokenTableName string = 'vmstokens'

@description('MAX_IN_FLIGHT_JOBS: jobs one poll may leave queued or running (1-200).')
@minValue(1)
@maxValue(200)
param maxInFlightJobs int = 5

@description('MAX_DEQUEUE_COUNT: keep equal to host.json extensions.queues.maxDequeueCount.')
@minValue(1)
@maxValue(100)
param maxDequeueCount int = 5

@minValue(10)
@maxValue(3600)
param lockRenewMarginSeconds int = 120

@minValue(5)
@maxValue(10080)
param maxJobAgeMinutes int = 180

@minValue(1)
@maxValue(600)
param progressIntervalSeconds int = 5

@minValue(10)
@maxValue(86400)
param exportTimeoutSeconds int = 1800

@minValue(1)
@maxValue(32)
param uploadConcurrency int = 4

@minValue(1)
@maxValue(100)
param uploadBlockMib int = 4

@description('UPLOAD_ALLOWED_HOSTS: comma-separated host patterns; empty keeps the built-in Azure Blob hosts.')
param uploadAllowedHosts string = ''

@description('VMS_KIND: which cloud VMS the agent talks to.')
@allowed([
  'een'
  'rhombus'
])
param vmsKind string = 'een'

@description('CLEARANCE_AGENT_ID; empty uses the connection file\'s service principal id.')
param clearanceAgentId string = ''

@description('CLEARANCE_AGENT_SERVICE_URL; empty uses the connection file\'s.')
param clearanceAgentServiceUrl string = ''

@description('EEN_CLIENT_ID: the EEN application\'s client id (not a secret).')
param eenClientId string = ''

@description('EEN_AUTH_URL; empty uses the EEN default.')
param eenAuthUrl string = ''

@description('EEN_API_URL; empty uses the EEN default.')
param eenApiUrl string = ''

@allowed([
  'direct'
  'export'
])
param eenVideoRoute string = 'direct'

@allowed([
  'us'
  'eu'
])
param rhombusRegion string = 'us'

@description('RHOMBUS_API_URL; empty uses the region\'s default.')
param rhombusApiUrl string = ''

@description('RHOMBUS_MEDIA_URL; empty uses the region\'s default.')
param rhombusMediaUrl string = ''

@description('Key Vault secret names (the secrets may already exist or be created below).')
param connectionFileSecretName string = 'clearance-connection-file'
param eenClientSecretSecretName string = 'een-client-secret'
param eenRefreshTokenSecretName string = 'een-refresh-token'
param rhombusApiKeySecretName string = 'rhombus-api-key'

@description('Optional: the Clearance connection file JSON, stored as a Key Vault secret. Empty: put it in later.')
@secure()
param connectionFileJson string = ''

@secure()
param eenClientSecret string = ''

@description('Optional: the first EEN refresh token from the one-time consent.')
@secure()
param eenRefreshToken string = ''

@secure()
param rhombusApiKey string = ''

@description('Storage replication (the agent\'s state is transient: LRS is enough for most).')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param storageSkuName string = 'Standard_LRS'

@description('Optional: e-mail address for the alerts.')
param alertEmailAddress string = ''

param tags object = {}

var suffix = uniqueString(resourceGroup().id, environmentName)
var deploymentContainerName = 'app-package'

module identity 'modules/identity.bicep' = {
  name: 'identity'
  params: {
    name: 'id-${environmentName}'
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    logAnalyticsName: 'log-${environmentName}'
    appInsightsName: 'appi-${environmentName}'
    location: location
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    name: 'st${suffix}'
    location: location
    tags: tags
    jobsQueueName: jobsQueueName
    locksTableName: locksTableName
    eenTokenTableName: eenTokenTableName
    deploymentContainerName: deploymentContainerName
    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId
    skuName: storageSkuName
  }
}

module keyvault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  params: {
    name: 'kv${suffix}'
    location: location
    tags: tags
    connectionFileSecretName: connectionFileSecretName
    eenClientSecretSecretName: eenClientSecretSecretName
    eenRefreshTokenSecretName: eenRefreshTokenSecretName
    rhombusApiKeySecretName: rhombusApiKeySecretName
    connectionFileJson: connectionFileJson
    eenClientSecret: eenClientSecret
    eenRefreshToken: eenRefreshToken
    rhombusApiKey: rhombusApiKey
  }
}

// Roles before the app: the host starts with its identity and must reach storage and the vault at once.
module rbac 'modules/rbac.bicep' = {
  name: 'rbac'
  params: {
    principalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    keyVaultName: keyvault.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
  }
}

module app 'modules/app.bicep' = {
  name: 'app'
  dependsOn: [
    rbac
  ]
  params: {
    planName: 'plan-${environmentName}'
    appName: 'func-${environmentName}-${take(suffix, 6)}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageBlobEndpoint: storage.outputs.blobEndpoint
    storageQueueEndpoint: storage.outputs.queueEndpoint
    storageTableEndpoint: storage.outputs.tableEndpoint
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    appInsightsConnectionString: monitoring.outputs.connectionString
    keyVaultName: keyvault.outputs.name
    pythonVersion: pythonVersion
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    pollSchedule: pollSchedule
    renewSchedule: renewSchedule
    jobsQueueName: jobsQueueName
    locksTableName: locksTableName
    eenTokenTableName: eenTokenTableName
    maxInFlightJobs: maxInFlightJobs
    maxDequeueCount: maxDequeueCount
    lockRenewMarginSeconds: lockRenewMarginSeconds
    maxJobAgeMinutes: maxJobAgeMinutes
    progressIntervalSeconds: progressIntervalSeconds
    exportTimeoutSeconds: exportTimeoutSeconds
    uploadConcurrency: uploadConcurrency
    uploadBlockMib: uploadBlockMib
    uploadAllowedHosts: uploadAllowedHosts
    vmsKind: vmsKind
    clearanceAgentId: clearanceAgentId
    clearanceAgentServiceUrl: clearanceAgentServiceUrl
    eenClientId: eenClientId
    eenAuthUrl: eenAuthUrl
    eenApiUrl: eenApiUrl
    eenVideoRoute: eenVideoRoute
    rhombusRegion: rhombusRegion
    rhombusApiUrl: rhombusApiUrl
    rhombusMediaUrl: rhombusMediaUrl
    connectionFileSecretName: connectionFileSecretName
    eenClientSecretSecretName: eenClientSecretSecretName
    eenRefreshTokenSecretName: eenRefreshTokenSecretName
    rhombusApiKeySecretName: rhombusApiKeySecretName
  }
}

module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  params: {
    namePrefix: environmentName
    location: location
    tags: tags
    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId
    appInsightsId: monitoring.outputs.appInsightsId
    storageAccountName: storage.outputs.name
    poisonQueueName: storage.outputs.poisonQueueName
    alertEmailAddress: alertEmailAddress
  }
}

output functionAppName string = app.outputs.name
output storageAccountName string = storage.outputs.name
output keyVaultName string = keyvault.outputs.name
output appInsightsName string = monitoring.outputs.appInsightsName
output identityClientId string = identity.outputs.clientId
