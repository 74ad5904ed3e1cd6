// The virtual network of the private-networking variant (vnetEnabled): one subnet the function app
// integrates with (Flex Consumption needs it delegated to Microsoft.App/environments) and one for the
// private endpoints of storage and Key Vault. Each subnet has a network security group with the
// platform's default rules only: the app makes outbound calls, nothing inbound is opened.
param name string
param location string
param tags object = {}
param addressPrefix string
param appSubnetName string
param appSubnetPrefix string
param privateEndpointSubnetName string
param privateEndpointSubnetPrefix string
@description('A NAT gateway with one static public IP on the app subnet: every outbound call of the app (to Clearance and the VMS) leaves from that address, for allow-lists.')
param natGatewayEnabled bool = false

// The app's traffic to the internet leaves through the VNet (Flex Consumption VNet integration); a NAT
// gateway on its subnet gives it one fixed source address instead of the platform's shared, changing ones.
resource natPublicIp 'Microsoft.Network/publicIPAddresses@2024-05-01' = if (natGatewayEnabled) {
  name: 'pip-${name}-nat'
  location: location
  tags: tags
  sku: {
    name: 'Standard'
    tier: 'Regional'
  }
  properties: {
    publicIPAddressVersion: 'IPv4'
    publicIPAllocationMethod: 'Static'
    idleTimeoutInMinutes: 4
  }
}

resource natGateway 'Microsoft.Network/natGateways@2024-05-01' = if (natGatewayEnabled) {
  name: 'ng-${name}'
  location: location
  tags: tags
  sku: {
    name: 'Standard'
  }
  properties: {
    idleTimeoutInMinutes: 4
    publicIpAddresses: [
      {
        id: natPublicIp.id
      }
    ]
  }
}

resource appNsg 'Microsoft.Network/networkSecurityGroups@2024-05-01' = {
  name: 'nsg-${name}-app'
  location: location
  tags: tags
  properties: {
    securityRules: []
  }
}

resource endpointsNsg 'Microsoft.Network/networkSecurityGroups@2024-05-01' = {
  name: 'nsg-${name}-endpoints'
  location: location
  tags: tags
  properties: {
    securityRules: []
  }
}

resource vnet 'Microsoft.Network/virtualNetworks@2024-05-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [
        addressPrefix
      ]
    }
    subnets: [
      {
        name: appSubnetName
        properties: {
          addressPrefix: appSubnetPrefix
          networkSecurityGroup: {
            id: appNsg.id
          }
          natGateway: natGatewayEnabled ? {
            id: natGateway.id
          } : null
          delegations: [
            {
              name: 'flex-consumption'
              properties: {
                serviceName: 'Microsoft.App/environments'
              }
            }
          ]
        }
      }
      {
        name: privateEndpointSubnetName
        properties: {
          addressPrefix: privateEndpointSubnetPrefix
          networkSecurityGroup: {
            id: endpointsNsg.id
          }
          privateEndpointNetworkPolicies: 'Disabled'
        }
      }
    ]
  }
}

output id string = vnet.id
output appSubnetId string = '${vnet.id}/subnets/${appSubnetName}'
output privateEndpointSubnetId string = '${vnet.id}/subnets/${privateEndpointSubnetName}'
@description('The app\'s fixed outbound address (natGatewayEnabled), empty without a NAT gateway.')
output natPublicIpAddress string = natGatewayEnabled ? natPublicIp.properties.ipAddress : ''
