// One private endpoint (storage blob, queue or table, or Key Vault) in the endpoints subnet, with the
// private DNS zone that makes the service's usual host name resolve to it inside the virtual network.
param name string
param location string
param tags object = {}
param vnetName string
param subnetName string
@description('Resource id of the storage account or vault.')
param targetId string
@description('Sub-resource: blob, queue, table or vault.')
@allowed([
  'blob'
  'queue'
  'table'
  'vault'
])
param groupId string
@description('privatelink.<service> zone, e.g. privatelink.blob.core.windows.net.')
param dnsZoneName string
@description('Default: a name missing from the zone does not resolve. NxDomainRedirect: it falls back to public resolution (Azure DNS), for names of other tenants\' private endpoints.')
@allowed([
  'Default'
  'NxDomainRedirect'
])
param resolutionPolicy string = 'Default'

resource vnet 'Microsoft.Network/virtualNetworks@2024-05-01' existing = {
  name: vnetName
}

resource zone 'Microsoft.Network/privateDnsZones@2024-06-01' = {
  name: dnsZoneName
  location: 'global'
  tags: tags
}

// resolutionPolicy needs API version 2024-06-01 or later.
resource zoneLink 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2024-06-01' = {
  parent: zone
  name: '${vnetName}-link'
  location: 'global'
  tags: tags
  properties: {
    registrationEnabled: false
    resolutionPolicy: resolutionPolicy
    virtualNetwork: {
      id: vnet.id
    }
  }
}

resource endpoint 'Microsoft.Network/privateEndpoints@2024-05-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    subnet: {
      id: '${vnet.id}/subnets/${subnetName}'
    }
    privateLinkServiceConnections: [
      {
        name: '${name}-connection'
        properties: {
          privateLinkServiceId: targetId
          groupIds: [
            groupId
          ]
        }
      }
    ]
  }
}

resource zoneGroup 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2024-05-01' = {
  parent: endpoint
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [
      {
        name: groupId
        properties: {
          privateDnsZoneId: zone.id
        }
      }
    ]
  }
}

output id string = endpoint.id
