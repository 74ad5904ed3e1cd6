// Alerts on what an operator must act on, never on the failures the agent makes on purpose (a transient
// failure raises so that the host retries the message, which counts as a failed run):
// - a message reached the poison queue (the host gave up on it);
// - a job ended Failed, Refused, Released or Abandoned (Clearance got nothing, or the job went back unfinished);
// - the agent paused itself: its own configuration (usually the VMS credential) is refused, so it locks nothing;
// - a job ended Lost (another agent or the Registry took the lock away mid-run);
// - the timer functions keep failing (the agent is not polling or not renewing: configuration, Clearance down);
// - no poll at all for 10 minutes (the app never started, or its timer stopped): the absence of the
//   clearance.polls metric, which poll_jobs records on every run (docs/telemetry.md);
// - the oldest visible message of the jobs queue is older than a threshold (a backlog nobody works off):
//   the clearance.queue.oldest_message_age metric, measured by every poll;
// - a Key Vault secret (a vendor credential) is near its expiry or expired: Key Vault's own events, for the
//   secrets stored with an expiry date (`az keyvault secret set --expires`), when an e-mail address is given.
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
@description('Optional: the Key Vault holding the vendor credentials; its secrets near expiry raise an alert (needs alertEmailAddress).')
param keyVaultName string = ''
@description('Seconds the oldest visible message of the jobs queue may wait before the backlog alert fires.')
param queueBacklogSeconds int = 900

var hasEmail = !empty(alertEmailAddress)
var actionGroups = hasEmail ? [
  actionGroup.id
] : []
// The outcome line: "Job ended: state=<State> job_id=<id> ...". State and JobId become alert dimensions.
var jobEnded = 'traces | where message startswith "Job ended: state='
var jobFields = ' | extend State = extract(@"^Job ended: state=(\\w+) ", 1, message), JobId = extract(@"job_id=(\\S+)", 1, message) | project timestamp, State, JobId, message'
var notDeliveredQuery = '${jobEnded}Failed " or message startswith "Job ended: state=Refused " or message startswith "Job ended: state=Released " or message startswith "Job ended: state=Abandoned "${jobFields}'
// The pause line: "Agent paused: no new jobs are locked until <time>; cause: <cause>" (shared/agent/pause.py).
var agentPausedQuery = 'traces | where message startswith "Agent paused: " | project timestamp, message'
var lockLostQuery = '${jobEnded}Lost "${jobFields}'
var poisonQuery = 'StorageQueueLogs | where AccountName == "${storageAccountName}" and OperationName == "PutMessage" and Uri contains "/${poisonQueueName}/"'
var timersFailingQuery = 'requests | where success == false and name in ("poll_jobs", "renew_locks") | project timestamp, name, resultCode'
// Metrics the agent sends (shared/telemetry/metrics.py) land in customMetrics, one row per export interval.
var pollsQuery = 'customMetrics | where name == "clearance.polls" | project timestamp, value = valueSum'
var backlogQuery = 'customMetrics | where name == "clearance.queue.oldest_message_age" | project timestamp, oldest_seconds = valueMax'

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


// The agent's own configuration is refused: it stopped locking jobs until the cause is fixed (pause.py).
resource agentPausedAlert 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: '${namePrefix}-agent-paused'
  location: location
  tags: tags
  properties: {
    displayName: '${namePrefix}: the agent paused itself'
    description: 'The agent locks no new job: its own configuration was refused (usually the VMS credential: a new EEN consent, a rotated key). The log line names the cause; it checks again every AGENT_PAUSE_SECONDS and resumes by itself once the cause is fixed.'
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
          query: agentPausedQuery
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

// No poll in 10 minutes: the app did not start, its timer stopped firing, or every run dies before polling.
resource noPollAlert 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: '${namePrefix}-no-poll'
  location: location
  tags: tags
  properties: {
    displayName: '${namePrefix}: the agent has not polled for 10 minutes'
    description: 'poll_jobs records clearance.polls on every run; none arrived for 10 minutes. Check that the function app is running, that its deployment succeeded, and the host\'s start-up logs (a settings error names each bad setting).'
    severity: 1
    enabled: true
    skipQueryValidation: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT10M'
    criteria: {
      allOf: [
        {
          query: pollsQuery
          timeAggregation: 'Count'
          operator: 'LessThan'
          threshold: 1
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
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

// A backlog: the oldest visible message of the jobs queue waited longer than queueBacklogSeconds.
resource queueBacklogAlert 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: '${namePrefix}-queue-backlog'
  location: location
  tags: tags
  properties: {
    displayName: '${namePrefix}: the jobs queue has a message older than ${queueBacklogSeconds} s'
    description: 'The oldest visible message of the jobs queue has waited longer than the threshold: process_job is not keeping up or not running. Check process_job failures, the scale limit (maximumInstanceCount) and `python -m shared.ops status`.'
    severity: 2
    enabled: true
    skipQueryValidation: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: backlogQuery
          timeAggregation: 'Maximum'
          metricMeasureColumn: 'oldest_seconds'
          operator: 'GreaterThan'
          threshold: queueBacklogSeconds
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
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

// Vendor credentials near expiry: Key Vault publishes SecretNearExpiry (30 days before) and SecretExpired for
// secrets that carry an expiry date; Event Grid turns them into Azure Monitor alerts (MonitorAlert destinations
// need an action group and the CloudEvents schema).
var watchExpiry = hasEmail && !empty(keyVaultName)

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = if (watchExpiry) {
  name: keyVaultName
}

resource vaultEvents 'Microsoft.EventGrid/systemTopics@2025-02-15' = if (watchExpiry) {
  name: '${namePrefix}-kv-events'
  location: location
  tags: tags
  properties: {
    source: vault.id
    topicType: 'Microsoft.KeyVault.vaults'
  }
}

resource secretExpiryAlert 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = if (watchExpiry) {
  parent: vaultEvents
  name: 'secret-expiry'
  properties: {
    eventDeliverySchema: 'CloudEventSchemaV1_0'
    filter: {
      includedEventTypes: [
        'Microsoft.KeyVault.SecretNearExpiry'
        'Microsoft.KeyVault.SecretExpired'
      ]
    }
    destination: {
      endpointType: 'MonitorAlert'
      properties: {
        severity: 'Sev2'
        description: 'A secret in ${keyVaultName} (a vendor credential or the Clearance connection file) is near its expiry or expired. Renew it with the vendor, then store the new value with its new expiry (docs/deployment.md, Rotating a credential).'
        actionGroups: actionGroups
      }
    }
  }
}
