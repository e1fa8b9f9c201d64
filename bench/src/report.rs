//! The results: one [`Measurement`] per scenario and number in flight (the
//! medians over its kept pairs), the memory and raw-store figures, printed
//! as a readable table followed by one `BENCH` line per measurement.

use std::fmt::Write as _;

use crate::store::RawRate;

/// One side of one pair.
#[derive(Clone, Debug)]
pub struct SideResult {
    /// What was measured ("baseline", "sessiond", "spawn", …).
    pub label: String,
    /// Operations per second.
    pub rps: f64,
    /// Median latency, µs.
    pub p50_us: f64,
    /// 99th-percentile latency, µs.
    pub p99_us: f64,
    /// The server's (or spawn loop's) CPU time per operation, µs.
    pub cpu_us_per_op: f64,
    /// The server's context switches per operation (all its threads; not
    /// measured for the spawn loop).
    pub switches_per_op: f64,
    /// The server's CPU use, in cores.
    pub server_cores: f64,
    /// The load generator's CPU use, in cores.
    pub generator_cores: f64,
    /// Everything else on the machine, in cores (the database server
    /// excluded when it is known).
    pub other_cores: f64,
    /// The database server's CPU use, in cores, when it is known (a `pg_*`
    /// scenario's throwaway PostgreSQL); else 0.
    pub database_cores: f64,
}

/// One pair: the sides in their canonical order (baseline first).
#[derive(Clone, Debug)]
pub struct Pair {
    /// The sides.
    pub sides: Vec<SideResult>,
    /// Whether it passed the load rule.
    pub kept: bool,
}

impl Pair {
    /// The highest other load of its sides, in cores.
    pub fn other_cores(&self) -> f64 {
        self.sides.iter().map(|s| s.other_cores).fold(0.0, f64::max)
    }
}

/// A figure that a ratio is stated in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Figure {
    /// Subject throughput ÷ baseline throughput.
    Throughput,
    /// Subject p50 ÷ baseline p50.
    P50,
    /// Subject p99 ÷ baseline p99.
    P99,
    /// Subject p50 ÷ the reference side's p50 (side 3).
    P50OverReference,
    /// The reference side's throughput ÷ baseline throughput.
    ReferenceThroughput,
    /// Subject throughput ÷ the reference side's throughput.
    ThroughputOverReference,
}

impl Figure {
    /// The figure of one pair.
    pub fn of(self, pair: &Pair) -> f64 {
        let base = &pair.sides[0];
        let subject = &pair.sides[1];
        match self {
            Self::Throughput => subject.rps / base.rps,
            Self::P50 => subject.p50_us / base.p50_us,
            Self::P99 => subject.p99_us / base.p99_us,
            Self::P50OverReference => subject.p50_us / pair.sides[2].p50_us,
            Self::ReferenceThroughput => pair.sides[2].rps / base.rps,
            Self::ThroughputOverReference => subject.rps / pair.sides[2].rps,
        }
    }

    /// How the figure reads in the table.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Throughput => "throughput",
            Self::P50 => "p50",
            Self::P99 => "p99",
            Self::P50OverReference => "p50/ref p50",
            Self::ReferenceThroughput => "ref throughput",
            Self::ThroughputOverReference => "throughput/ref throughput",
        }
    }
}

/// A bound on a figure.
#[derive(Clone, Copy, Debug)]
pub enum Bound {
    /// The figure must be at least this.
    AtLeast(f64),
    /// The figure must be at most this.
    AtMost(f64),
}

impl Bound {
    /// Whether `value` is within the bound.
    pub fn met(self, value: f64) -> bool {
        match self {
            Self::AtLeast(limit) => value >= limit,
            Self::AtMost(limit) => value <= limit,
        }
    }
}

impl std::fmt::Display for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::AtLeast(limit) => write!(f, ">={limit:.2}"),
            Self::AtMost(limit) => write!(f, "<={limit:.2}"),
        }
    }
}

/// What a measurement's ratio is and what it should be.
#[derive(Clone, Debug)]
pub struct Spec {
    /// The figure of the `ratio=` field.
    pub headline: Figure,
    /// The targets: each a figure and its bound (the first is the
    /// headline's, when there is one).
    pub targets: Vec<(Figure, Bound)>,
}

/// The medians of one side over the kept pairs.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Operations per second.
    pub rps: f64,
    /// p50, µs.
    pub p50_us: f64,
    /// p99, µs.
    pub p99_us: f64,
    /// CPU µs per operation.
    pub cpu_us_per_op: f64,
    /// Context switches per operation.
    pub switches_per_op: f64,
}

/// The `BENCH` field of the durable floor's rate; the others follow it
/// ([`Measurement::floor_fields`]).
pub const FLOOR_RPS: &str = "floor_rps";

/// The median of `values` (0 when empty).
pub fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        f64::midpoint(values[mid - 1], values[mid])
    }
}

/// One scenario at one number in flight, summarised over its pairs.
#[derive(Clone, Debug)]
pub struct Measurement {
    /// The scenario's name.
    pub scenario: String,
    /// Requests in flight.
    pub inflight: usize,
    /// The sessiond replicas of the measured side (`pg_*` scenarios only).
    pub replicas: Option<usize>,
    /// Which of a scenario's measurements at one number in flight this is,
    /// when it has several (`auth_*`: `token` or `jwt`; `tls_*`: `baseline`
    /// or `sessiond`).
    pub variant: Option<&'static str>,
    /// What the ratio means and its targets.
    pub spec: Spec,
    /// Every pair run, kept or not.
    pub pairs: Vec<Pair>,
    /// Whether no pair passed the load rule (then all were used).
    pub noisy: bool,
    /// Extra `key=value` fields of the `BENCH` line.
    pub extra: Vec<(String, String)>,
}

impl Measurement {
    /// The scenario's name in the table: with `r=N` when it has replicas,
    /// and its variant when it has one.
    pub fn name(&self) -> String {
        let mut name = match self.replicas {
            Some(replicas) => format!("{} r={replicas}", self.scenario),
            None => self.scenario.clone(),
        };
        if let Some(variant) = self.variant {
            let _ = write!(name, " {variant}");
        }
        name
    }

    /// The pairs the medians are taken over.
    pub fn used(&self) -> Vec<&Pair> {
        self.pairs.iter().filter(|p| p.kept || self.noisy).collect()
    }

    /// The median per-pair value of `figure`.
    pub fn figure(&self, figure: Figure) -> f64 {
        median(self.used().iter().map(|p| figure.of(p)).collect())
    }

    /// The headline ratio.
    pub fn ratio(&self) -> f64 {
        self.figure(self.spec.headline)
    }

    /// Whether side 3 is the durable floor (it then has the `floor_*`
    /// fields).
    pub fn has_floor(&self) -> bool {
        self.extra.iter().any(|(key, _)| key == FLOOR_RPS)
    }

    /// The `floor_*` fields of a measurement whose side 3 is the durable
    /// floor.
    pub fn floor_fields(&self) -> Vec<(String, String)> {
        let floor = self.side(2);
        vec![
            (FLOOR_RPS.to_owned(), int(floor.rps)),
            ("floor_p50_us".to_owned(), us(floor.p50_us)),
            ("floor_cpu_us".to_owned(), us(floor.cpu_us_per_op)),
            (
                "floor_ratio".to_owned(),
                ratio(self.figure(Figure::ReferenceThroughput)),
            ),
            (
                "of_floor".to_owned(),
                ratio(self.figure(Figure::ThroughputOverReference)),
            ),
        ]
    }

    /// The medians of side `index`.
    pub fn side(&self, index: usize) -> Stats {
        let used = self.used();
        let values =
            |f: fn(&SideResult) -> f64| median(used.iter().map(|p| f(&p.sides[index])).collect());
        Stats {
            rps: values(|s| s.rps),
            p50_us: values(|s| s.p50_us),
            p99_us: values(|s| s.p99_us),
            cpu_us_per_op: values(|s| s.cpu_us_per_op),
            switches_per_op: values(|s| s.switches_per_op),
        }
    }

    /// Each target with its value and whether it is met.
    pub fn checks(&self) -> Vec<(Figure, Bound, f64, bool)> {
        self.spec
            .targets
            .iter()
            .map(|&(figure, bound)| {
                let value = self.figure(figure);
                (figure, bound, value, bound.met(value))
            })
            .collect()
    }

    /// "yes", "no", or "-" when there is no target.
    pub fn met(&self) -> &'static str {
        let checks = self.checks();
        if checks.is_empty() {
            "-"
        } else if checks.iter().all(|c| c.3) {
            "yes"
        } else {
            "no"
        }
    }

    fn kept(&self) -> String {
        let kept = self.pairs.iter().filter(|p| p.kept).count();
        format!(
            "{kept}/{}{}",
            self.pairs.len(),
            if self.noisy { " (noisy)" } else { "" }
        )
    }

    fn targets_text(&self) -> String {
        if self.spec.targets.is_empty() {
            return "-".to_owned();
        }
        self.spec
            .targets
            .iter()
            .map(|(figure, bound)| format!("{} {bound}", figure.describe()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The memory scenario's result.
#[derive(Clone, Debug)]
pub struct Memory {
    /// Idle clientless sessions opened.
    pub sessions: u64,
    /// The server's RSS before, KiB.
    pub rss_before_kib: u64,
    /// The server's RSS with them open, KiB.
    pub rss_after_kib: u64,
    /// How fast they were opened (64 in flight), per second.
    pub open_rate: f64,
}

impl Memory {
    /// The target: at most this many KiB per session.
    pub const TARGET_KIB: f64 = 4.0;

    /// RSS growth per session, KiB.
    pub fn kib_per_session(&self) -> f64 {
        self.rss_after_kib.saturating_sub(self.rss_before_kib) as f64 / self.sessions as f64
    }
}

/// How soon a change reached watchers.
#[derive(Clone, Debug, Default)]
pub struct Latency {
    /// Watchers watching.
    pub watchers: usize,
    /// Median, from the change's time to a watcher's receipt, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Deliveries measured.
    pub samples: u64,
}

/// The watch scenario's result.
#[derive(Clone, Debug, Default)]
pub struct WatchFigures {
    /// Delivery latency, per number of watchers.
    pub latency: Vec<Latency>,
    /// Events `VerifyLedger` verified.
    pub verified_events: i64,
    /// How long it took, s.
    pub verify_seconds: f64,
    /// Bytes per event on disk (SQLite).
    pub bytes_per_event: f64,
}

/// Everything a run found.
#[derive(Debug, Default)]
pub struct Report {
    /// The measurements, in the order run.
    pub measurements: Vec<Measurement>,
    /// The memory scenario's result, if it ran.
    pub memory: Option<Memory>,
    /// The watch scenario's result, if it ran.
    pub watch: Option<WatchFigures>,
    /// The raw store rate, one insert+update per transaction, if measured.
    pub raw_store: Option<RawRate>,
    /// The raw store rate with many insert+updates per transaction, if
    /// measured.
    pub raw_group: Option<RawRate>,
}

fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: Vec<&str>| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let pad = widths[i] - cell.chars().count();
            if i < 2 {
                let _ = write!(text, "{cell}{}  ", " ".repeat(pad));
            } else {
                let _ = write!(text, "{}{cell}  ", " ".repeat(pad));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut out, header.to_vec());
    let total: usize = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
    out.push_str(&"-".repeat(total));
    out.push('\n');
    for row in rows {
        line(&mut out, row.iter().map(String::as_str).collect());
    }
    out
}

fn int(value: f64) -> String {
    format!("{value:.0}")
}

fn us(value: f64) -> String {
    format!("{value:.1}")
}

fn ratio(value: f64) -> String {
    format!("{value:.3}")
}

impl Report {
    /// The table of measurements, the memory and store figures.
    pub fn table(&self) -> String {
        let header = [
            "scenario",
            "inflight",
            "rps",
            "base rps",
            "thr x",
            "p50 us",
            "base p50",
            "p50 x",
            "p99 us",
            "base p99",
            "p99 x",
            "cpu us/op",
            "base cpu",
            "sw/op",
            "pairs",
            "ratio",
            "target",
            "met",
        ];
        let rows: Vec<Vec<String>> = self
            .measurements
            .iter()
            .map(|m| {
                let base = m.side(0);
                let subject = m.side(1);
                vec![
                    m.name(),
                    m.inflight.to_string(),
                    int(subject.rps),
                    int(base.rps),
                    ratio(m.figure(Figure::Throughput)),
                    us(subject.p50_us),
                    us(base.p50_us),
                    ratio(m.figure(Figure::P50)),
                    us(subject.p99_us),
                    us(base.p99_us),
                    ratio(m.figure(Figure::P99)),
                    us(subject.cpu_us_per_op),
                    us(base.cpu_us_per_op),
                    us(subject.switches_per_op),
                    m.kept(),
                    ratio(m.ratio()),
                    m.targets_text(),
                    m.met().to_owned(),
                ]
            })
            .collect();
        let mut out = render(&header, &rows);
        if let Some(memory) = &self.memory {
            let _ = writeln!(
                out,
                "\nmemory: {} idle clientless sessions: RSS {} KiB -> {} KiB = {:.2} KiB per \
                 session (target <= {:.0}: {}); opened at {:.0}/s",
                memory.sessions,
                memory.rss_before_kib,
                memory.rss_after_kib,
                memory.kib_per_session(),
                Memory::TARGET_KIB,
                if memory.kib_per_session() <= Memory::TARGET_KIB {
                    "met"
                } else {
                    "NOT met"
                },
                memory.open_rate,
            );
        }
        if let Some(watch) = &self.watch {
            for latency in &watch.latency {
                let _ = writeln!(
                    out,
                    "\nwatch: {} watcher(s): change to watcher p50 {:.3} ms, p99 {:.3} ms \
                     ({} deliveries)",
                    latency.watchers, latency.p50_ms, latency.p99_ms, latency.samples
                );
            }
            let _ = writeln!(
                out,
                "watch: VerifyLedger over {} events: {:.2} s; {:.0} bytes per event on disk",
                watch.verified_events, watch.verify_seconds, watch.bytes_per_event
            );
        }
        if let Some(raw) = self.raw_store {
            let _ = writeln!(
                out,
                "\nraw SQLite: {:.0} durable transactions/s (one insert + one update by key \
                 per transaction, WAL, synchronous=FULL, one connection)",
                raw.per_second
            );
            for m in self
                .measurements
                .iter()
                .filter(|m| m.scenario == "open_close")
            {
                let _ = writeln!(
                    out,
                    "open_close at {} in flight: {:.0} open+close/s = {:.2} x the raw rate",
                    m.inflight,
                    m.side(1).rps,
                    m.side(1).rps / raw.per_second
                );
            }
        }
        if let Some(group) = self.raw_group {
            let _ = writeln!(
                out,
                "raw SQLite grouped: {:.0} insert+update pairs/s, {} per transaction, \
                 {:.1} us of CPU per pair",
                group.per_second, group.per_transaction, group.cpu_us
            );
            for m in self
                .measurements
                .iter()
                .filter(|m| m.scenario == "open_close" && m.inflight > 1)
            {
                let baseline_cpu = m.side(0).cpu_us_per_op;
                let _ = writeln!(
                    out,
                    "open_close at {} in flight: the baseline's {:.1} us of server CPU per \
                     open+close plus the grouped raw SQLite's {:.1} would allow {:.2} x the \
                     baseline (sessiond: {:.1} us)",
                    m.inflight,
                    baseline_cpu,
                    group.cpu_us,
                    baseline_cpu / (baseline_cpu + group.cpu_us),
                    m.side(1).cpu_us_per_op
                );
            }
        }
        let floors: Vec<&Measurement> =
            self.measurements.iter().filter(|m| m.has_floor()).collect();
        if !floors.is_empty() {
            let _ = writeln!(
                out,
                "\ndurable floor (the baseline answering each write only once a group-committed \
                 fsync covers a record of it):"
            );
        }
        for m in floors {
            let _ = writeln!(
                out,
                "  {} at {} in flight: {:.0}/s = {} x the baseline, p50 {:.1} us; sessiond = {} \
                 x the floor",
                m.name(),
                m.inflight,
                m.side(2).rps,
                ratio(m.figure(Figure::ReferenceThroughput)),
                m.side(2).p50_us,
                ratio(m.figure(Figure::ThroughputOverReference)),
            );
        }
        let discarded: Vec<String> = self
            .measurements
            .iter()
            .flat_map(|m| {
                m.pairs
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| !p.kept)
                    .map(|(i, p)| {
                        format!(
                            "  {} inflight={} pair {}: other load {:.2} cores",
                            m.name(),
                            m.inflight,
                            i + 1,
                            p.other_cores()
                        )
                    })
            })
            .collect();
        if discarded.is_empty() {
            out.push_str("\nno pair was discarded for other load\n");
        } else {
            let _ = writeln!(
                out,
                "\ndiscarded pairs (other load above the limit; a measurement marked \
                 \"noisy\" kept none and uses them all):"
            );
            for line in discarded {
                out.push_str(&line);
                out.push('\n');
            }
        }
        out
    }

    /// One `BENCH` line per measurement.
    pub fn bench_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for m in &self.measurements {
            let base = m.side(0);
            let subject = m.side(1);
            let mut line = if m.scenario == "lookup_scale" {
                format!(
                    "BENCH scenario={} inflight={} ratio={} p99_small_us={} p99_large_us={} \
                     p50_small_us={} p50_large_us={} rps_small={} rps_large={}",
                    m.scenario,
                    m.inflight,
                    ratio(m.ratio()),
                    us(base.p99_us),
                    us(subject.p99_us),
                    us(base.p50_us),
                    us(subject.p50_us),
                    int(base.rps),
                    int(subject.rps),
                )
            } else {
                format!(
                    "BENCH scenario={} inflight={}{}{} ratio={} rps={} baseline_rps={} p50_us={} \
                     p99_us={} baseline_p50_us={} baseline_p99_us={} cpu_us={} \
                     baseline_cpu_us={} switches={:.1} baseline_switches={:.1}",
                    m.scenario,
                    m.inflight,
                    m.replicas
                        .map_or(String::new(), |r| format!(" replicas={r}")),
                    m.variant.map_or(String::new(), |v| format!(" variant={v}")),
                    ratio(m.ratio()),
                    int(subject.rps),
                    int(base.rps),
                    us(subject.p50_us),
                    us(subject.p99_us),
                    us(base.p50_us),
                    us(base.p99_us),
                    us(subject.cpu_us_per_op),
                    us(base.cpu_us_per_op),
                    subject.switches_per_op,
                    base.switches_per_op,
                )
            };
            for (key, value) in &m.extra {
                let _ = write!(line, " {key}={value}");
            }
            let _ = write!(
                line,
                " throughput_ratio={} p50_ratio={} p99_ratio={} ratio_of={} pairs={}",
                ratio(m.figure(Figure::Throughput)),
                ratio(m.figure(Figure::P50)),
                ratio(m.figure(Figure::P99)),
                key(m.spec.headline),
                m.kept().replace(' ', "")
            );
            for (figure, bound, value, met) in m.checks() {
                let _ = write!(
                    line,
                    " target_{}={bound} value_{}={} met_{}={}",
                    key(figure),
                    key(figure),
                    ratio(value),
                    key(figure),
                    if met { "yes" } else { "no" }
                );
            }
            lines.push(line);
        }
        if let Some(watch) = &self.watch {
            for latency in &watch.latency {
                lines.push(format!(
                    "BENCH scenario=watch watchers={} p50_ms={:.3} p99_ms={:.3} deliveries={}",
                    latency.watchers, latency.p50_ms, latency.p99_ms, latency.samples
                ));
            }
            lines.push(format!(
                "BENCH scenario=verify_ledger events={} seconds={:.2} bytes_per_event={:.0}",
                watch.verified_events, watch.verify_seconds, watch.bytes_per_event
            ));
        }
        if let Some(memory) = &self.memory {
            lines.push(format!(
                "BENCH scenario=memory sessions={} kib_per_session={:.3} rss_before_kib={} \
                 rss_after_kib={} target=<={:.0} met={}",
                memory.sessions,
                memory.kib_per_session(),
                memory.rss_before_kib,
                memory.rss_after_kib,
                Memory::TARGET_KIB,
                if memory.kib_per_session() <= Memory::TARGET_KIB {
                    "yes"
                } else {
                    "no"
                }
            ));
        }
        lines
    }
}

fn key(figure: Figure) -> &'static str {
    match figure {
        Figure::Throughput => "throughput",
        Figure::P50 => "p50",
        Figure::P99 => "p99",
        Figure::P50OverReference => "p50_ref",
        Figure::ReferenceThroughput => "ref_throughput",
        Figure::ThroughputOverReference => "throughput_over_ref",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(label: &str, rps: f64, p50_us: f64, p99_us: f64) -> SideResult {
        SideResult {
            label: label.to_owned(),
            rps,
            p50_us,
            p99_us,
            cpu_us_per_op: 10.0,
            switches_per_op: 1.0,
            server_cores: 1.0,
            generator_cores: 1.0,
            other_cores: 0.0,
            database_cores: 0.0,
        }
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert!((median(vec![3.0, 1.0, 2.0]) - 2.0).abs() < 1e-9);
        assert!((median(vec![4.0, 1.0, 2.0, 3.0]) - 2.5).abs() < 1e-9);
        assert!(median(Vec::new()).abs() < 1e-9);
    }

    #[test]
    fn ratios_are_medians_of_kept_pairs_only() {
        let pair = |base: f64, subject: f64, kept: bool| Pair {
            sides: vec![
                side("baseline", base, 100.0, 200.0),
                side("sessiond", subject, 110.0, 260.0),
            ],
            kept,
        };
        let measurement = Measurement {
            scenario: "get_session_user".to_owned(),
            inflight: 64,
            replicas: None,
            variant: None,
            spec: Spec {
                headline: Figure::Throughput,
                targets: vec![
                    (Figure::Throughput, Bound::AtLeast(0.90)),
                    (Figure::P99, Bound::AtMost(1.2)),
                ],
            },
            pairs: vec![
                pair(100.0, 95.0, true),
                pair(100.0, 10.0, false),
                pair(100.0, 91.0, true),
                pair(100.0, 93.0, true),
            ],
            noisy: false,
            extra: Vec::new(),
        };
        assert!((measurement.ratio() - 0.93).abs() < 1e-9);
        assert!((measurement.figure(Figure::P99) - 1.3).abs() < 1e-9);
        assert_eq!(measurement.met(), "no", "p99 1.3 > 1.2");
        let lines = Report {
            measurements: vec![measurement],
            ..Report::default()
        }
        .bench_lines();
        assert!(
            lines[0].starts_with(
                "BENCH scenario=get_session_user inflight=64 ratio=0.930 rps=93 baseline_rps=100 \
                 p50_us=110.0 p99_us=260.0 "
            ),
            "{}",
            lines[0]
        );
        assert!(lines[0].contains(" pairs=3/4"), "{}", lines[0]);
    }

    #[test]
    fn floor_figures_are_medians_of_per_pair_ratios() {
        let triple = |base: f64, subject: f64, floor: f64| Pair {
            sides: vec![
                side("baseline", base, 100.0, 200.0),
                side("sessiond", subject, 300.0, 600.0),
                side("durable floor", floor, 250.0, 500.0),
            ],
            kept: true,
        };
        let mut measurement = Measurement {
            scenario: "user_context".to_owned(),
            inflight: 64,
            replicas: None,
            variant: None,
            spec: Spec {
                headline: Figure::Throughput,
                targets: Vec::new(),
            },
            pairs: vec![
                triple(100.0, 40.0, 50.0),
                triple(200.0, 60.0, 80.0),
                triple(100.0, 30.0, 60.0),
            ],
            noisy: false,
            extra: Vec::new(),
        };
        assert!(!measurement.has_floor());
        measurement.extra = measurement.floor_fields();
        assert!(measurement.has_floor());
        // Floor ÷ baseline per pair: 0.5, 0.4, 0.6; sessiond ÷ floor: 0.8,
        // 0.75, 0.5.
        assert!((measurement.figure(Figure::ReferenceThroughput) - 0.5).abs() < 1e-9);
        assert!((measurement.figure(Figure::ThroughputOverReference) - 0.75).abs() < 1e-9);
        let line = &Report {
            measurements: vec![measurement],
            ..Report::default()
        }
        .bench_lines()[0];
        assert!(
            line.contains(" floor_rps=60 floor_p50_us=250.0 floor_cpu_us=10.0 floor_ratio=0.500 of_floor=0.750 "),
            "{line}"
        );
    }

    #[test]
    fn a_variant_names_the_row_and_the_bench_line() {
        let measurement = Measurement {
            scenario: "auth_get_session_user".to_owned(),
            inflight: 64,
            replicas: None,
            variant: Some("jwt"),
            spec: Spec {
                headline: Figure::Throughput,
                targets: vec![(Figure::Throughput, Bound::AtLeast(0.90))],
            },
            pairs: vec![Pair {
                sides: vec![
                    side("sessiond, no auth", 100.0, 100.0, 200.0),
                    side("sessiond, JWT", 95.0, 105.0, 210.0),
                ],
                kept: true,
            }],
            noisy: false,
            extra: Vec::new(),
        };
        assert_eq!(measurement.name(), "auth_get_session_user jwt");
        let report = Report {
            measurements: vec![measurement],
            ..Report::default()
        };
        assert!(
            report.table().contains("auth_get_session_user jwt  64"),
            "{}",
            report.table()
        );
        let line = &report.bench_lines()[0];
        assert!(
            line.starts_with(
                "BENCH scenario=auth_get_session_user inflight=64 variant=jwt ratio=0.950 "
            ),
            "{line}"
        );
        assert!(
            line.ends_with(" value_throughput=0.950 met_throughput=yes"),
            "{line}"
        );
    }

    #[test]
    fn memory_per_session() {
        let memory = Memory {
            sessions: 1000,
            rss_before_kib: 10_000,
            rss_after_kib: 12_000,
            open_rate: 1.0,
        };
        assert!((memory.kib_per_session() - 2.0).abs() < 1e-9);
    }
}
