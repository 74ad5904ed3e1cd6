// Clearance Cloud Agent on Azure Functions (Flex Consumption), deployed into one resource group.
// `azd up` (azure.yaml, main.parameters.json) or
// az deployment group create -g <rg> -f infra/bicep/main.bicep -p @my.parameters.json
// See docs/deployment.md. Local modules only: the offline checks (pycep-parser, checkov) read them all.
targetScope = 'resourceGroup'

@description('Short environment name used in resource names, e.g. clearance-prod (azd: the environment name).')
@minLength(3)
@maxLength(20)
param environmentName string

@description('Azure region; defaults to the resource group\'s (azd: AZURE_LOCATION).')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string = resourceGroup().location

@description('Python version of the Functions runtime.')
@allowed([
  '3.11'
  '3.12'
])
param pythonVersion string = '3.11'

@description('Flex Consumption: upper bound of instances for the app. Flex accepts 40 to 1000 (docs/deployment.md, Scaling).')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Flex Consumption instance memory.')
@allowed([
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Work items (process_job runs) in flight on one instance: sets the host\'s queue batch (two thirds, plus one third as newBatchThreshold) and the Python worker\'s threads (this plus the two timers). docs/deployment.md, Scaling.')
@minValue(1)
@maxValue(48)
param itemsPerInstance int = 12

@description('How deployments and setting changes replace running instances. Recreate (Flex\'s default) ends runs in flight; RollingUpdate (preview, not yet recommended for production by Microsoft) drains instances and lets their runs finish. docs/deployment.md, section 11.')
@allowed([
  'Recreate'
  'RollingUpdate'
])
param siteUpdateStrategy string = 'Recreate'

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

@description('MAX_DEQUEUE_COUNT, and the host\'s extensions.queues.maxDequeueCount (set from this same value).')
@minValue(1)
@maxValue(100)
param maxDequeueCount int = 5

@description('ITEM_FAILURE_LIMIT: failures a work item may have before it is given up (runs that never finished: twice as many).')
@minValue(1)
@maxValue(100)
param itemFailureLimit int = 5

@description('MAX_SEGMENT_MINUTES: the longest piece of video one work item handles.')
@minValue(1)
@maxValue(60)
param maxSegmentMinutes int = 15

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

@description('How long one run waits for a VMS export before handing the item back to the queue.')
@minValue(1)
@maxValue(600)
param exportWaitSeconds int = 20

@description('First backoff of a work item or message that failed transiently (doubling, at most 5 minutes).')
@minValue(1)
@maxValue(600)
param retryDelaySeconds int = 15

@description('Releases of one job for reasons of its own before the agent cancels it at its next lock.')
@minValue(1)
@maxValue(100)
param releaseLimit int = 3

@description('How long the agent locks no new job when its own configuration is refused (then it checks again).')
@minValue(5)
@maxValue(86400)
param agentPauseSeconds int = 300

@description('Days the records, plans and items of finished jobs are kept in Table Storage.')
@minValue(1)
@maxValue(3650)
param retentionDays int = 30

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
  'verkada'
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

@description('VERKADA_ORG_ID: the Verkada organisation id (not a secret).')
param verkadaOrgId string = ''

@description('VERKADA_REGION: the Verkada API region.')
@allowed([
  'us'
  'eu'
  'au'
  'gov'
])
param verkadaRegion string = 'us'

@description('VERKADA_API_URL; empty uses the region\'s default.')
param verkadaApiUrl string = ''

@description('Key Vault secret names (the secrets may already exist or be created below).')
param connectionFileSecretName string = 'clearance-connection-file'
param eenClientSecretSecretName string = 'een-client-secret'
param eenRefreshTokenSecretName string = 'een-refresh-token'
param rhombusApiKeySecretName string = 'rhombus-api-key'
param verkadaApiKeySecretName string = 'verkada-api-key'

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

@secure()
param verkadaApiKey string = ''

@description('Key Vault name; empty derives kv<unique string of the group and environment>. Give a new name to recreate a deleted environment without recovering its vault.')
@maxLength(24)
param keyVaultName string = ''

@description('true: recover the soft-deleted vault of the same name (and its secrets) instead of creating it (docs/deployment.md).')
param keyVaultRecover bool = false

@description('Private networking: VNet integration for the app, private endpoints for storage (blob, queue, table) and Key Vault, their public access off.')
param vnetEnabled bool = false

@description('Address space of the virtual network (vnetEnabled).')
param vnetAddressPrefix string = '10.40.0.0/16'

@description('The subnet the app integrates with (delegated to Microsoft.App/environments; /27 or larger).')
param appSubnetPrefix string = '10.40.1.0/24'

@description('The subnet of the private endpoints.')
param privateEndpointSubnetPrefix string = '10.40.2.0/24'

@description('With vnetEnabled: a NAT gateway and a static public IP for all the app\'s outbound traffic (for VMS or Clearance allow-lists); output OUTBOUND_IP_ADDRESS.')
param natGatewayEnabled bool = false

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

@description('Extra tags; every resource carries azd-env-name and application as well.')
param tags object = {}

var suffix = uniqueString(resourceGroup().id, environmentName)
var deploymentContainerName = 'app-package'
// azd finds the resources of an environment by azd-env-name, and the function app by azd-service-name.
var allTags = union({
  'azd-env-name': environmentName
  application: 'clearance-agent'
}, tags)
var vaultName = empty(keyVaultName) ? 'kv${suffix}' : keyVaultName
var vnetName = 'vnet-${environmentName}'
var appSubnetName = 'app'
var privateEndpointSubnetName = 'private-endpoints'
// Key Vault's private DNS zone in this cloud: keyvaultDns is '.vault.azure.net' in the public cloud (and
// '.vault.azure.cn', '.vault.usgovcloudapi.net' elsewhere); its private link zone is privatelink.vaultcore.<suffix>.
var vaultDnsZoneName = replace(environment().suffixes.keyvaultDns, '.vault.', 'privatelink.vaultcore.')

module identity 'modules/identity.bicep' = {
  name: 'identity'
  params: {
    name: 'id-${environmentName}'
    location: location
    tags: allTags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    logAnalyticsName: 'log-${environmentName}'
    appInsightsName: 'appi-${environmentName}'
    location: location
    tags: allTags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    name: 'st${suffix}'
    location: location
    tags: allTags
    jobsQueueName: jobsQueueName
    locksTableName: locksTableName
    eenTokenTableName: eenTokenTableName
    deploymentContainerName: deploymentContainerName
    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId
    skuName: storageSkuName
    privateNetworking: vnetEnabled
  }
}

module keyvault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  params: {
    name: vaultName
    location: location
    tags: allTags
    recover: keyVaultRecover
    privateNetworking: vnetEnabled
    connectionFileSecretName: connectionFileSecretName
    eenClientSecretSecretName: eenClientSecretSecretName
    eenRefreshTokenSecretName: eenRefreshTokenSecretName
    rhombusApiKeySecretName: rhombusApiKeySecretName
    verkadaApiKeySecretName: verkadaApiKeySecretName
    connectionFileJson: connectionFileJson
    eenClientSecret: eenClientSecret
    eenRefreshToken: eenRefreshToken
    rhombusApiKey: rhombusApiKey
    verkadaApiKey: verkadaApiKey
  }
}

// Private networking (vnetEnabled): the app's outbound traffic enters the VNet, and storage and the vault
// are reached through private endpoints whose names resolve in private DNS zones linked to the VNet.
module network 'modules/network.bicep' = if (vnetEnabled) {
  name: 'network'
  params: {
    name: vnetName
    location: location
    tags: allTags
    addressPrefix: vnetAddressPrefix
    appSubnetName: appSubnetName
    appSubnetPrefix: appSubnetPrefix
    privateEndpointSubnetName: privateEndpointSubnetName
    privateEndpointSubnetPrefix: privateEndpointSubnetPrefix
    natGatewayEnabled: natGatewayEnabled
  }
}

// The agent uploads to Clearance's storage account (a SAS URI on *.blob.core.windows.net). If that
// account has a private endpoint of its own, its public name resolves through
// <account>.privatelink.blob.core.windows.net, which this zone does not hold: without the fallback the
// name is NXDOMAIN inside the VNet and every upload fails. NxDomainRedirect answers such names publicly;
// names this zone holds (our own account) still resolve to our private endpoint.
module blobEndpoint 'modules/private-endpoint.bicep' = if (vnetEnabled) {
  name: 'pe-blob'
  dependsOn: [
    network
  ]
  params: {
    name: 'pe-${environmentName}-blob'
    location: location
    tags: allTags
    vnetName: vnetName
    subnetName: privateEndpointSubnetName
    targetId: storage.outputs.id
    groupId: 'blob'
    dnsZoneName: 'privatelink.blob.${environment().suffixes.storage}'
    resolutionPolicy: 'NxDomainRedirect'
  }
}

module queueEndpoint 'modules/private-endpoint.bicep' = if (vnetEnabled) {
  name: 'pe-queue'
  dependsOn: [
    network
  ]
  params: {
    name: 'pe-${environmentName}-queue'
    location: location
    tags: allTags
    vnetName: vnetName
    subnetName: privateEndpointSubnetName
    targetId: storage.outputs.id
    groupId: 'queue'
    dnsZoneName: 'privatelink.queue.${environment().suffixes.storage}'
  }
}

module tableEndpoint 'modules/private-endpoint.bicep' = if (vnetEnabled) {
  name: 'pe-table'
  dependsOn: [
    network
  ]
  params: {
    name: 'pe-${environmentName}-table'
    location: location
    tags: allTags
    vnetName: vnetName
    subnetName: privateEndpointSubnetName
    targetId: storage.outputs.id
    groupId: 'table'
    dnsZoneName: 'privatelink.table.${environment().suffixes.storage}'
  }
}

module vaultEndpoint 'modules/private-endpoint.bicep' = if (vnetEnabled) {
  name: 'pe-vault'
  dependsOn: [
    network
  ]
  params: {
    name: 'pe-${environmentName}-vault'
    location: location
    tags: allTags
    vnetName: vnetName
    subnetName: privateEndpointSubnetName
    targetId: keyvault.outputs.id
    groupId: 'vault'
    dnsZoneName: vaultDnsZoneName
  }
}

// Roles before the app: the host starts with its identity and must reach storage and the vault at once.
module rbac 'modules/rbac.bicep' = {
  name: 'rbac'
  params: {
    principalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    keyVaultName: keyvault.outputs.name
    credentialsKeyName: keyvault.outputs.credentialsKeyName
    appInsightsName: monitoring.outputs.appInsightsName
  }
}

// The app starts after its roles and, with private networking, after the endpoints it reaches storage through.
module app 'modules/app.bicep' = {
  name: 'app'
  dependsOn: [
    rbac
    blobEndpoint
    queueEndpoint
    tableEndpoint
    vaultEndpoint
  ]
  params: {
    planName: 'plan-${environmentName}'
    appName: 'func-${environmentName}-${take(suffix, 6)}'
    location: location
    tags: allTags
    serviceName: 'agent'
    virtualNetworkSubnetId: vnetEnabled ? resourceId('Microsoft.Network/virtualNetworks/subnets', vnetName, appSubnetName) : ''
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageBlobEndpoint: storage.outputs.blobEndpoint
    storageQueueEndpoint: storage.outputs.queueEndpoint
    storageTableEndpoint: storage.outputs.tableEndpoint
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    appInsightsConnectionString: monitoring.outputs.connectionString
    keyVaultName: keyvault.outputs.name
    credentialsKeyUri: keyvault.outputs.credentialsKeyUri
    pythonVersion: pythonVersion
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    itemsPerInstance: itemsPerInstance
    siteUpdateStrategy: siteUpdateStrategy
    pollSchedule: pollSchedule
    renewSchedule: renewSchedule
    jobsQueueName: jobsQueueName
    locksTableName: locksTableName
    eenTokenTableName: eenTokenTableName
    maxInFlightJobs: maxInFlightJobs
    maxDequeueCount: maxDequeueCount
    itemFailureLimit: itemFailureLimit
    maxSegmentMinutes: maxSegmentMinutes
    lockRenewMarginSeconds: lockRenewMarginSeconds
    maxJobAgeMinutes: maxJobAgeMinutes
    progressIntervalSeconds: progressIntervalSeconds
    exportTimeoutSeconds: exportTimeoutSeconds
    exportWaitSeconds: exportWaitSeconds
    retryDelaySeconds: retryDelaySeconds
    releaseLimit: releaseLimit
    agentPauseSeconds: agentPauseSeconds
    retentionDays: retentionDays
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
    verkadaOrgId: verkadaOrgId
    verkadaRegion: verkadaRegion
    verkadaApiUrl: verkadaApiUrl
    connectionFileSecretName: connectionFileSecretName
    eenClientSecretSecretName: eenClientSecretSecretName
    eenRefreshTokenSecretName: eenRefreshTokenSecretName
    rhombusApiKeySecretName: rhombusApiKeySecretName
    verkadaApiKeySecretName: verkadaApiKeySecretName
  }
}

module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  params: {
    namePrefix: environmentName
    location: location
    tags: allTags
    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId
    appInsightsId: monitoring.outputs.appInsightsId
    storageAccountName: storage.outputs.name
    poisonQueueName: storage.outputs.poisonQueueName
    alertEmailAddress: alertEmailAddress
    keyVaultName: keyvault.outputs.name
  }
}

module workbook 'modules/workbook.bicep' = {
  name: 'workbook'
  params: {
    namePrefix: environmentName
    location: location
    tags: allTags
    appInsightsId: monitoring.outputs.appInsightsId
  }
}

// Outputs: azd stores each in .azure/<environment>/.env (`azd env get-values`); with the CLI,
// `az deployment group show -g <rg> -n main --query properties.outputs`.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = resourceGroup().name
output AZURE_FUNCTION_APP_NAME string = app.outputs.name
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_KEY_VAULT_NAME string = keyvault.outputs.name
output AZURE_LOG_ANALYTICS_WORKSPACE_NAME string = monitoring.outputs.workspaceName
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.appInsightsName
output AGENT_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output SERVICE_AGENT_NAME string = app.outputs.name
output VNET_ENABLED bool = vnetEnabled
// The address VMS and Clearance allow-lists need (vnetEnabled and natGatewayEnabled); empty otherwise.
output OUTBOUND_IP_ADDRESS string = (vnetEnabled && natGatewayEnabled) ? network.outputs.natPublicIpAddress : ''
