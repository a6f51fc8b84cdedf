//! S5: durable answer autosave over HTTP, open loop at `--rate` saves/s. Save `i` goes to
//! session `i mod S`, question `(i / S) mod Q`, with version `i / (S·Q) + 1`, so every answer's
//! versions increase. A save succeeds on 200 with a stored version at least the one sent (an
//! older save overtaken by a newer one is answered with the newer version, as the contract says).

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use indicatif::ProgressBar;
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::plot::{timeline_svg, Line};
use crate::scenario::fixture::{Fixture, Plan};
use crate::scenario::{hub_window, report_at, Ctx, Measured, Pacer, Shared, Stop};
use crate::stats::{Recorder, RunResult};

/// Knobs of the autosave scenario.
#[derive(Debug, Clone, Args, serde::Serialize)]
pub struct AutosaveArgs {
    /// Sessions saving.
    #[arg(long, default_value_t = 200)]
    pub sessions: usize,
    /// Questions per exam.
    #[arg(long, default_value_t = 5)]
    pub questions: usize,
    /// Saves per second (open loop).
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,
    /// Measured phase, seconds.
    #[arg(long, default_value_t = 20)]
    pub duration_secs: u64,
    /// Requests in flight at most (a save waiting for a slot is late, and counted so).
    #[arg(long, default_value_t = 1024)]
    pub max_in_flight: usize,
    /// Bytes of answer text per save.
    #[arg(long, default_value_t = 200)]
    pub answer_bytes: usize,
    /// Candidate accounts at most.
    #[arg(long, default_value_t = 100)]
    pub candidates: usize,
}

/// Runs S5.
pub async fn run(ctx: &Ctx, args: AutosaveArgs) -> Result<RunResult> {
    check(&args)?;
    crate::sys::ensure_fds(args.max_in_flight as u64)?;
    let fx = Fixture::provision(ctx, plan(&args)).await?;
    let result = measure(ctx, &args, &fx).await;
    fx.cleanup(ctx).await?;
    result
}

/// Refuses knobs that cannot run.
pub fn check(args: &AutosaveArgs) -> Result<()> {
    if args.sessions == 0 || args.rate == 0 || args.max_in_flight == 0 || args.questions == 0 {
        return Err(Error::Usage(
            "sessions, questions, rate and in-flight must be positive".into(),
        ));
    }
    Ok(())
}

/// What S5 provisions: `sessions` sessions of `questions` questions, no phones.
pub fn plan(args: &AutosaveArgs) -> Plan {
    Plan {
        sessions: args.sessions,
        max_candidates: args.candidates,
        questions: args.questions,
        phones: false,
        proctor: false,
    }
}

/// Offers `total` saves open loop at `args.rate` per second over the sessions of `fx` (fewer if
/// `stop` is set first), each timed from its intended time into `saves`; then waits (at most
/// 30 s) for those in flight and counts the unfinished as failures. Returns the saves offered
/// and the time from the schedule's start to the last answer. What `autosave` measures alone
/// and `soak` runs beside S1 and S2.
pub async fn drive(
    ctx: &Ctx,
    args: &AutosaveArgs,
    fx: &Fixture,
    total: u64,
    saves: &Shared,
    stop: &Stop,
    bar: &ProgressBar,
) -> Result<(u64, Duration)> {
    let slots = Arc::new(Semaphore::new(args.max_in_flight));
    let text: Arc<str> = "x".repeat(args.answer_bytes).into();
    let s_count = fx.sessions.len() as u64;
    let q_count = args.questions as u64;
    let mut pacer = Pacer::new(args.rate as f64);
    let mut tasks = tokio::task::JoinSet::new();
    let mut offered = 0;
    loop {
        let (i, due) = pacer.next().await;
        if i >= total || stop.is_set() {
            break;
        }
        let si = (i % s_count) as usize;
        let session = &fx.sessions[si];
        let Some(&question) = session.s.questions.get(((i / s_count) % q_count) as usize) else {
            return Err(Error::Usage("a session without enough questions".into()));
        };
        let version = i / (s_count * q_count) + 1;
        let (api, token, id) = (ctx.api.clone(), fx.live_token(si), session.s.id);
        let (rec, slots, text, bar) = (saves.clone(), slots.clone(), text.clone(), bar.clone());
        tasks.spawn(async move {
            let _slot = slots.acquire_owned().await;
            let r = api.save_answer(&token, id, question, version, &text).await;
            let took = due.elapsed();
            match r {
                Ok(stored) if stored >= version => rec.ok(took),
                _ => rec.fail(),
            }
            bar.inc(1);
        });
        offered += 1;
        // Reap finished tasks as we go so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
    let until = Instant::now() + Duration::from_secs(30);
    while !tasks.is_empty() && Instant::now() < until {
        let _ = tokio::time::timeout(Duration::from_millis(100), tasks.join_next()).await;
    }
    let unfinished = tasks.len();
    tasks.abort_all();
    for _ in 0..unfinished {
        saves.fail();
    }
    Ok((offered, pacer.start().elapsed()))
}

async fn measure(ctx: &Ctx, args: &AutosaveArgs, fx: &Fixture) -> Result<RunResult> {
    let total = args.rate * args.duration_secs;
    let rss_before = ctx.sample();
    let cpu_before = ctx.sample();
    let bar = ctx.bar(total, "saving");
    let saves = Shared::default();
    let started = Instant::now();
    let mut seconds: Vec<Second> = Vec::new();
    let stop = Stop::default();
    let driven = {
        // Latency by the second the save finished in: a cold start and a steady state differ.
        let ticker = async {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                seconds.push(Second::of(started.elapsed(), &saves.take_window()));
            }
        };
        tokio::select! {
            r = drive(ctx, args, fx, total, &saves, &stop, &bar) => r,
            never = ticker => never,
        }
    };
    let (_, measured) = driven?;
    let last = saves.take_window();
    if last.ok + last.failed > 0 {
        seconds.push(Second::of(started.elapsed(), &last));
    }
    let cpu_after = ctx.sample();
    bar.finish();
    let saves = saves.total();
    let mut params = serde_json::to_value(args).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut params {
        map.insert(
            "perSecond".into(),
            serde_json::to_value(&seconds).unwrap_or(Value::Null),
        );
    }
    let (result, path) = report_at(
        ctx,
        Measured {
            scenario: "autosave",
            params,
            duration: measured,
            ops: saves.ok,
            latencies: vec![("save", saves.clone())],
            hub: hub_window(rss_before, cpu_before, cpu_after, None),
            headline: format!(
                "{} saves acknowledged of {total} offered at {}/s, {}",
                saves.ok,
                args.rate,
                Second::describe(&seconds)
            ),
        },
    )?;
    let line = |name: &str, pick: fn(&Second) -> f64| Line {
        name: name.to_string(),
        points: seconds.iter().map(|s| (s.end_secs, pick(s))).collect(),
    };
    let timeline = timeline_svg(
        &path,
        "autosave: latency by the second saves finished in",
        "latency (ms)",
        &[
            line("save p50", |s| s.p50_ms),
            line("save p99", |s| s.p99_ms),
        ],
        None,
    )?;
    println!("timeline: {}", timeline.display());
    Ok(result)
}

/// One second of the measured phase: the saves that finished in it.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Second {
    /// Seconds from the start of the measured phase to the end of this one.
    end_secs: f64,
    /// Saves acknowledged in it.
    ok: u64,
    /// Saves failed in it.
    failed: u64,
    /// Their p50, ms.
    p50_ms: f64,
    /// Their p99, ms.
    p99_ms: f64,
}

impl Second {
    fn of(end: Duration, r: &Recorder) -> Self {
        Second {
            end_secs: end.as_secs_f64(),
            ok: r.ok,
            failed: r.failed,
            p50_ms: r.ms(0.5),
            p99_ms: r.ms(0.99),
        }
    }

    /// "p99 by second: first 1.2 ms, then median 0.9 ms, max 3.4 ms" (the first second holds
    /// the cold start: new connections, empty caches, the first upserts of each row).
    fn describe(seconds: &[Second]) -> String {
        let Some((first, rest)) = seconds.split_first() else {
            return "no seconds measured".into();
        };
        let mut later: Vec<f64> = rest.iter().map(|s| s.p99_ms).collect();
        later.sort_by(f64::total_cmp);
        match (later.get(later.len() / 2), later.last()) {
            (Some(median), Some(max)) => format!(
                "p99 by second: first {:.1} ms, then median {median:.1} ms, max {max:.1} ms",
                first.p99_ms
            ),
            _ => format!("p99 of the only second {:.1} ms", first.p99_ms),
        }
    }
}
