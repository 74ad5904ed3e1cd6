// Key Vault for the Clearance connection file and the VMS credentials. RBAC mode (no access policies),
// soft delete and purge protection. A secret is created only when its @secure() value is given;
// otherwise the operator puts it in later (docs/deployment.md). Purge protection keeps a deleted vault's
// name taken for 90 days: `recover` brings that vault (and its secrets) back instead of creating it.
// It also holds the credentials key: an RSA key that never leaves the vault and only wraps and unwraps the
// data keys that seal the VMS credentials the app stores in its credentials table (docs/security.md).
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
@description('The key that wraps the data keys sealing stored VMS credentials (CREDENTIALS_KEY_URI).')
param credentialsKeyName string = 'vms-credentials-kek'
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

// Wrap/unwrap only. A new version every year (old versions stay enabled, so data keys wrapped by them still
// unwrap; the app re-wraps nothing: new data keys use the new version); each version expires after two years.
resource credentialsKey 'Microsoft.KeyVault/vaults/keys@2023-07-01' = {
  parent: vault
  name: credentialsKeyName
  properties: {
    kty: 'RSA'
    keySize: 3072
    keyOps: [
      'wrapKey'
      'unwrapKey'
    ]
    attributes: {
      enabled: true
      exportable: false
    }
    rotationPolicy: {
      attributes: {
        expiryTime: 'P2Y'
      }
      lifetimeActions: [
        {
          trigger: {
            timeAfterCreate: 'P1Y'
          }
          action: {
            type: 'rotate'
          }
        }
        {
          trigger: {
            timeBeforeExpiry: 'P30D'
          }
          action: {
            type: 'notify'
          }
        }
      ]
    }
  }
}

output id string = vault.id
output name string = vault.name
output uri string = vault.properties.vaultUri
output credentialsKeyName string = credentialsKey.name
@description('Versionless: wrapping uses the current version; each wrapped data key records the version that unwraps it.')
output credentialsKeyUri string = credentialsKey.properties.keyUri
