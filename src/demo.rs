//! Demo mode: seeds an admin, a proctor, two candidates and a published sample exam (MCQ,
//! coding and subjective questions) assigned to both candidates, then prints how to use them.
//! Seeding is idempotent: running it again resets the demo passwords and keeps everything else.

use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::auth::password::PasswordHasher;
use crate::error::Error;
use crate::model::UserRole;

/// The seeded accounts: (email, name, password, role).
pub const DEMO_USERS: [(&str, &str, &str, UserRole); 4] = [
    (
        "admin@demo.proctor",
        "Ada Admin",
        "demo-admin-pass",
        UserRole::Admin,
    ),
    (
        "proctor@demo.proctor",
        "Pat Proctor",
        "demo-proctor-pass",
        UserRole::Proctor,
    ),
    (
        "alice@demo.proctor",
        "Alice Candidate",
        "demo-alice-pass",
        UserRole::Candidate,
    ),
    (
        "bob@demo.proctor",
        "Bob Candidate",
        "demo-bob-pass",
        UserRole::Candidate,
    ),
];

/// Title of the seeded exam (its key for idempotency).
pub const DEMO_EXAM_TITLE: &str = "Demo: Rust fundamentals";

/// What was seeded.
#[derive(Debug)]
pub struct Seeded {
    /// User ids in the order of [`DEMO_USERS`].
    pub user_ids: Vec<Uuid>,
    /// The sample exam.
    pub exam_id: Uuid,
}

/// Seeds the demo data, reporting progress as it goes.
pub async fn seed(db: &PgPool, hasher: &PasswordHasher) -> Result<Seeded, Error> {
    let total = DEMO_USERS.len() + 1;
    let mut user_ids = Vec::new();
    for (i, (email, name, password, role)) in DEMO_USERS.iter().enumerate() {
        let hash = hasher.hash((*password).to_string()).await?;
        let id: Uuid = sqlx::query_scalar(
            "INSERT INTO users (id, email, name, password_hash, role) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (email) DO UPDATE SET password_hash = EXCLUDED.password_hash,
                 role = EXCLUDED.role, is_active = true, updated_at = now()
             RETURNING id",
        )
        .bind(Uuid::new_v4())
        .bind(email)
        .bind(name)
        .bind(&hash)
        .bind(role)
        .fetch_one(db)
        .await?;
        tracing::info!("seeding {}/{}: user {email}", i + 1, total);
        user_ids.push(id);
    }

    let mut tx = db.begin().await?;
    let existing: Option<Uuid> =
        sqlx::query_scalar("SELECT id FROM exams WHERE title = $1 LIMIT 1")
            .bind(DEMO_EXAM_TITLE)
            .fetch_optional(&mut *tx)
            .await?;
    let exam_id = match existing {
        Some(id) => id,
        None => {
            let id = Uuid::new_v4();
            sqlx::query(
                "INSERT INTO exams (id, title, instructions, status, duration_minutes, starts_at,
                                    ends_at, created_by_user_id, randomize_questions)
                 VALUES ($1, $2, $3, 'PUBLISHED', 60, now() - interval '5 minutes',
                         now() + interval '30 days', $4, true)",
            )
            .bind(id)
            .bind(DEMO_EXAM_TITLE)
            .bind("Answer every question. Keep your camera on and your phone paired as a second camera.")
            .bind(user_ids[0])
            .execute(&mut *tx)
            .await?;
            let questions = [
                (
                    "MCQ",
                    "Which of these types are `Copy`?",
                    json!([{"id": "a", "text": "u32"}, {"id": "b", "text": "String"},
                           {"id": "c", "text": "&str"}, {"id": "d", "text": "Vec<u8>"}]),
                    json!({"correct": ["a", "c"]}),
                    4,
                ),
                (
                    "MCQ",
                    "What does `?` do on an `Err` value?",
                    json!([{"id": "a", "text": "Panics"}, {"id": "b", "text": "Returns it early from the function"},
                           {"id": "c", "text": "Ignores it"}]),
                    json!({"correct": ["b"]}),
                    2,
                ),
                (
                    "CODING",
                    "Write `fn median(v: &mut [i64]) -> Option<f64>`.",
                    json!([]),
                    serde_json::Value::Null,
                    10,
                ),
                (
                    "SUBJECTIVE",
                    "Explain when you would choose an actor over a mutex.",
                    json!([]),
                    serde_json::Value::Null,
                    5,
                ),
            ];
            for (i, (kind, prompt, options, key, points)) in questions.into_iter().enumerate() {
                sqlx::query(
                    "INSERT INTO questions (id, exam_id, type, prompt, options_json, answer_key_json,
                                            points, order_index)
                     VALUES ($1, $2, $3::question_type, $4, $5, $6, $7, $8)",
                )
                .bind(Uuid::new_v4())
                .bind(id)
                .bind(kind)
                .bind(prompt)
                .bind(options)
                .bind(if key.is_null() { None } else { Some(key) })
                .bind(points)
                .bind(i as i32)
                .execute(&mut *tx)
                .await?;
            }
            id
        }
    };
    for candidate in &user_ids[2..] {
        sqlx::query(
            "INSERT INTO exam_assignments (id, exam_id, candidate_id) VALUES ($1, $2, $3)
             ON CONFLICT (exam_id, candidate_id) DO NOTHING",
        )
        .bind(Uuid::new_v4())
        .bind(exam_id)
        .bind(candidate)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    tracing::info!("seeding {total}/{total}: exam {DEMO_EXAM_TITLE:?}");
    Ok(Seeded { user_ids, exam_id })
}

/// The text printed after seeding: accounts and ready-to-paste commands.
pub fn instructions(base: &str, seeded: &Seeded) -> String {
    let mut out = String::new();
    out.push_str("\n=== Proctor Hub demo ===\n");
    out.push_str(&format!(
        "API:      {base}/api/v1   (health: {base}/healthz, metrics: {base}/metrics)\n"
    ));
    out.push_str(&format!(
        "Exam:     {DEMO_EXAM_TITLE} (id {})\n",
        seeded.exam_id
    ));
    out.push_str(&format!(
        "Start:    open {base}/app and log in as alice@demo.proctor (password demo-alice-pass) \
         to take the exam; the phone opens the {base}/pair link of the exam page's QR code\n"
    ));
    out.push_str(&format!(
        "Media:    {base}/app/laptop (publish), {base}/app/proctor (watch a room's tracks)\n"
    ));
    out.push_str("Accounts:\n");
    for (email, _, password, role) in DEMO_USERS {
        out.push_str(&format!(
            "  {:<9} {email:<22} password: {password}\n",
            role.as_str()
        ));
    }
    out.push_str(&format!(
        "\nTry it:\n  curl -s {base}/api/v1/auth/login -H 'content-type: application/json' \\\n    \
         -d '{{\"email\":\"admin@demo.proctor\",\"password\":\"demo-admin-pass\"}}'\n  \
         curl -s {base}/api/v1/auth/refresh -H 'content-type: application/json' \\\n    \
         -d '{{\"refreshToken\":\"<refreshToken from login>\"}}'\n  \
         curl -s {base}/api/v1/me -H 'authorization: Bearer <accessToken>'\n\n"
    ));
    out
}
