//! What scenarios provision through the admin API, and its clean-up.
//!
//! Logins cost the hub an argon2 hash each, so a fixture creates few candidate accounts and
//! gives each one a session in several exams (one session per candidate and exam): `sessions`
//! sessions cost about `2 × candidates` hashes, done once in a bounded-concurrency
//! preparation phase with a progress bar. Tokens are reused for the whole run (15 min).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::{stream, StreamExt, TryStreamExt};
use uuid::Uuid;

use crate::api::{StartedSession, Tokens};
use crate::error::{Error, Result};
use crate::scenario::Ctx;

/// Requests in flight while provisioning (logins queue behind the hub's hash semaphore).
const PREP_CONCURRENCY: usize = 8;

/// What to provision.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Sessions wanted.
    pub sessions: usize,
    /// At most this many candidate accounts (each takes several sessions when fewer than
    /// `sessions`).
    pub max_candidates: usize,
    /// SUBJECTIVE questions per exam.
    pub questions: usize,
    /// Pair a phone with every session (a MOBILE token each).
    pub phones: bool,
    /// Create and log in a proctor account.
    pub proctor: bool,
}

/// A candidate account.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Its id.
    pub id: Uuid,
    /// Its access token from the login (see [`Fixture::live_token`] for long runs).
    pub token: String,
    /// Its login, to log in again should refreshing fail.
    pub email: String,
    /// Its password.
    pub password: String,
}

/// The candidates' current tokens, renewed by [`Fixture::refresh_tokens`] while a long run
/// (the soak) reads them.
#[derive(Debug, Clone, Default)]
pub struct LiveTokens(Arc<RwLock<Vec<Tokens>>>);

/// One started session.
#[derive(Debug, Clone)]
pub struct Session {
    /// What the start call returned.
    pub s: StartedSession,
    /// The exam.
    pub exam: Uuid,
    /// Index into [`Fixture::candidates`].
    pub candidate: usize,
    /// The paired phone's MOBILE token.
    pub phone: Option<String>,
}

/// Everything a scenario provisioned.
#[derive(Debug, Default)]
pub struct Fixture {
    /// Published exams.
    pub exams: Vec<Uuid>,
    /// Candidate accounts.
    pub candidates: Vec<Candidate>,
    /// Started sessions.
    pub sessions: Vec<Session>,
    /// A proctor's (id, access token).
    pub proctor: Option<(Uuid, String)>,
    /// The candidates' current tokens.
    pub live: LiveTokens,
}

impl Fixture {
    /// Provisions `plan` with exams open for two hours.
    pub async fn provision(ctx: &Ctx, plan: Plan) -> Result<Fixture> {
        Self::provision_for(ctx, plan, 120).await
    }

    /// Provisions `plan` with exams open (and sessions lasting) `minutes` minutes.
    pub async fn provision_for(ctx: &Ctx, plan: Plan, minutes: u32) -> Result<Fixture> {
        if plan.sessions == 0 || plan.max_candidates == 0 {
            return Err(Error::Usage(
                "sessions and candidates must be positive".into(),
            ));
        }
        let per_candidate = plan.sessions.div_ceil(plan.max_candidates);
        let n_candidates = plan.sessions.div_ceil(per_candidate);
        let mut fx = Fixture::default();
        let bar = ctx.bar(n_candidates as u64, "accounts");
        let api = &ctx.api;
        let logged_in: Vec<(Candidate, Tokens)> = stream::iter(0..n_candidates)
            .map(|_| {
                let bar = bar.clone();
                async move {
                    let (id, email, password) = api
                        .create_user(&ctx.admin, "CANDIDATE", &ctx.run_id)
                        .await?;
                    let tokens = api.login_tokens(&email, &password).await?;
                    bar.inc(1);
                    let c = Candidate {
                        id,
                        token: tokens.access.clone(),
                        email,
                        password,
                    };
                    Ok::<_, Error>((c, tokens))
                }
            })
            .buffered(PREP_CONCURRENCY)
            .try_collect()
            .await?;
        bar.finish();
        let (candidates, tokens): (Vec<_>, Vec<_>) = logged_in.into_iter().unzip();
        fx.candidates = candidates;
        fx.live = LiveTokens(Arc::new(RwLock::new(tokens)));
        if plan.proctor {
            let (id, email, password) = api.create_user(&ctx.admin, "PROCTOR", &ctx.run_id).await?;
            fx.proctor = Some((id, api.login(&email, &password).await?));
        }
        let ids: Vec<Uuid> = fx.candidates.iter().map(|c| c.id).collect();
        for _ in 0..per_candidate {
            let exam = api
                .published_exam_for(&ctx.admin, &ctx.run_id, plan.questions, minutes)
                .await?;
            api.assign(&ctx.admin, exam, &ids).await?;
            fx.exams.push(exam);
        }
        let wanted: Vec<(usize, Uuid)> = fx
            .exams
            .iter()
            .flat_map(|e| (0..n_candidates).map(move |c| (c, *e)))
            .take(plan.sessions)
            .collect();
        let bar = ctx.bar(wanted.len() as u64, "sessions");
        let cands = &fx.candidates;
        fx.sessions = stream::iter(wanted)
            .map(|(c, exam)| {
                let bar = bar.clone();
                async move {
                    let token = &cands[c].token;
                    let s = api.start_session(token, exam).await?;
                    let phone = if plan.phones {
                        Some(api.pair_phone(token, s.id).await?)
                    } else {
                        None
                    };
                    bar.inc(1);
                    Ok::<_, Error>(Session {
                        s,
                        exam,
                        candidate: c,
                        phone,
                    })
                }
            })
            .buffered(PREP_CONCURRENCY * 2)
            .try_collect()
            .await?;
        bar.finish();
        Ok(fx)
    }

    /// The laptop token of session `i`.
    pub fn laptop_token(&self, i: usize) -> &str {
        &self.candidates[self.sessions[i].candidate].token
    }

    /// The current laptop token of session `i` (renewed by [`Fixture::refresh_tokens`]).
    pub fn live_token(&self, i: usize) -> String {
        let c = self.sessions[i].candidate;
        let live = self.live.0.read().unwrap_or_else(|e| e.into_inner());
        live.get(c)
            .map(|t| t.access.clone())
            .unwrap_or_else(|| self.candidates[c].token.clone())
    }

    /// How long the candidates' access tokens live (the shortest).
    pub fn token_ttl(&self) -> Duration {
        let live = self.live.0.read().unwrap_or_else(|e| e.into_inner());
        live.iter()
            .map(|t| t.expires_in)
            .min()
            .unwrap_or(Duration::from_secs(900))
    }

    /// Renews every candidate's tokens (refresh, or log in again if that fails).
    pub async fn refresh_tokens(&self, ctx: &Ctx) -> Result<()> {
        let olds: Vec<Tokens> = self
            .live
            .0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let api = &ctx.api;
        let fresh: Vec<Tokens> = stream::iter(olds.iter().zip(&self.candidates))
            .map(|(old, c)| async move {
                match api.refresh(&old.refresh).await {
                    Ok(t) => Ok(t),
                    Err(_) => api.login_tokens(&c.email, &c.password).await,
                }
            })
            .buffered(PREP_CONCURRENCY)
            .try_collect()
            .await?;
        *self.live.0.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(())
    }

    /// Archives the exams and deactivates the accounts (which also closes their sockets).
    pub async fn cleanup(&self, ctx: &Ctx) -> Result<()> {
        let api = &ctx.api;
        for exam in &self.exams {
            api.archive(&ctx.admin, *exam).await?;
        }
        let mut users: Vec<Uuid> = self.candidates.iter().map(|c| c.id).collect();
        users.extend(self.proctor.as_ref().map(|p| p.0));
        stream::iter(users)
            .map(|u| api.deactivate(&ctx.admin, u))
            .buffer_unordered(PREP_CONCURRENCY * 2)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }
}
