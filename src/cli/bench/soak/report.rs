//! What the soak prints: one row per window (calls, p50 and p99 latency, resident memory, open
//! descriptors, sockets, client connections and database connections), the calls per operation,
//! and the verdicts of issues 21 and 14, each `met` or `MISSED`.

use std::collections::BTreeMap;

use super::client::Record;
use super::server::{Handles, Heap, Resident};

/// One window of the run, as sampled at its end.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Seconds from the start of the load to the sample.
    pub at: f64,
    pub loaded: bool,
    pub resident: Resident,
    /// The server's heap, when its `/metrics` gives it.
    pub heap: Option<Heap>,
    pub handles: Handles,
    pub calls: usize,
    pub errors: usize,
    pub p50: f64,
    pub p99: f64,
    pub rate: f64,
}

/// The `q` quantile (0 to 1) of `values`, nearest rank; 0 when empty.
pub fn quantile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

pub fn header() -> String {
    format!(
        "| {:>6} | {:<5} | {:>6} | {:>7} | {:>6} | {:>8} | {:>8} | {:>8} | {:>7} | {:>8} | {:>9} | {:>8} | {:>9} | {:>8} | {:>4} | {:>7} | {:>7} | {:>3} |",
        "s",
        "phase",
        "calls",
        "calls/s",
        "errors",
        "p50 ms",
        "p99 ms",
        "VmRSS MB",
        "anon MB",
        "VmHWM MB",
        "sqlite MB",
        "pages MB",
        "in use MB",
        "held MB",
        "fds",
        "sockets",
        "clients",
        "db"
    )
}

pub fn row(window: &Window) -> String {
    let mb = |figure: fn(&Heap) -> f64| {
        window
            .heap
            .as_ref()
            .map_or_else(|| "-".to_owned(), |heap| format!("{:.1}", figure(heap)))
    };
    format!(
        "| {:>6.0} | {:<5} | {:>6} | {:>7.1} | {:>6} | {:>8.1} | {:>8.1} | {:>8.1} | {:>7.1} | {:>8.1} | {:>9} | {:>8} | {:>9} | {:>8} | {:>4} | {:>7} | {:>7} | {:>3} |",
        window.at,
        if window.loaded { "load" } else { "rest" },
        window.calls,
        window.rate,
        window.errors,
        window.p50,
        window.p99,
        window.resident.rss,
        window.resident.anon,
        window.resident.hwm,
        mb(|heap| heap.sqlite),
        mb(|heap| heap.page_cache),
        mb(|heap| heap.malloc_in_use),
        mb(|heap| heap.malloc_held),
        window.handles.fds,
        window.handles.sockets,
        window.handles.clients,
        window.handles.database
    )
}

/// The server's heap figures in one line, for the moments outside the windows.
pub fn heap(heap: Option<Heap>) -> String {
    heap.map_or_else(
        || "heap: not given by this server's /metrics".to_owned(),
        |heap| {
            format!(
                "heap: SQLite {:.1} MB (page caches {:.1}), malloc in use {:.1} MB of {:.1} held",
                heap.sqlite, heap.page_cache, heap.malloc_in_use, heap.malloc_held
            )
        },
    )
}

/// Calls, errors, p50 and p99 per operation.
pub fn operations(records: &[Record]) -> String {
    let mut by_label: BTreeMap<&str, (Vec<f64>, usize)> = BTreeMap::new();
    for record in records {
        let entry = by_label.entry(record.label).or_default();
        entry.0.push(record.millis);
        entry.1 += usize::from(record.failed);
    }
    let mut text = format!(
        "| {:<22} | {:>7} | {:>6} | {:>8} | {:>8} |\n",
        "operation", "calls", "errors", "p50 ms", "p99 ms"
    );
    for (label, (mut millis, errors)) in by_label {
        let calls = millis.len();
        let (p50, p99) = (quantile(&mut millis, 0.5), quantile(&mut millis, 0.99));
        text += &format!("| {label:<22} | {calls:>7} | {errors:>6} | {p50:>8.1} | {p99:>8.1} |\n");
    }
    text
}

/// The bounds a run is judged by.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Peak resident memory (VmHWM), MB.
    pub max_mb: f64,
    /// Resident growth after the first span, percent.
    pub growth_pct: f64,
    /// p99 of the last span over p99 of the first.
    pub p99_ratio: f64,
    /// Resident memory after the rest over the pre-load figure, percent above.
    pub recovery_pct: f64,
    /// The most database handles the server's pools may hold ([`super::server::database_capacity`]):
    /// connections opened up to it are the pool widening, not a leak.
    pub database_capacity: usize,
}

/// Descriptors (other than the database's) the server may hold more at rest after the load than
/// before it: a log file rotated, a lazily opened file.
const DESCRIPTOR_SLACK: usize = 4;
/// Database connections the load may hold more than in its first span, when that is more than
/// the pools may open.
const CONNECTION_SLACK: usize = 2;
/// The fewest calls a span must hold for its p99 to be compared: in a mix where 2 calls in 100
/// are packs taking 10 times longer than the rest, fewer calls make the p99 a matter of which
/// calls happened to land in the span.
const P99_CALLS: usize = 1000;

/// What the run is judged on.
pub struct Run<'a> {
    pub records: &'a [Record],
    pub windows: &'a [Window],
    pub load_secs: f64,
    /// The first and last span compared (5 minutes, a fifth of shorter runs).
    pub span: f64,
    pub before: (Resident, Handles),
    pub after: (Resident, Handles),
    pub peak_hwm: f64,
}

/// The verdicts, each a line and whether it was met.
pub fn verdicts(run: &Run, limits: &Limits) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let errors = run.records.iter().filter(|r| r.failed).count();
    out.push((
        format!("errors: {errors} of {} calls = 0", run.records.len()),
        errors == 0,
    ));

    let span = run.span;
    let millis_of = |keep: &dyn Fn(&Record) -> bool| -> Vec<f64> {
        run.records
            .iter()
            .filter(|r| keep(r))
            .map(|r| r.millis)
            .collect()
    };
    let mut first = millis_of(&|r| r.at < span);
    let mut last = millis_of(&|r| r.at >= run.load_secs - span && r.at < run.load_secs);
    if first.len().min(last.len()) < P99_CALLS {
        // A few hundred calls have no p99 of their own: it is their slowest call, and whether
        // that is one of the mix's rare packs is chance.
        out.push((
            format!(
                "p99 not judged: the first and last {span:.0} s hold {} and {} calls, fewer than the {P99_CALLS} it needs",
                first.len(),
                last.len()
            ),
            true,
        ));
    } else {
        let (first, last) = (quantile(&mut first, 0.99), quantile(&mut last, 0.99));
        out.push((
            format!(
                "p99 of the last {span:.0} s {last:.1} ms <= {}x the first {span:.0} s ({first:.1} ms)",
                limits.p99_ratio
            ),
            last <= limits.p99_ratio * first,
        ));
    }

    let loaded: Vec<&Window> = run.windows.iter().filter(|w| w.loaded).collect();
    let max_rss = |windows: &mut dyn Iterator<Item = &&Window>| {
        windows.map(|w| w.resident.rss).fold(0.0, f64::max)
    };
    let early = max_rss(&mut loaded.iter().filter(|w| w.at <= span + 0.5));
    let later = max_rss(&mut loaded.iter().filter(|w| w.at > span + 0.5));
    let growth = if early > 0.0 {
        (later / early - 1.0) * 100.0
    } else {
        0.0
    };
    out.push((
        format!(
            "resident growth after the first {span:.0} s: peak {later:.1} MB against {early:.1} MB ({growth:+.1}%) < {}%",
            limits.growth_pct
        ),
        growth < limits.growth_pct,
    ));

    out.push((
        format!(
            "peak resident (VmHWM) {:.1} MB <= {} MB",
            run.peak_hwm, limits.max_mb
        ),
        run.peak_hwm <= limits.max_mb,
    ));
    let (before, after) = (run.before, run.after);
    let change = (after.0.rss / before.0.rss - 1.0) * 100.0;
    out.push((
        format!(
            "after the rest VmRSS {:.1} MB within {}% of pre-load {:.1} MB ({change:+.1}%)",
            after.0.rss, limits.recovery_pct, before.0.rss
        ),
        change <= limits.recovery_pct,
    ));

    let other = |handles: &Handles| handles.fds.saturating_sub(handles.database);
    out.push((
        format!(
            "descriptors at rest other than the database's: {} after, {} before (+{DESCRIPTOR_SLACK} allowed); client connections {} after, {} before",
            other(&after.1),
            other(&before.1),
            after.1.clients,
            before.1.clients
        ),
        other(&after.1) <= other(&before.1) + DESCRIPTOR_SLACK && after.1.clients <= before.1.clients,
    ));

    let early_db = loaded
        .iter()
        .filter(|w| w.at <= span + 0.5)
        .map(|w| w.handles.database)
        .chain([before.1.database])
        .max()
        .unwrap_or(0);
    let later_db = loaded
        .iter()
        .filter(|w| w.at > span + 0.5)
        .map(|w| w.handles.database)
        .chain([after.1.database])
        .max()
        .unwrap_or(0);
    // The pools open connections as concurrent calls need them, up to their maximum, and close
    // them when idle: growth up to that maximum is the pool widening; beyond it, a leak.
    let allowed = (early_db + CONNECTION_SLACK).max(limits.database_capacity);
    out.push((
        format!(
            "database connections after the first {span:.0} s: at most {later_db}, against {early_db} before it, within {allowed} (the pools may hold {}; +{CONNECTION_SLACK} over the first span when that is more)",
            limits.database_capacity
        ),
        later_db <= allowed,
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(database_capacity: usize) -> Limits {
        Limits {
            max_mb: 150.0,
            growth_pct: 10.0,
            p99_ratio: 1.5,
            recovery_pct: 20.0,
            database_capacity,
        }
    }

    /// The database verdict of a 100 s load whose windows (one every 10 s, the first span 20 s)
    /// hold `early` database handles in the first span and `later` after it.
    fn database_verdict(early: usize, later: usize, capacity: usize) -> (String, bool) {
        let windows: Vec<Window> = (1..=10)
            .map(|n| {
                let database = if n <= 2 { early } else { later };
                Window {
                    at: 10.0 * f64::from(n),
                    loaded: true,
                    resident: Resident::default(),
                    heap: None,
                    handles: Handles {
                        database,
                        ..Handles::default()
                    },
                    calls: 100,
                    errors: 0,
                    p50: 1.0,
                    p99: 2.0,
                    rate: 10.0,
                }
            })
            .collect();
        let at_rest = Handles {
            database: early.min(later),
            ..Handles::default()
        };
        let run = Run {
            records: &[],
            windows: &windows,
            load_secs: 100.0,
            span: 20.0,
            before: (Resident::default(), at_rest),
            after: (Resident::default(), at_rest),
            peak_hwm: 0.0,
        };
        verdicts(&run, &limits(capacity))
            .into_iter()
            .find(|(line, _)| line.starts_with("database connections"))
            .expect("a database verdict")
    }

    #[test]
    fn a_pool_widening_up_to_its_maximum_after_the_first_span_is_not_a_leak() {
        // The SQLite soak of the last run: 12 handles at first, the full 19 from minute 10.
        let (line, met) = database_verdict(12, 19, 19);
        assert!(met, "{line}");
        let (line, met) = database_verdict(5, 16, 16);
        assert!(met, "Postgres widening to its 16: {line}");
    }

    #[test]
    fn database_handles_beyond_what_the_pools_may_hold_are_a_leak() {
        let (line, met) = database_verdict(12, 20, 19);
        assert!(!met, "one past the pools' maximum: {line}");
        let (line, met) = database_verdict(19, 22, 19);
        assert!(!met, "three past a full first span: {line}");
    }

    #[test]
    fn past_a_first_span_above_the_pools_maximum_only_the_slack_is_allowed() {
        let (line, met) = database_verdict(20, 22, 19);
        assert!(met, "{line}");
        let (line, met) = database_verdict(20, 23, 19);
        assert!(!met, "{line}");
    }

    /// `per_span` calls in each of the first and last 20 s of a 100 s load, the last span's
    /// `slower` times as slow.
    fn p99_verdict(per_span: usize, slower: f64) -> (String, bool) {
        let mut records = Vec::new();
        for (start, scale) in [(0.0, 1.0), (80.0, slower)] {
            for n in 0..per_span {
                records.push(Record {
                    at: start + 20.0 * n as f64 / per_span as f64,
                    millis: scale * (1.0 + (n % 100) as f64),
                    label: "search text",
                    failed: false,
                });
            }
        }
        let run = Run {
            records: &records,
            windows: &[],
            load_secs: 100.0,
            span: 20.0,
            before: (Resident::default(), Handles::default()),
            after: (Resident::default(), Handles::default()),
            peak_hwm: 0.0,
        };
        verdicts(&run, &limits(19))
            .into_iter()
            .find(|(line, _)| line.starts_with("p99"))
            .expect("a p99 verdict")
    }

    #[test]
    fn spans_with_enough_calls_are_judged_on_their_p99() {
        let (line, met) = p99_verdict(P99_CALLS, 1.0);
        assert!(met && line.starts_with("p99 of the last"), "{line}");
        let (line, met) = p99_verdict(P99_CALLS, 2.0);
        assert!(!met, "twice as slow misses 1.5x: {line}");
    }

    #[test]
    fn spans_with_fewer_calls_than_a_p99_needs_are_not_judged() {
        let (line, met) = p99_verdict(P99_CALLS - 1, 2.0);
        assert!(met && line.starts_with("p99 not judged"), "{line}");
    }
}
