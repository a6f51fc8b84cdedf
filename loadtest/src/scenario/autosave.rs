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
use crate::scenario::fixture::{Fixture, Plan};
use crate::scenario::{hub_window, report, Ctx, Measured, Pacer, Shared, Stop};
use crate::stats::RunResult;

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
    let (_, measured) = drive(ctx, args, fx, total, &saves, &Stop::default(), &bar).await?;
    let cpu_after = ctx.sample();
    bar.finish();
    let saves = saves.total();
    report(
        ctx,
        Measured {
            scenario: "autosave",
            params: serde_json::to_value(args).unwrap_or(Value::Null),
            duration: measured,
            ops: saves.ok,
            latencies: vec![("save", saves.clone())],
            hub: hub_window(rss_before, cpu_before, cpu_after, None),
            headline: format!(
                "{} saves acknowledged of {total} offered at {}/s",
                saves.ok, args.rate
            ),
        },
    )
}
