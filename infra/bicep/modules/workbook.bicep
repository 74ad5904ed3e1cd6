// The operator's workbook in Application Insights: jobs by outcome, throughput, failures and the slowest jobs.
// Every query reads what the agent really sends (docs/telemetry.md): the clearance.* metrics (customMetrics),
// the "Job ended" lines and the other log lines with their job dimensions (traces), and the dependency
// spans of Registry, VMS and Blob calls (dependencies).
param namePrefix string
param location string
param tags object = {}
param appInsightsId string

var jobsByOutcome = 'customMetrics | where name == "clearance.jobs.ended" | extend state = tostring(customDimensions.state) | summarize jobs = sum(valueSum) by state, bin(timestamp, 1h) | render columnchart'
var throughput = 'customMetrics | where name in ("clearance.bytes.delivered", "clearance.files.delivered") | summarize total = sum(valueSum) by name, bin(timestamp, 1h) | extend total = iff(name == "clearance.bytes.delivered", total / 1048576.0, total), name = iff(name == "clearance.bytes.delivered", "MiB delivered", "files delivered") | render timechart'
var vmsSpeed = 'customMetrics | where name == "clearance.vms.throughput" | extend vms = tostring(customDimensions.vms) | summarize MBps = sum(valueSum) / sum(valueCount) / 1e6 by vms, bin(timestamp, 1h) | render timechart'
var failures = 'traces | where message startswith "Job ended: state=" | extend state = extract(@"^Job ended: state=(\\w+) ", 1, message) | where state in ("Failed", "Refused", "Released", "Abandoned", "Lost") | project timestamp, state, job_id = tostring(customDimensions.job_id), job_type = tostring(customDimensions.job_type), vms = tostring(customDimensions.vms), message | order by timestamp desc'
var failingCalls = 'dependencies | where success == false | extend service = tostring(customDimensions["clearance.service"]), vms = tostring(customDimensions.vms) | summarize calls = count() by service, operation = name, resultCode, vms | order by calls desc'
var throttling = 'customMetrics | where name in ("clearance.http.throttled", "clearance.http.server_errors") | extend service = tostring(customDimensions.service) | summarize answers = sum(valueSum) by name, service, bin(timestamp, 1h) | render columnchart'
var slowest = 'traces | where isnotempty(customDimensions.job_id) | extend job_id = tostring(customDimensions.job_id), job_type = tostring(customDimensions.job_type) | summarize started = min(timestamp), ended = maxif(timestamp, message startswith "Job ended: state="), outcome = take_anyif(extract(@"^Job ended: state=(\\w+) ", 1, message), message startswith "Job ended: state=") by job_id, job_type | where isnotempty(outcome) | extend minutes = round((ended - started) / 1m, 1) | top 20 by minutes desc'
var queueAge = 'customMetrics | where name in ("clearance.queue.oldest_message_age", "clearance.queue.message_age") | summarize seconds = max(valueMax) by name, bin(timestamp, 15m) | render timechart'

var timeRange = {
  durationMs: 86400000
}
// One text header, then one chart or table per query (workbook item types 1 and 3).
var content = {
  version: 'Notebook/1.0'
  items: [
    {
      type: 1
      content: {
        json: '## Clearance agent\nJobs by outcome, throughput, failures and the slowest jobs (last 24 hours). Names and units: docs/telemetry.md.'
      }
    }
    {
      type: 3
      content: {
        version: 'KqlItem/1.0'
        title: 'Jobs ended, by state (per hour)'
        query: jobsByOutcome
        size: 0
        timeContext: timeRange
        queryType: 0
        resourceType: 'microsoft.insights/components'
      }
    }
    {
      type: 3
      content: {
        version: 'KqlItem/1.0'
        title: 'Files and MiB delivered (per hour)'
        query: throughput
        size: 0
        timeContext: timeRange
        queryType: 0
        resourceType: 'microsoft.insights/components'
      }
    }
    {
      type: 3
      content: {
        version: 'KqlItem/1.0'
        title: 'VMS download speed by vendor (MB/s, per file)'
        query: vmsSpeed
        size: 0
        timeContext: timeRange
        queryType: 0
        resourceType: 'microsoft.insights/components'
      }
    }
    {
      type: 3
      content: {
        version: 'KqlItem/1.0'
        title: 'Jobs that ended Failed, Released, Abandoned or Lost'
        query: failures
        size: 1
        timeContext: timeRange
        queryType: 0
        resourceType: 'microsoft.insights/components'
      }
    }
    {
      type: 3
      content: {
        version: 'KqlItem/1.0'
        title: 'Failing calls by service (Registry, VMS, Blob)'
        query: failingCalls
        size: 1
        timeContext: timeRange
        queryType: 0
        resourceType: 'microsoft.insights/components'
      }
    }
    {
      type: 3
      content: {
        version: 'KqlItem/1.0'
        title: '429 and 5xx answers by service (per hour)'
        query: throttling
        size: 0
        timeContext: timeRange
        queryType: 0
        resourceType: 'microsoft.insights/components'
      }
    }
    {
      type: 3
      content: {
        version: 'KqlItem/1.0'
        title: 'Slowest jobs (first log line to "Job ended")'
        query: slowest
        size: 1
        timeContext: timeRange
        queryType: 0
        resourceType: 'microsoft.insights/components'
      }
    }
    {
      type: 3
      content: {
        version: 'KqlItem/1.0'
        title: 'Jobs queue: oldest waiting message and message age at start (seconds)'
        query: queueAge
        size: 0
        timeContext: timeRange
        queryType: 0
        resourceType: 'microsoft.insights/components'
      }
    }
  ]
  fallbackResourceIds: [
    appInsightsId
  ]
}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(resourceGroup().id, namePrefix, 'clearance-agent-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: '${namePrefix}: Clearance agent'
    category: 'workbook'
    sourceId: appInsightsId
    serializedData: string(content)
  }
}

output workbookId string = workbook.id
