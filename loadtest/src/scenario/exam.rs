//! A whole exam day in miniature. Candidates arrive over `--arrival-secs`; each logs in, starts
//! its session, pairs a phone, opens the laptop and phone sockets and joins the room, then for
//! `--exam-secs` heartbeats from both devices, reports events from the laptop and autosaves
//! answers over HTTP, and finally submits and waits for `session-ended`. Proctors watch the
//! exam throughout and must see every session reach SUBMITTED. Every step is timed from its
//! intended time; accounts and the exam are created in a preparation phase.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use futures::{stream, StreamExt, TryStreamExt};
use serde_json::{json, Value};
use signaling::{
    ClientMessage, EventReport, EventType, ExamId, ServerMessage, SessionStatus, Severity, Watch,
};
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::scenario::{hub_window, report, Ctx, Measured, Stop};
use crate::stats::{Recorder, RunResult};
use crate::ws::{Rx, Socket};

/// Knobs of the exam-day scenario.
#[derive(Debug, Clone, Args, serde::Serialize)]
pub struct ExamArgs {
    /// Candidates sitting the exam.
    #[arg(long, default_value_t = 50)]
    pub candidates: usize,
    /// Proctor sockets watching it.
    #[arg(long, default_value_t = 3)]
    pub proctors: usize,
    /// Questions in the exam.
    #[arg(long, default_value_t = 5)]
    pub questions: usize,
    /// Candidates arrive spread over this many seconds.
    #[arg(long, default_value_t = 10)]
    pub arrival_secs: u64,
    /// Each candidate works this long before submitting, seconds.
    #[arg(long, default_value_t = 30)]
    pub exam_secs: u64,
    /// Heartbeat interval of both devices, ms.
    #[arg(long, default_value_t = 2000)]
    pub heartbeat_ms: u64,
    /// The laptop reports an event every this many heartbeats.
    #[arg(long, default_value_t = 3)]
    pub event_every: u64,
    /// The laptop autosaves an answer every this many heartbeats.
    #[arg(long, default_value_t = 1)]
    pub save_every: u64,
}

/// Latencies of each step of a candidate's day.
#[derive(Default, Clone)]
struct Day {
    login: Recorder,
    start: Recorder,
    pair: Recorder,
    connect: Recorder,
    heartbeat: Recorder,
    event: Recorder,
    save: Recorder,
    submit: Recorder,
    ended: Recorder,
}

impl Day {
    fn merge(&mut self, o: &Day) {
        for (a, b) in self.parts_mut().into_iter().zip(o.parts()) {
            a.merge(b);
        }
    }
    fn parts(&self) -> [&Recorder; 9] {
        [
            &self.save,
            &self.heartbeat,
            &self.event,
            &self.login,
            &self.start,
            &self.pair,
            &self.connect,
            &self.submit,
            &self.ended,
        ]
    }
    fn parts_mut(&mut self) -> [&mut Recorder; 9] {
        [
            &mut self.save,
            &mut self.heartbeat,
            &mut self.event,
            &mut self.login,
            &mut self.start,
            &mut self.pair,
            &mut self.connect,
            &mut self.submit,
            &mut self.ended,
        ]
    }
}

/// Sends `msg` and waits for the reply `want` picks; other pushes are skipped.
async fn ask(
    s: &mut Socket,
    msg: &ClientMessage,
    want: impl Fn(&ServerMessage) -> bool,
) -> Result<()> {
    s.send(msg).await?;
    loop {
        let m = s.recv().await?;
        if want(&m) {
            return Ok(());
        }
        if let ServerMessage::Error { code, message, .. } = m {
            return Err(Error::Usage(format!("{code}: {message}")));
        }
    }
}

/// Waits (bounded) for `session-ended`.
async fn ended(s: &mut Socket) -> bool {
    let wait = async {
        loop {
            match s.recv().await {
                Ok(ServerMessage::SessionEnded { .. }) => return true,
                Ok(_) => {}
                // The hub closes with 4503 right after `session-ended`; a close first is a miss.
                Err(_) => return false,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .unwrap_or(false)
}

fn hb_ack(m: &ServerMessage) -> bool {
    matches!(m, ServerMessage::HeartbeatAck { .. })
}

/// One candidate's day.
async fn candidate(
    ctx: Arc<(crate::api::Api, String)>,
    args: ExamArgs,
    exam: uuid::Uuid,
    email: String,
    password: String,
    arrive: Instant,
) -> Day {
    let mut d = Day::default();
    let (api, url) = (&ctx.0, &ctx.1);
    let t = Instant::now();
    let Ok(token) = api.login(&email, &password).await else {
        d.login.fail();
        return d;
    };
    d.login.ok(arrive.elapsed().max(t.elapsed()));
    let t = Instant::now();
    let Ok(session) = api.start_session(&token, exam).await else {
        d.start.fail();
        return d;
    };
    d.start.ok(t.elapsed());
    let t = Instant::now();
    let Ok(phone_token) = api.pair_phone(&token, session.id).await else {
        d.pair.fail();
        return d;
    };
    d.pair.ok(t.elapsed());
    let mut socks = Vec::new();
    for tok in [&token, &phone_token] {
        let t = Instant::now();
        let joined = match Socket::connect(url, tok).await {
            Ok((mut s, _)) => s.join(session.room).await.map(|_| s),
            Err(e) => Err(e),
        };
        match joined {
            Ok(s) => {
                d.connect.ok(t.elapsed());
                socks.push(s);
            }
            Err(_) => {
                d.connect.fail();
                return d;
            }
        }
    }
    let mut phone = socks.pop().expect("two sockets");
    let mut laptop = socks.pop().expect("two sockets");
    let interval = Duration::from_millis(args.heartbeat_ms);
    let end = Instant::now() + Duration::from_secs(args.exam_secs);
    let phone_task = tokio::spawn(async move {
        let mut hb = Recorder::default();
        let mut due = Instant::now();
        while due < end {
            tokio::time::sleep_until(due).await;
            match ask(&mut phone, &ClientMessage::Heartbeat, hb_ack).await {
                Ok(()) => hb.ok(due.elapsed()),
                Err(_) => {
                    hb.fail();
                    return (hb, phone, false);
                }
            }
            due += interval;
        }
        (hb, phone, true)
    });
    let mut due = Instant::now();
    let mut tick = 0u64;
    let mut versions = vec![0u64; session.questions.len()];
    while due < end {
        tokio::time::sleep_until(due).await;
        match ask(&mut laptop, &ClientMessage::Heartbeat, hb_ack).await {
            Ok(()) => d.heartbeat.ok(due.elapsed()),
            Err(_) => d.heartbeat.fail(),
        }
        if tick % args.event_every.max(1) == 0 {
            let ev = ClientMessage::Event(EventReport {
                event_id: signaling::EventId::new_v4(),
                event_type: EventType::new("TAB_HIDDEN").expect("valid"),
                severity: Severity::new(2).expect("valid"),
                timestamp: None,
                meta: None,
                source: None,
                frame_ref: None,
            });
            match ask(&mut laptop, &ev, |m| {
                matches!(m, ServerMessage::EventAck { .. })
            })
            .await
            {
                Ok(()) => d.event.ok(due.elapsed()),
                Err(_) => d.event.fail(),
            }
        }
        if tick % args.save_every.max(1) == 0 && !versions.is_empty() {
            let q = (tick as usize) % versions.len();
            versions[q] += 1;
            let text = format!("answer {} of question {q}", versions[q]);
            match api
                .save_answer(&token, session.id, session.questions[q], versions[q], &text)
                .await
            {
                Ok(v) if v >= versions[q] => d.save.ok(due.elapsed()),
                _ => d.save.fail(),
            }
        }
        tick += 1;
        due += interval;
    }
    let (phone_hb, mut phone, phone_ok) = match phone_task.await {
        Ok(r) => r,
        Err(_) => {
            d.heartbeat.fail();
            return d;
        }
    };
    d.heartbeat.merge(&phone_hb);
    let t = Instant::now();
    match api.submit(&token, session.id).await {
        Ok(status) if status == "SUBMITTED" => d.submit.ok(t.elapsed()),
        _ => d.submit.fail(),
    }
    for (s, alive) in [(&mut laptop, true), (&mut phone, phone_ok)] {
        if alive && ended(s).await {
            d.ended.ok(t.elapsed());
        } else {
            d.ended.fail();
        }
    }
    laptop.close().await;
    phone.close().await;
    d
}

/// A proctor's view: session-updates received and sessions seen SUBMITTED.
async fn proctor(mut rx: Rx, stop: Stop) -> (u64, HashSet<signaling::SessionId>, bool) {
    let (mut updates, mut submitted) = (0u64, HashSet::new());
    loop {
        match rx.recv().await {
            Ok(ServerMessage::SessionUpdate(v)) => {
                updates += 1;
                if v.status == SessionStatus::Submitted {
                    submitted.insert(v.session_id);
                }
            }
            Ok(_) => {}
            Err(_) => return (updates, submitted, stop.is_set()),
        }
    }
}

/// Runs the exam day.
pub async fn run(ctx: &Ctx, args: ExamArgs) -> Result<RunResult> {
    if args.candidates == 0 || args.heartbeat_ms == 0 || args.exam_secs == 0 {
        return Err(Error::Usage(
            "candidates, heartbeat and exam length must be positive".into(),
        ));
    }
    crate::sys::ensure_fds(args.candidates as u64 * 3 + args.proctors as u64)?;
    let api = &ctx.api;
    let bar = ctx.bar(args.candidates as u64 + 1, "accounts");
    let accounts: Vec<(uuid::Uuid, String, String)> = stream::iter(0..args.candidates)
        .map(|_| {
            let bar = bar.clone();
            async move {
                let a = api.create_user(&ctx.admin, "CANDIDATE", &ctx.run_id).await;
                bar.inc(1);
                a
            }
        })
        .buffered(8)
        .try_collect()
        .await?;
    let (proctor_id, pe, pp) = api.create_user(&ctx.admin, "PROCTOR", &ctx.run_id).await?;
    let proctor_token = api.login(&pe, &pp).await?;
    bar.finish();
    let exam = api
        .published_exam(&ctx.admin, &ctx.run_id, args.questions)
        .await?;
    let ids: Vec<uuid::Uuid> = accounts.iter().map(|a| a.0).collect();
    api.assign(&ctx.admin, exam, &ids).await?;
    let result = measure(ctx, &args, exam, &accounts, &proctor_token).await;
    api.archive(&ctx.admin, exam).await?;
    for u in ids.into_iter().chain([proctor_id]) {
        api.deactivate(&ctx.admin, u).await?;
    }
    result
}

async fn measure(
    ctx: &Ctx,
    args: &ExamArgs,
    exam: uuid::Uuid,
    accounts: &[(uuid::Uuid, String, String)],
    proctor_token: &str,
) -> Result<RunResult> {
    let url = ctx.api.ws_url();
    let stop = Stop::default();
    let mut proctors = Vec::new();
    for _ in 0..args.proctors {
        let (mut s, _) = Socket::connect(&url, proctor_token).await?;
        ask(
            &mut s,
            &ClientMessage::Watch(Watch {
                exam_id: ExamId::from_uuid(exam),
            }),
            |m| matches!(m, ServerMessage::SessionSnapshot { .. }),
        )
        .await?;
        let (tx, rx) = s.split();
        proctors.push((tx, tokio::spawn(proctor(rx, stop.clone()))));
    }
    let rss_before = ctx.sample();
    let cpu_before = ctx.sample();
    let t0 = Instant::now();
    let shared = Arc::new((ctx.api.clone(), url.clone()));
    let bar = ctx.bar(args.candidates as u64, "candidates");
    let gap = Duration::from_secs_f64(args.arrival_secs as f64 / args.candidates as f64);
    let mut tasks = Vec::new();
    for (i, (_, email, password)) in accounts.iter().enumerate() {
        let arrive = t0 + gap * i as u32;
        let (shared, args, email, password, bar) = (
            shared.clone(),
            args.clone(),
            email.clone(),
            password.clone(),
            bar.clone(),
        );
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(arrive).await;
            let d = candidate(shared, args, exam, email, password, arrive).await;
            bar.inc(1);
            d
        }));
    }
    let mut day = Day::default();
    for t in tasks {
        match t.await {
            Ok(d) => day.merge(&d),
            Err(_) => day.submit.fail(),
        }
    }
    bar.finish();
    // The last session-updates trail the submits by a hop through the hub.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let measured = t0.elapsed();
    let cpu_after = ctx.sample();
    stop.set();
    let mut watch = Recorder::default();
    let mut delivered = 0;
    for (tx, task) in proctors {
        tx.close().await;
        match task.await {
            Ok((updates, submitted, _)) if submitted.len() == args.candidates => {
                delivered += updates;
                watch.ok(Duration::from_micros(1));
            }
            Ok((updates, _, _)) => {
                delivered += updates;
                watch.fail();
            }
            Err(_) => watch.fail(),
        }
    }
    let ops: u64 = day.parts().iter().map(|r| r.ok).sum();
    let mut params = serde_json::to_value(args).unwrap_or(Value::Null);
    params["updatesDeliveredToProctors"] = json!(delivered);
    let names = [
        "autosave",
        "heartbeat",
        "event",
        "login",
        "start",
        "pair",
        "connect+join",
        "submit",
        "session-ended",
    ];
    let mut latencies: Vec<(&'static str, Recorder)> = names
        .into_iter()
        .zip(day.parts().into_iter().cloned())
        .collect();
    latencies.push(("proctor saw every submit", watch));
    report(
        ctx,
        Measured {
            scenario: "exam",
            params,
            duration: measured,
            ops,
            latencies,
            hub: hub_window(rss_before, cpu_before, cpu_after, None),
            headline: format!(
                "{} candidates submitted, {} saves, {} events, {} heartbeats, {} updates to {} proctors",
                day.submit.ok, day.save.ok, day.event.ok, day.heartbeat.ok, delivered, args.proctors
            ),
        },
    )
}
