//! Writing what was rendered: log events in PutLogEvents batches within AWS's limits, trace
//! documents with PutTraceSegments.

use super::*;

/// PutLogEvents limits: 10,000 events, 1 MiB (each event counts 26 bytes more), 24 h.
const MAX_BATCH_EVENTS: usize = 10_000;
const MAX_BATCH_BYTES: usize = 1_000_000;
const MAX_BATCH_SPAN_MS: i64 = 24 * 3_600_000 - 60_000;
/// Segment documents per PutTraceSegments call.
const TRACE_BATCH: usize = 50;

/// The SDK clients logs and traces are written with, and the streams created so far.
pub(super) struct Writer {
    logs: aws_sdk_cloudwatchlogs::Client,
    xray: aws_sdk_xray::Client,
    created_streams: HashSet<(String, String)>,
}

impl Writer {
    pub(super) fn new(sdk: &aws_config::SdkConfig) -> Writer {
        Writer { logs: aws_sdk_cloudwatchlogs::Client::new(sdk), xray: aws_sdk_xray::Client::new(sdk), created_streams: HashSet::new() }
    }

    pub(super) async fn ensure_group(&self, group: &str) -> anyhow::Result<()> {
        match self.logs.create_log_group().log_group_name(group).send().await {
            Ok(_) => Ok(()),
            Err(e) if code_of(&e) == "ResourceAlreadyExistsException" => Ok(()),
            Err(e) => Err(anyhow::Error::new(e).context(format!("CreateLogGroup {group}"))),
        }
    }

    async fn ensure_stream(&mut self, group: &str, stream: &str) -> anyhow::Result<()> {
        let key = (group.to_string(), stream.to_string());
        if self.created_streams.contains(&key) {
            return Ok(());
        }
        match self.logs.create_log_stream().log_group_name(group).log_stream_name(stream).send().await {
            Ok(_) => {}
            Err(e) if code_of(&e) == "ResourceAlreadyExistsException" => {}
            Err(e) => return Err(anyhow::Error::new(e).context(format!("CreateLogStream {group} {stream}"))),
        }
        self.created_streams.insert(key);
        Ok(())
    }

    /// Writes the executions' log events (per stream, in time order, in batches) and traces.
    pub(super) async fn write(&mut self, execs: &[Execution], d: &Deployment, summary: &mut Summary) -> anyhow::Result<()> {
        use aws_sdk_cloudwatchlogs::types::InputLogEvent;
        use futures::StreamExt as _;
        // (group, stream) → (time, write order, message).
        type Streams = BTreeMap<(String, String), Vec<(i64, usize, String)>>;
        let mut streams: Streams = BTreeMap::new();
        let mut docs = Vec::new();
        let mut seq = 0usize;
        for exec in execs {
            summary.count(exec);
            for l in log_lines(exec) {
                summary.first_event_ms = Some(summary.first_event_ms.map_or(l.time_ms, |t| t.min(l.time_ms)));
                summary.last_event_ms = Some(summary.last_event_ms.map_or(l.time_ms, |t| t.max(l.time_ms)));
                streams.entry((l.group, l.stream)).or_default().push((l.time_ms, seq, l.message));
                seq += 1;
            }
            docs.extend(trace_documents(exec, d));
        }
        let mut batches = Vec::new();
        for ((group, stream), mut events) in streams {
            self.ensure_stream(&group, &stream).await?;
            events.sort();
            let mut batch: Vec<InputLogEvent> = Vec::new();
            let (mut bytes, mut first) = (0usize, 0i64);
            for (t, _, message) in events {
                let size = message.len() + 26;
                if !batch.is_empty() && (batch.len() >= MAX_BATCH_EVENTS || bytes + size > MAX_BATCH_BYTES || t - first > MAX_BATCH_SPAN_MS) {
                    batches.push((group.clone(), stream.clone(), std::mem::take(&mut batch)));
                    bytes = 0;
                }
                if batch.is_empty() {
                    first = t;
                }
                bytes += size;
                batch.push(InputLogEvent::builder().timestamp(t).message(message).build()?);
            }
            if !batch.is_empty() {
                batches.push((group, stream, batch));
            }
        }
        let logs = &self.logs;
        let results: Vec<anyhow::Result<usize>> = futures::stream::iter(batches)
            .map(|(group, stream, batch)| async move {
                let n = batch.len();
                let out = logs
                    .put_log_events()
                    .log_group_name(&group)
                    .log_stream_name(&stream)
                    .set_log_events(Some(batch))
                    .send()
                    .await
                    .map_err(|e| anyhow::Error::new(e).context(format!("PutLogEvents {group} {stream}")))?;
                if let Some(r) = out.rejected_log_events_info() {
                    tracing::warn!(group = %group, stream = %stream, ?r, "Some log events were rejected.");
                }
                Ok(n)
            })
            .buffer_unordered(4)
            .collect()
            .await;
        for r in results {
            summary.log_events += r? as u64;
        }
        for chunk in docs.chunks(TRACE_BATCH) {
            let out = self
                .xray
                .put_trace_segments()
                .set_trace_segment_documents(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| anyhow::Error::new(e).context("PutTraceSegments"))?;
            let unprocessed = out.unprocessed_trace_segments().len();
            if unprocessed > 0 {
                tracing::warn!(unprocessed, "X-Ray did not take some segment documents.");
            }
            summary.unprocessed_trace_documents += unprocessed as u64;
            summary.trace_documents += (chunk.len() - unprocessed) as u64;
        }
        Ok(())
    }
}
