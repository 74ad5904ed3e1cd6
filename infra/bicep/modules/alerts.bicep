// Alerts on what an operator must act on, never on the failures the agent makes on purpose (a transient
// failure raises so that the host retries the message, which counts as a failed run):
// - a message reached the poison queue (the host gave up on it);
// - a job ended Failed, Released or Abandoned (Clearance got nothing, or the job went back unfinished);
// - a job ended Lost (another agent or the Registry took the lock away mid-run);
// - the timer functions keep failing (the agent is not polling or not renewing: configuration, Clearance down).
// The job alerts read the one line the agent logs per job outcome, which starts exactly with
// "Job ended: state=<State> " followed by "job_id=<id>" (docs/deployment.md, Alerts).
// Log alerts skip query validation: a new workspace has no StorageQueueLogs/traces table until data arrives,
// and validating a query against a missing table fails the deployment.
param namePrefix string
param location string
param tags object = {}
param logAnalyticsWorkspaceId string
param appInsightsId string
param storageAccountName string
param poisonQueueName string
param alertEmailAddress string = ''

var hasEmail = !empty(alertEmailAddress)
var actionGroups = hasEmail ? [
  actionGroup.id
] : []
// The outcome line: "Job ended: state=<State> job_id=<id> ...". State and JobId become alert dimensions.
var jobEnded = 'traces | where message startswith "Job ended: state='
var jobFields = ' | extend State = extract(@"^Job ended: state=(\\w+) ", 1, message), JobId = extract(@"job_id=(\\S+)", 1, message) | project timestamp, State, JobId, message'
var notDeliveredQuery = '${jobEnded}Failed " or message startswith "Job ended: state=Released " or message startswith "Job ended: state=Abandoned "${jobFields}'
var lockLostQuery = '${jobEnded}Lost "${jobFields}'
var poisonQuery = 'StorageQueueLogs | where AccountName == "${storageAccountName}" and OperationName == "PutMessage" and Uri contains "/${poisonQueueName}/"'
var timersFailingQuery = 'requests | where success == false and name in ("poll_jobs", "renew_locks") | project timestamp, name, resultCode'

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

// Storage has no per-queue metric, so this reads the queue logs (storage module's diagnostic setting).
resource poisonQueueAlert 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: '${namePrefix}-poison-queue'
  location: location
  tags: tags
  properties: {
    displayName: '${namePrefix}: a message reached the poison queue'
    description: 'A message was written to ${poisonQueueName}: the Functions host gave up on it. Peek at the message, read the function logs for its job, and fix the cause.'
    severity: 1
    enabled: true
    skipQueryValidation: true
    scopes: [
      logAnalyticsWorkspaceId
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: poisonQuery
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
      actionGroups: actionGroups
    }
  }
}

// Jobs that ended without delivering: Failed (nothing could be delivered), Released (retries exhausted or a
// configuration problem: the job went back to Clearance) or Abandoned (older than the maximum job age).
resource jobsNotDeliveredAlert 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: '${namePrefix}-jobs-not-delivered'
  location: location
  tags: tags
  properties: {
    displayName: '${namePrefix}: a job ended Failed, Released or Abandoned'
    description: 'A Clearance job ended without delivering. The alert names the state and job id; the job\'s log lines (customDimensions.job_id) and its lock record say why.'
    severity: 2
    enabled: true
    skipQueryValidation: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    criteria: {
      allOf: [
        {
          query: notDeliveredQuery
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          dimensions: [
            {
              name: 'State'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: false
    actions: {
      actionGroups: actionGroups
    }
  }
}

// Lock losses: the agent stopped a job because its lock was gone (renewal refused, or a 409 mid-run).
resource lockLostAlert 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: '${namePrefix}-lock-lost'
  location: location
  tags: tags
  properties: {
    displayName: '${namePrefix}: a job lost its lock'
    description: 'A job ended Lost: its Registry lock expired or was taken over, so the agent stopped without completing. Check that renew_locks runs on schedule and that no other agent uses the same integration.'
    severity: 2
    enabled: true
    skipQueryValidation: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    criteria: {
      allOf: [
        {
          query: lockLostQuery
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
      actionGroups: actionGroups
    }
  }
}

// Timer runs are never retried on purpose: poll_jobs or renew_locks failing in three consecutive 5-minute
// windows means the agent is not taking or keeping jobs (bad settings, unresolved secrets, Clearance down).
resource timersFailingAlert 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: '${namePrefix}-timers-failing'
  location: location
  tags: tags
  properties: {
    displayName: '${namePrefix}: poll_jobs or renew_locks keeps failing'
    description: 'The timer functions failed in every 5-minute window for 15 minutes: the agent is not polling or not renewing locks. Read the exceptions of poll_jobs / renew_locks (a settings error names each bad setting).'
    severity: 1
    enabled: true
    skipQueryValidation: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    criteria: {
      allOf: [
        {
          query: timersFailingQuery
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 3
            minFailingPeriodsToAlert: 3
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: actionGroups
    }
  }
}
