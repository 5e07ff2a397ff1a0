//! The analytics dataflow under load, on generated daily data (one sample per user, metric and
//! date, fifteen metrics with plausible values and day-to-day structure):
//!
//! 1. hydration — the whole history applied as one epoch until its `Done`, and the resident
//!    memory the pipeline keeps per daily value;
//! 2. one new date for every user as one epoch — the incremental update against the batch
//!    oracle recomputing everything from the same rows, at several history lengths (the oracle
//!    runs in slices of the users, one after each new date, so each date is compared with a
//!    recomputation timed in the same minute);
//! 3. freshness — single-user writes (a few corrected samples each) after hydration, the time
//!    from `apply` to that epoch's `Done`, p50/p99.
//!
//! Every case runs in a child process of this binary so resident memory and its high-water mark
//! belong to that case alone, and a case that outgrows the memory cap (a watchdog on VmRSS)
//! ends its own process rather than the machine's other work.
//!
//! `cargo bench -p vitasync-dataflow --bench pipeline`. Knobs (defaults in brackets):
//! `BENCH_USERS` user counts for the 365-day cases [1000,3000]; `BENCH_DAYS` history of those
//! cases [365]; `BENCH_HISTORY_USERS` [1000] and `BENCH_HISTORIES` [30,90] add shorter histories
//! at that user count; `BENCH_NEW_DAYS` new dates applied one epoch each [20]; `BENCH_ORACLE_MAX`
//! largest user count the oracle is timed at [3000]; `BENCH_WRITES` freshness writes per case [1000];
//! `BENCH_RATE` freshness writes per second, 0 for back-to-back [0]; `BENCH_WORKERS` [2];
//! `BENCH_MAX_RSS_GIB` memory cap per case [16]; `BENCH_HORIZON` 0 holds every date in the
//! dataflow instead of the default horizon [1]; `BENCH_HORIZON_BLOCK` the horizon's step in
//! dates [the default's].

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use vitasync_dataflow::horizon::HorizonConfig;
use vitasync_dataflow::model::{
    Day, MetricKey, OutputDelta, SampleDelta, SampleRow, metric_key, to_fixed,
};
use vitasync_dataflow::{Dataflow, Output, oracle};
use vitasync_engine::catalogue::ProviderPriority;
use vitasync_testkit::generated::{METRICS, mix, value};
use vitasync_testkit::process::memory;

/// The last date of every generated history (2025-11-27); new dates follow it.
const LAST_DAY: Day = 20_419;
const PROVIDER: &str = "fitbit";
const MICROS_PER_DAY: i64 = 86_400_000_000;

fn env_list(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().unwrap_or_else(|_| panic!("{name}: {s}")))
        .collect()
}

fn env_num(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .map(|s| s.parse().unwrap_or_else(|_| panic!("{name}: {s}")))
        .unwrap_or(default)
}

// ---------------------------------------------------------------------------------------------
// Data

struct Keys([MetricKey; 15]);

impl Keys {
    fn new() -> Self {
        Keys(METRICS.map(|m| metric_key(m).expect("bench metrics are in the catalogue")))
    }
}

fn row(keys: &Keys, user: u64, metric: usize, day: Day, v: f64) -> SampleRow {
    SampleRow {
        user: u128::from(user) + 1,
        metric: keys.0[metric],
        day,
        provider: PROVIDER.to_string(),
        recorded_at: i64::from(day) * MICROS_PER_DAY + 23 * 3_600_000_000,
        value: to_fixed(v),
    }
}

fn rows_for(
    keys: &Keys,
    users: std::ops::Range<u64>,
    days: std::ops::RangeInclusive<Day>,
) -> Vec<SampleRow> {
    let mut out = Vec::with_capacity(users.clone().count() * 15 * days.clone().count());
    for u in users {
        for d in days.clone() {
            for m in 0..METRICS.len() {
                out.push(row(keys, u, m, d, value(u, m, d)));
            }
        }
    }
    out
}

fn inserts(rows: Vec<SampleRow>) -> Vec<SampleDelta> {
    rows.into_iter()
        .map(|row| SampleDelta { row, diff: 1 })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Process CPU time (memory: testkit's `process::memory`)

/// CPU time of this process so far (every thread, user + system), from /proc/self/stat in
/// clock ticks of 1/100 s.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks(11) + ticks(12)) as f64 / 100.0
}

fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

/// Ends the process (exit code 3) when its resident memory passes the cap.
fn watchdog(cap: u64) {
    std::thread::spawn(move || {
        loop {
            let (rss, _) = memory();
            if rss > cap {
                println!("RESULT aborted_rss_gib={:.2}", gib(rss));
                eprintln!("resident memory {:.2} GiB passed the cap", gib(rss));
                std::process::exit(3);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Driving the pipeline

#[derive(Default, Debug)]
struct Counts {
    daily: u64,
    baselines: u64,
    anomalies: u64,
    records: u64,
    scores: u64,
    correlations: u64,
    /// Rows archived in batch when users' horizons moved.
    archived: u64,
}

impl Counts {
    fn total(&self) -> u64 {
        self.daily
            + self.baselines
            + self.anomalies
            + self.records
            + self.scores
            + self.correlations
    }
}

/// Reads outputs until `Done(epoch)`, counting deltas by kind.
fn wait(flow: &Dataflow, epoch: u64, counts: &mut Counts) {
    loop {
        match flow
            .outputs()
            .recv_timeout(Duration::from_secs(3_600))
            .expect("the epoch completes")
        {
            Output::Deltas(_, ds) => {
                for d in ds {
                    match d {
                        OutputDelta::Daily { .. } => counts.daily += 1,
                        OutputDelta::Baseline { .. } => counts.baselines += 1,
                        OutputDelta::Anomaly { .. } => counts.anomalies += 1,
                        OutputDelta::Record { .. } | OutputDelta::WorkoutRecord { .. } => {
                            counts.records += 1
                        }
                        OutputDelta::Scores { .. } => counts.scores += 1,
                        OutputDelta::Correlation { .. } => counts.correlations += 1,
                        OutputDelta::Archived(a) => {
                            counts.archived += (a.anomalies.len() + a.scores.len()) as u64
                        }
                    }
                }
            }
            Output::Done(e) if e >= epoch => return,
            Output::Done(_) => {}
        }
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// One case in this process: prints `RESULT key=value` lines for the parent.
fn run_case(users: u64, days: Day) {
    let cap = (env_num("BENCH_MAX_RSS_GIB", 16.0) * (1u64 << 30) as f64) as u64;
    watchdog(cap);
    let workers = env_num("BENCH_WORKERS", 2.0) as usize;
    let new_days = env_num("BENCH_NEW_DAYS", 20.0) as Day;
    let oracle_max = env_num("BENCH_ORACLE_MAX", 3000.0) as u64;
    let writes = env_num("BENCH_WRITES", 1000.0) as usize;
    let rate = env_num("BENCH_RATE", 0.0);
    let keys = Keys::new();
    let report = |k: &str, v: String| println!("RESULT {k}={v}");

    let flow = match env_num("BENCH_HORIZON", 1.0) as u8 {
        0 => Dataflow::start_with(workers, 1, None),
        _ => match std::env::var("BENCH_HORIZON_BLOCK") {
            Ok(block) => Dataflow::start_with(
                workers,
                1,
                Some(HorizonConfig {
                    block: block
                        .parse()
                        .expect("BENCH_HORIZON_BLOCK is a number of dates"),
                    ..HorizonConfig::default()
                }),
            ),
            Err(_) => Dataflow::start(workers),
        },
    }
    .expect("dataflow starts");
    let (rss_base, _) = memory();
    let values = users * 15 * days as u64;
    let (rss_input, _) = memory();
    eprintln!("{users} users × {days} days: {values} samples");

    // 1. Hydration, as the server does it: every user announced with the default provider
    // priority, then whole users' histories, about 20,000 samples an epoch (each user's dates
    // before their horizon archived as they arrive). Generating the rows is part of the time.
    let mut counts = Counts::default();
    let started = Instant::now();
    let announce = (0..users)
        .map(|u| (u128::from(u) + 1, ProviderPriority::default(), 1))
        .collect();
    flow.apply_with(Vec::new(), announce);
    let chunk = (20_000 / (15 * days as u64)).max(1);
    for first in (0..users).step_by(chunk as usize) {
        let rows = rows_for(
            &keys,
            first..(first + chunk).min(users),
            LAST_DAY - days + 1..=LAST_DAY,
        );
        let epoch = flow.apply(inserts(rows));
        // Keep the queue short so resident memory is the pipeline's, not queued input.
        wait(&flow, epoch, &mut counts);
    }
    let hydration = started.elapsed();
    report(
        "held_days",
        flow.held_days().map_or("all".into(), |n| n.to_string()),
    );
    let (rss_after, hwm) = memory();
    let kept = rss_after.saturating_sub(rss_base);
    report("hydration_s", format!("{:.2}", secs(hydration)));
    report("daily_values", values.to_string());
    report("rss_base_gib", format!("{:.2}", gib(rss_base)));
    report("rss_input_gib", format!("{:.2}", gib(rss_input)));
    report("rss_after_gib", format!("{:.2}", gib(rss_after)));
    report("hwm_gib", format!("{:.2}", gib(hwm)));
    report(
        "bytes_per_value",
        format!("{:.0}", kept as f64 / values as f64),
    );
    report(
        "peak_bytes_per_value",
        format!("{:.0}", hwm.saturating_sub(rss_base) as f64 / values as f64),
    );
    report("hydration_deltas", format!("{counts:?}").replace(' ', ""));
    eprintln!(
        "hydrated in {:.1} s, {:.2} GiB resident ({:.2} GiB peak), {} output deltas",
        secs(hydration),
        gib(rss_after),
        gib(hwm),
        counts.total()
    );

    // 2. New dates, one epoch each, every user. After each, the oracle recomputes one slice of
    // the users (all their rows, every new date included) from scratch: the slices together
    // are the whole recomputation, and each is timed right after the date it is compared with,
    // so the ratio does not depend on how fast this virtual machine happens to be in the
    // minute the oracle runs (it varied 16–30 s between runs of the same recomputation).
    let last = LAST_DAY + new_days;
    let oracle_on = users <= oracle_max;
    let per_slice = users.div_ceil(new_days.max(1) as u64);
    let mut times = Vec::new();
    let mut route_times = Vec::new();
    let mut cpus = Vec::new();
    let mut ratios_wall = Vec::new();
    let mut ratios_cpu = Vec::new();
    let (mut oracle_wall, mut oracle_cpu) = (0.0, 0.0);
    for k in 1..=new_days {
        let d = LAST_DAY + k;
        let deltas = inserts(rows_for(&keys, 0..users, d..=d));
        let mut counts = Counts::default();
        let cpu_started = cpu_secs();
        let started = Instant::now();
        let epoch = flow.apply(deltas);
        // `apply` returns once the horizon has routed the batch (archiving the users whose
        // boundary moved); the rest is the dataflow.
        let routed = started.elapsed();
        wait(&flow, epoch, &mut counts);
        let t = started.elapsed();
        let cpu = cpu_secs() - cpu_started;
        times.push(secs(t));
        cpus.push(cpu);
        route_times.push(secs(routed));
        let first = per_slice * (k as u64 - 1);
        let slice = first.min(users)..(first + per_slice).min(users);
        if oracle_on && !slice.is_empty() {
            let share = users as f64 / (slice.end - slice.start) as f64;
            let rows = rows_for(&keys, slice, LAST_DAY - days + 1..=last);
            let cpu_started = cpu_secs();
            let started = Instant::now();
            drop(oracle::compute(&rows));
            let (wall, cpu_o) = (secs(started.elapsed()), cpu_secs() - cpu_started);
            oracle_wall += wall;
            oracle_cpu += cpu_o;
            ratios_wall.push(wall * share / secs(t));
            ratios_cpu.push(cpu_o * share / cpu);
        }
        eprintln!(
            "new date {k}: {:.3} s ({:.3} s routing), {} output deltas {counts:?}",
            secs(t),
            secs(routed),
            counts.total()
        );
        report("new_day_deltas", counts.total().to_string());
    }
    report(
        "new_day_s",
        times
            .iter()
            .map(|t| format!("{t:.3}"))
            .collect::<Vec<_>>()
            .join(","),
    );
    report(
        "new_day_cpu_s",
        format!("{:.3}", cpus.iter().sum::<f64>() / f64::from(new_days)),
    );
    report(
        "new_day_route_s",
        route_times
            .iter()
            .map(|t| format!("{t:.3}"))
            .collect::<Vec<_>>()
            .join(","),
    );
    if oracle_on {
        ratios_wall.sort_by(f64::total_cmp);
        ratios_cpu.sort_by(f64::total_cmp);
        report("oracle_s", format!("{oracle_wall:.2}"));
        report("oracle_cpu_s", format!("{oracle_cpu:.2}"));
        report(
            "ratio_wall_median",
            format!("{:.0}", percentile(&ratios_wall, 0.5)),
        );
        report(
            "ratio_cpu_median",
            format!("{:.0}", percentile(&ratios_cpu, 0.5)),
        );
        report(
            "ratio_cpu_range",
            format!(
                "{:.0}–{:.0}",
                ratios_cpu.first().copied().unwrap_or(f64::NAN),
                ratios_cpu.last().copied().unwrap_or(f64::NAN)
            ),
        );
        eprintln!(
            "oracle in {} slices: {oracle_wall:.1} s; per date, recomputation / update: {:.0}× by wall time, {:.0}× by CPU time (median)",
            ratios_wall.len(),
            percentile(&ratios_wall, 0.5),
            percentile(&ratios_cpu, 0.5),
        );
    }

    // 3. Freshness: a user's running totals for the latest date are corrected, three metrics
    // per write (steps, distance, active energy), each as a retraction and an insertion.
    if writes > 0 {
        let mut current: HashMap<(u64, usize), f64> = HashMap::new();
        let mut latency = Vec::with_capacity(writes);
        let mut sent: HashMap<u64, Instant> = HashMap::new();
        let interval = (rate > 0.0).then(|| Duration::from_secs_f64(1.0 / rate));
        let start = Instant::now();
        let mut counts = Counts::default();
        let mut issued = 0usize;
        let mut last_epoch = 0;
        while latency.len() < writes {
            let due = interval.map_or(issued == latency.len(), |i| {
                start.elapsed() >= i * issued as u32
            });
            if issued < writes && due {
                let user = mix(issued as u64 ^ 0xF00D) % users;
                let mut deltas = Vec::new();
                for m in 0..3 {
                    let old = *current.get(&(user, m)).unwrap_or(&value(user, m, last));
                    let new = (old * 1.02 + 1.0).round();
                    current.insert((user, m), new);
                    deltas.push(SampleDelta {
                        row: row(&keys, user, m, last, old),
                        diff: -1,
                    });
                    deltas.push(SampleDelta {
                        row: row(&keys, user, m, last, new),
                        diff: 1,
                    });
                }
                let at = Instant::now();
                last_epoch = flow.apply(deltas);
                sent.insert(last_epoch, at);
                issued += 1;
                continue;
            }
            let timeout = interval
                .map(|i| (i * issued as u32).saturating_sub(start.elapsed()))
                .unwrap_or(Duration::from_secs(3_600));
            match flow.outputs().recv_timeout(timeout) {
                Ok(Output::Done(e)) => {
                    if let Some(at) = sent.remove(&e) {
                        latency.push(secs(at.elapsed()) * 1_000.0);
                    }
                }
                Ok(Output::Deltas(_, ds)) => counts.daily += ds.len() as u64,
                Err(_) => {}
            }
        }
        let total = start.elapsed();
        let _ = last_epoch;
        latency.sort_by(f64::total_cmp);
        report("fresh_p50_ms", format!("{:.1}", percentile(&latency, 0.5)));
        report("fresh_p99_ms", format!("{:.1}", percentile(&latency, 0.99)));
        report(
            "fresh_max_ms",
            format!("{:.1}", latency.last().copied().unwrap_or(f64::NAN)),
        );
        report(
            "fresh_writes_per_s",
            format!("{:.0}", writes as f64 / secs(total)),
        );
        report(
            "fresh_deltas_per_write",
            format!("{:.1}", counts.daily as f64 / writes as f64),
        );
        eprintln!(
            "freshness: {writes} writes in {:.1} s, p50 {:.1} ms, p99 {:.1} ms",
            secs(total),
            percentile(&latency, 0.5),
            percentile(&latency, 0.99)
        );
    }
    let (rss, hwm) = memory();
    report("rss_end_gib", format!("{:.2}", gib(rss)));
    report("hwm_end_gib", format!("{:.2}", gib(hwm)));
    flow.shutdown();
}

// ---------------------------------------------------------------------------------------------
// The parent: one child per case, then the tables.

/// (users, days), the child's `RESULT` fields, and how the child ended.
type CaseResult = ((usize, usize), HashMap<String, String>, String);

fn main() {
    if let Ok(case) = std::env::var("BENCH_CASE") {
        let (users, days) = case.split_once(':').expect("BENCH_CASE is users:days");
        run_case(users.parse().expect("users"), days.parse().expect("days"));
        return;
    }
    // `cargo bench` passes `--bench`; nothing else is expected.
    let days = env_num("BENCH_DAYS", 365.0) as usize;
    let mut cases: Vec<(usize, usize)> = env_list("BENCH_USERS", "1000,3000")
        .into_iter()
        .map(|u| (u, days))
        .collect();
    let history_users = env_num("BENCH_HISTORY_USERS", 1000.0) as usize;
    for h in env_list("BENCH_HISTORIES", "30,90") {
        if !cases.contains(&(history_users, h)) {
            cases.push((history_users, h));
        }
    }
    cases.sort_by_key(|(u, d)| (*u, *d));
    let exe = std::env::current_exe().expect("own path");
    let mut results: Vec<CaseResult> = Vec::new();
    for (users, days) in cases {
        eprintln!("== {users} users × {days} days");
        let started = Instant::now();
        let out = Command::new(&exe)
            .env("BENCH_CASE", format!("{users}:{days}"))
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("the case runs");
        let mut fields = HashMap::new();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some((k, v)) = line.strip_prefix("RESULT ").and_then(|l| l.split_once('=')) {
                fields
                    .entry(k.to_string())
                    .and_modify(|e: &mut String| {
                        e.push(',');
                        e.push_str(v)
                    })
                    .or_insert_with(|| v.to_string());
            }
        }
        let status = if out.status.success() {
            "ok".to_string()
        } else if fields.contains_key("aborted_rss_gib") {
            format!(
                "stopped at the memory cap ({} GiB)",
                fields["aborted_rss_gib"]
            )
        } else {
            format!("failed: {}", out.status)
        };
        eprintln!(
            "== {users} × {days}: {status} after {:.0} s",
            started.elapsed().as_secs_f64()
        );
        results.push(((users, days), fields, status));
    }

    let get = |f: &HashMap<String, String>, k: &str| f.get(k).cloned().unwrap_or("–".into());
    println!("\n### Hydration\n");
    println!(
        "| users | days | daily values | held samples | hydration s | RSS after GiB | peak GiB | bytes/value kept | bytes/value peak | status |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
    for ((u, d), f, status) in &results {
        println!(
            "| {u} | {d} | {} | {} | {} | {} | {} | {} | {} | {status} |",
            get(f, "daily_values"),
            get(f, "held_days"),
            get(f, "hydration_s"),
            get(f, "rss_after_gib"),
            get(f, "hwm_gib"),
            get(f, "bytes_per_value"),
            get(f, "peak_bytes_per_value"),
        );
    }
    println!("\n### One new date for every user (one epoch)\n");
    println!(
        "| users | days | dates | first 3 s | median s | max s | routing median s | CPU s per date | output deltas per date (median) | oracle s | recomputation / update, wall (median) | by CPU (median) | by CPU (range) |"
    );
    println!(
        "| ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for ((u, d), f, _) in &results {
        let Some(times) = f.get("new_day_s") else {
            continue;
        };
        let parse =
            |list: &str| -> Vec<f64> { list.split(',').filter_map(|t| t.parse().ok()).collect() };
        let ts = parse(times);
        let first: Vec<String> = ts.iter().take(3).map(|t| format!("{t:.3}")).collect();
        let mut sorted = ts.clone();
        sorted.sort_by(f64::total_cmp);
        let median = percentile(&sorted, 0.5);
        let mut routes = parse(&get(f, "new_day_route_s"));
        routes.sort_by(f64::total_cmp);
        println!(
            "| {u} | {d} | {} | {} | {median:.3} | {:.3} | {:.3} | {} | {} | {} | {} | {} | {} |",
            ts.len(),
            first.join(", "),
            sorted.last().copied().unwrap_or(f64::NAN),
            percentile(&routes, 0.5),
            get(f, "new_day_cpu_s"),
            {
                let mut deltas = parse(&get(f, "new_day_deltas"));
                deltas.sort_by(f64::total_cmp);
                format!("{:.0}", percentile(&deltas, 0.5))
            },
            get(f, "oracle_s"),
            f.get("ratio_wall_median")
                .map_or("–".into(), |r| format!("{r}×")),
            f.get("ratio_cpu_median")
                .map_or("–".into(), |r| format!("{r}×")),
            f.get("ratio_cpu_range")
                .map_or("–".into(), |r| format!("{r}×")),
        );
    }
    println!("\n### Freshness (single-user writes after hydration)\n");
    println!("| users | days | writes/s | p50 ms | p99 ms | max ms | deltas/write |");
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for ((u, d), f, _) in &results {
        if f.contains_key("fresh_p50_ms") {
            println!(
                "| {u} | {d} | {} | {} | {} | {} | {} |",
                get(f, "fresh_writes_per_s"),
                get(f, "fresh_p50_ms"),
                get(f, "fresh_p99_ms"),
                get(f, "fresh_max_ms"),
                get(f, "fresh_deltas_per_write"),
            );
        }
    }
}
