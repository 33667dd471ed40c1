//! Prometheus metrics of nfsd: calls, errors and latency per procedure, bytes read and written,
//! connections, refused connections, bad records and volumes. Per-procedure handles are created
//! once at start, so counting a call takes no lock and no allocation.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::rpc::Events;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProcLabel {
    procedure: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabel {
    procedure: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

/// Handles for one procedure.
#[derive(Clone)]
pub struct ProcMetrics {
    pub calls: Counter,
    pub latency: Histogram,
    name: &'static str,
}

/// All metrics of one nfsd.
pub struct Metrics {
    registry: Registry,
    procs: std::collections::HashMap<&'static str, ProcMetrics>,
    errors: Family<ErrorLabel, Counter>,
    pub read_bytes: Counter,
    pub write_bytes: Counter,
    pub connections: Gauge,
    refused: Family<ReasonLabel, Counter>,
    bad_records: Family<ReasonLabel, Counter>,
    pub volumes: Gauge,
    /// Directory flushes run (`fsync` of a directory after namespace changes).
    pub dir_flushes: Counter,
}

/// Every procedure name we count (NFSv3 and MOUNT).
pub const PROCEDURES: &[&str] = &[
    "NULL",
    "GETATTR",
    "SETATTR",
    "LOOKUP",
    "ACCESS",
    "READLINK",
    "READ",
    "WRITE",
    "CREATE",
    "MKDIR",
    "SYMLINK",
    "MKNOD",
    "REMOVE",
    "RMDIR",
    "RENAME",
    "LINK",
    "READDIR",
    "READDIRPLUS",
    "FSSTAT",
    "FSINFO",
    "PATHCONF",
    "COMMIT",
    "MOUNT_NULL",
    "MOUNT_MNT",
    "MOUNT_DUMP",
    "MOUNT_UMNT",
    "MOUNT_UMNTALL",
    "MOUNT_EXPORT",
    "UNKNOWN",
];

impl Metrics {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("swarmhub_nfsd");
        let calls = Family::<ProcLabel, Counter>::default();
        let latency = Family::<ProcLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_025, 2.0, 18))
        });
        let errors = Family::<ErrorLabel, Counter>::default();
        let refused = Family::<ReasonLabel, Counter>::default();
        let bad_records = Family::<ReasonLabel, Counter>::default();
        let read_bytes = Counter::default();
        let write_bytes = Counter::default();
        let connections = Gauge::default();
        let volumes = Gauge::default();
        let dir_flushes = Counter::default();
        registry.register("rpc_calls", "RPC calls by procedure", calls.clone());
        registry.register(
            "rpc_errors",
            "Calls answered with an error status, by procedure and status",
            errors.clone(),
        );
        registry.register(
            "rpc_duration_seconds",
            "Time from a call's arrival to its reply, by procedure",
            latency.clone(),
        );
        registry.register("read_bytes", "Bytes returned by READ", read_bytes.clone());
        registry.register("write_bytes", "Bytes written by WRITE", write_bytes.clone());
        registry.register(
            "connections",
            "Open client connections",
            connections.clone(),
        );
        registry.register(
            "connections_refused",
            "Connections closed on accept, by reason",
            refused.clone(),
        );
        registry.register(
            "bad_records",
            "Records that ended a connection or were refused, by reason",
            bad_records.clone(),
        );
        registry.register("volumes", "Volumes in the registry", volumes.clone());
        registry.register(
            "directory_flushes",
            "fsync calls of directories after namespace changes",
            dir_flushes.clone(),
        );
        let procs = PROCEDURES
            .iter()
            .map(|&name| {
                let label = ProcLabel {
                    procedure: name.to_string(),
                };
                let m = ProcMetrics {
                    calls: calls.get_or_create(&label).clone(),
                    latency: latency.get_or_create(&label).clone(),
                    name,
                };
                (name, m)
            })
            .collect();
        Arc::new(Self {
            registry,
            procs,
            errors,
            read_bytes,
            write_bytes,
            connections,
            refused,
            bad_records,
            volumes,
            dir_flushes,
        })
    }

    /// Handles of one procedure (unknown names count as `UNKNOWN`).
    pub fn procedure(&self, name: &str) -> &ProcMetrics {
        self.procs
            .get(name)
            .unwrap_or_else(|| &self.procs["UNKNOWN"])
    }

    /// Records one finished call.
    pub fn observe(&self, p: &ProcMetrics, elapsed: Duration, error: Option<&str>) {
        p.calls.inc();
        p.latency.observe(elapsed.as_secs_f64());
        if let Some(status) = error {
            self.errors
                .get_or_create(&ErrorLabel {
                    procedure: p.name.to_string(),
                    status: status.to_string(),
                })
                .inc();
        }
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

impl Events for Metrics {
    fn connection_opened(&self) {
        self.connections.inc();
    }
    fn connection_closed(&self) {
        self.connections.dec();
    }
    fn connection_refused(&self, why: &'static str) {
        self.refused
            .get_or_create(&ReasonLabel {
                reason: why.to_string(),
            })
            .inc();
    }
    fn bad_record(&self, why: &'static str) {
        self.bad_records
            .get_or_create(&ReasonLabel {
                reason: why.to_string(),
            })
            .inc();
    }
}
