// Two alerts: a job landed in the poison queue (it failed maxDequeueCount times), and function runs fail.
// Notifications go to an e-mail action group when an address is given.
param namePrefix string
param location string
param tags object = {}
param logAnalyticsWorkspaceId string
param appInsightsId string
param storageAccountName string
param poisonQueueName string
param alertEmailAddress string = ''

var hasEmail = !empty(alertEmailAddress)

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (hasEmail) {
  name: '${namePrefix}-ag'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: take(replace(namePrefix, '-', ''), 12)
    enabled: true
    emailReceivers: [
      {
        name: 'operator'
        emailAddress: alertEmailAddress
        useCommonAlertSchema: true
      }
    ]
  }
}

// Storage has no per-queue metric, so this reads the queue logs (storage module's diagnostic setting):
// any message written to the -poison queue is a job that failed every retry.
resource poisonQueueAlert 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: '${namePrefix}-poison-queue'
  location: location
  tags: tags
  properties: {
    displayName: '${namePrefix}: a job reached the poison queue'
    description: 'A message was written to ${poisonQueueName}: a Clearance job failed every retry. Read the function logs, then inspect the message.'
    severity: 1
    enabled: true
    scopes: [
      logAnalyticsWorkspaceId
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: 'StorageQueueLogs | where AccountName == "${storageAccountName}" and OperationName == "PutMessage" and Uri contains "/${poisonQueueName}/"'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: false
    actions: {
      actionGroups: hasEmail ? [
        actionGroup.id
      ] : []
    }
  }
}

// Failed function executions (requests with success == false in App Insights).
resource failuresAlert 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: '${namePrefix}-function-failures'
  location: 'global'
  tags: tags
  properties: {
    description: 'Function executions failed in the last 15 minutes.'
    severity: 2
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'failedRequests'
          metricNamespace: 'microsoft.insights/components'
          metricName: 'requests/failed'
          operator: 'GreaterThan'
          threshold: 0
          timeAggregation: 'Count'
        }
      ]
    }
    actions: hasEmail ? [
      {
        actionGroupId: actionGroup.id
      }
    ] : []
  }
}
