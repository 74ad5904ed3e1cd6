// Key Vault for the Clearance connection file and the VMS credentials. RBAC mode (no access policies),
// soft delete and purge protection. A secret is created only when its @secure() value is given;
// otherwise the operator puts it in later (docs/deployment.md).
param name string
param location string
param tags object = {}
param connectionFileSecretName string
param eenClientSecretSecretName string
param eenRefreshTokenSecretName string
param rhombusApiKeySecretName string
@secure()
param connectionFileJson string = ''
@secure()
param eenClientSecret string = ''
@secure()
param eenRefreshToken string = ''
@secure()
param rhombusApiKey string = ''

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
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

output id string = vault.id
output name string = vault.name
output uri string = vault.properties.vaultUri
