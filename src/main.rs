//! The `proctor-hub` command: `serve [--demo]`, `migrate`, `create-user`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use proctor_hub::config::ProcessEnv;
use proctor_hub::model::UserRole;
use proctor_hub::telemetry::{self, LogFormat};
use proctor_hub::{store, Application, Config, Error};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "proctor-hub",
    version,
    about = "Low-latency hub for proctored online exams"
)]
struct Cli {
    /// Optional TOML configuration file; environment variables override it.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the hub (creates the database if missing and migrates it first).
    Serve {
        /// Seed demo users and a sample exam, and print how to use them.
        #[arg(long)]
        demo: bool,
    },
    /// Create the database if missing and apply migrations, then exit.
    Migrate,
    /// Print the OpenAPI document of the HTTP API (also served at `/api/v1/openapi.json`).
    Openapi,
    /// Create a user.
    CreateUser {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// The password (or set HUB_NEW_USER_PASSWORD to keep it out of shell history).
        #[arg(long, env = "HUB_NEW_USER_PASSWORD")]
        password: String,
        #[arg(long, value_parser = parse_role)]
        role: UserRole,
    },
}

fn parse_role(s: &str) -> Result<UserRole, String> {
    match s.to_ascii_uppercase().as_str() {
        "ADMIN" => Ok(UserRole::Admin),
        "PROCTOR" => Ok(UserRole::Proctor),
        "CANDIDATE" => Ok(UserRole::Candidate),
        _ => Err("one of ADMIN, PROCTOR, CANDIDATE".into()),
    }
}

/// mimalloc instead of the system allocator: with tens of thousands of sockets, each with a
/// few small buffers freed and reallocated on other threads, glibc's per-thread arenas kept
/// far more memory resident per socket (BENCHMARKS.md, S1).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init_logging(cli.log_format);
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "proctor-hub failed");
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), Error> {
    if matches!(cli.command, Command::Openapi) {
        let spec = serde_json::to_string_pretty(&proctor_hub::http::spec())
            .map_err(|e| Error::Internal(e.to_string()))?;
        println!("{spec}");
        return Ok(());
    }
    let demo = matches!(cli.command, Command::Serve { demo: true });
    // Commands that only touch the database need no JWT secret.
    let needs_secret = matches!(cli.command, Command::Serve { .. });
    let config = Config::load(cli.config.as_deref(), &ProcessEnv, demo || !needs_secret)?;
    match cli.command {
        Command::Serve { demo } => {
            raise_fd_limit();
            let shutdown = CancellationToken::new();
            proctor_hub::app::cancel_on_signals(shutdown.clone());
            let app = Application::build(config, shutdown).await?;
            let base = app.state().config.public_url.clone();
            if demo {
                let seeded = proctor_hub::demo::seed(&app.state().db, &app.state().hasher).await?;
                println!("{}", proctor_hub::demo::instructions(&base, &seeded));
            }
            tracing::info!(addr = %app.local_addr(), "proctor hub listening");
            app.run().await
        }
        Command::Openapi => Ok(()),
        Command::Migrate => {
            store::postgres::ensure_database(&config.database_url).await?;
            let db = store::postgres::connect(&config.database_url).await?;
            store::postgres::migrate(&db).await
        }
        Command::CreateUser {
            email,
            name,
            password,
            role,
        } => {
            proctor_hub::http::users::validate_email(&email)?;
            proctor_hub::http::users::validate_name(&name)?;
            proctor_hub::http::users::validate_password(&password)?;
            store::postgres::ensure_database(&config.database_url).await?;
            let db = store::postgres::connect(&config.database_url).await?;
            store::postgres::migrate(&db).await?;
            let hash = proctor_hub::auth::password::hash_blocking(&password)?;
            let user = store::users::insert(&db, &email, &name, &hash, role).await?;
            println!(
                "created {} {} ({})",
                user.role.as_str(),
                user.email,
                user.id
            );
            Ok(())
        }
    }
}

/// Every socket is a file descriptor, and the usual soft limit (1 024) would stop the hub
/// long before its memory does: raise it to the hard limit, and say what it is.
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct we own.
    let raised = unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && {
            if lim.rlim_cur < lim.rlim_max {
                let want = libc::rlimit {
                    rlim_cur: lim.rlim_max,
                    rlim_max: lim.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                    lim = want;
                }
            }
            true
        }
    };
    if raised {
        tracing::info!(
            limit = lim.rlim_cur,
            "file descriptors (each socket takes one; raise the hard limit for more)"
        );
    }
}
