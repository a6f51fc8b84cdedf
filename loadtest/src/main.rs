//! `loadtest`: loads a Proctor Hub on this machine through its public contract only (HTTP and
//! the WebSocket protocol) and reports figures against the performance targets.
//!
//! Every run is bounded in count and time, targets loopback addresses only, shows progress,
//! and writes a JSON result plus an SVG latency plot.

use loadtest::{api, error, scenario};

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::Result;

#[derive(Parser)]
#[command(
    name = "loadtest",
    version,
    about = "Load generator for Proctor Hub (loopback only)"
)]
struct Cli {
    /// The hub's base URL (loopback only).
    #[arg(long, global = true, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// An admin's email, used to provision users, exams and sessions.
    #[arg(long, global = true, default_value = "admin@demo.proctor")]
    admin_email: String,
    /// The admin's password.
    #[arg(long, global = true, default_value = "demo-admin-pass")]
    admin_password: String,
    /// The hub's pid: sample its CPU time and RSS from /proc.
    #[arg(long, global = true)]
    hub_pid: Option<u32>,
    /// Directory for result files and plots.
    #[arg(long, global = true, default_value = "loadtest/results")]
    out: PathBuf,
    /// No progress bars.
    #[arg(long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// S1: authenticated idle sockets heartbeating.
    Idle(scenario::idle::IdleArgs),
    /// S2: signalling relay round trips in rooms of laptop + phone + proctors.
    Relay(scenario::relay::RelayArgs),
    /// S3: events fanned out to watching proctors, rate ramped until p99 exceeds a bound.
    Fanout(scenario::fanout::FanoutArgs),
    /// S4: every client drops and reconnects at once.
    Reconnect(scenario::reconnect::ReconnectArgs),
    /// S5: durable answer autosave over HTTP, open loop.
    Autosave(scenario::autosave::AutosaveArgs),
    /// S6: proctoring event ingest (WebSocket; HTTP batches when the build has them).
    Events(scenario::events::EventsArgs),
    /// A whole exam day in miniature: login, start, pair, heartbeat, events, autosave, submit.
    Exam(scenario::exam::ExamArgs),
    /// S7: synthetic VP8 published through the hub's media relay to subscribed proctors.
    Media(scenario::media::MediaArgs),
    /// S8: S1 + S2 + S5 together for a long time; RSS drift and per-window p99.9.
    Soak(scenario::soak::SoakArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(all_ok) if all_ok => ExitCode::SUCCESS,
        Ok(_) => {
            eprintln!("some operations failed (see the result file)");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<bool> {
    let api = api::Api::new(&cli.url)?;
    let admin = api
        .login_tokens(&cli.admin_email, &cli.admin_password)
        .await?;
    let ctx = scenario::Ctx {
        api,
        admin: admin.access,
        admin_refresh: Some(admin.refresh),
        hub_pid: cli.hub_pid,
        out: cli.out,
        run_id: uuid::Uuid::new_v4().simple().to_string()[..8].to_string(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        quiet: cli.quiet,
    };
    let result = match cli.scenario {
        Scenario::Idle(args) => scenario::idle::run(&ctx, args).await?,
        Scenario::Relay(args) => scenario::relay::run(&ctx, args).await?,
        Scenario::Fanout(args) => scenario::fanout::run(&ctx, args).await?,
        Scenario::Reconnect(args) => scenario::reconnect::run(&ctx, args).await?,
        Scenario::Autosave(args) => scenario::autosave::run(&ctx, args).await?,
        Scenario::Events(args) => scenario::events::run(&ctx, args).await?,
        Scenario::Exam(args) => scenario::exam::run(&ctx, args).await?,
        Scenario::Media(args) => scenario::media::run(&ctx, args).await?,
        Scenario::Soak(args) => scenario::soak::run(&ctx, args).await?,
    };
    Ok(result.all_ok)
}
