// Key Vault for the Clearance connection file and the VMS credentials. RBAC mode (no access policies),
// soft delete and purge protection. A secret is created only when its @secure() value is given;
// otherwise the operator puts it in later (docs/deployment.md). Purge protection keeps a deleted vault's
// name taken for 90 days: `recover` brings that vault (and its secrets) back instead of creating it.
param name string
param location string
param tags object = {}
@description('true: recover the soft-deleted vault of this name (createMode recover).')
param recover bool = false
@description('true: reached only through a private endpoint (vnetEnabled); public network access off.')
param privateNetworking bool = false
param connectionFileSecretName string
param eenClientSecretSecretName string
param eenRefreshTokenSecretName string
param rhombusApiKeySecretName string
param verkadaApiKeySecretName string
@secure()
param connectionFileJson string = ''
@secure()
param eenClientSecret string = ''
@secure()
param eenRefreshToken string = ''
@secure()
param rhombusApiKey string = ''
@secure()
param verkadaApiKey string = ''

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    createMode: recover ? 'recover' : 'default'
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    publicNetworkAccess: privateNetworking ? 'Disabled' : 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: privateNetworking ? 'Deny' : 'Allow'
    }
  }
}

resource connectionFileSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(connectionFileJson)) {
  parent: vault
  name: connectionFileSecretName
  properties: {
    value: connectionFileJson
    contentType: 'application/json'
  }
}

resource eenClientSecretSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(eenClientSecret)) {
  parent: vault
  name: eenClientSecretSecretName
  properties: {
    value: eenClientSecret
    contentType: 'text/plain'
  }
}

resource eenRefreshTokenSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(eenRefreshToken)) {
  parent: vault
  name: eenRefreshTokenSecretName
  properties: {
    value: eenRefreshToken
    contentType: 'text/plain'
  }
}

resource rhombusApiKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(rhombusApiKey)) {
  parent: vault
  name: rhombusApiKeySecretName
  properties: {
    value: rhombusApiKey
    contentType: 'text/plain'
  }
}

resource verkadaApiKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(verkadaApiKey)) {
  parent: vault
  name: verkadaApiKeySecretName
  properties: {
    value: verkadaApiKey
    contentType: 'text/plain'
  }
}

output id string = vault.id
output name string = vault.name
output uri string = vault.properties.vaultUri
