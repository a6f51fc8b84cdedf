//! Types shared by the stores and the HTTP layer: roles and statuses as Postgres enums.

use serde::{Deserialize, Serialize};

/// A user's role (Postgres `user_role`). `MOBILE` is not a user role: it exists only in
/// access tokens minted for a paired phone.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[sqlx(type_name = "user_role", rename_all = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UserRole {
    /// Sits exams.
    Candidate,
    /// Everything.
    Admin,
    /// Watches, warns, terminates, reviews.
    Proctor,
}

impl UserRole {
    /// The role as it appears on the wire and in tokens.
    pub fn as_str(self) -> &'static str {
        match self {
            UserRole::Candidate => "CANDIDATE",
            UserRole::Admin => "ADMIN",
            UserRole::Proctor => "PROCTOR",
        }
    }
}

/// The role carried by an access token (a user role, or `MOBILE` for a paired phone), in
/// rooms and on the wire: one type across the crates.
pub use rooms::Role;

impl From<UserRole> for Role {
    fn from(r: UserRole) -> Self {
        match r {
            UserRole::Candidate => Role::Candidate,
            UserRole::Admin => Role::Admin,
            UserRole::Proctor => Role::Proctor,
        }
    }
}

/// An exam's lifecycle (Postgres `exam_status`): DRAFT → PUBLISHED → ARCHIVED only.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[sqlx(type_name = "exam_status", rename_all = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExamStatus {
    /// Being authored; questions may change.
    Draft,
    /// Frozen and open to assigned candidates inside its window.
    Published,
    /// Closed for good.
    Archived,
}

/// A question's type (Postgres `question_type`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[sqlx(type_name = "question_type", rename_all = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum QuestionType {
    /// Multiple choice, one or many correct options; scored automatically.
    Mcq,
    /// Code, graded by a person.
    Coding,
    /// Free text, graded by a person.
    Subjective,
}

/// A session's state (Postgres `session_status`), the wire's type: one across the crates.
pub use signaling::SessionStatus;

/// A person's review of an ended session (Postgres `review_decision`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[sqlx(type_name = "review_decision", rename_all = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReviewDecision {
    /// Nobody decided yet.
    Pending,
    /// Accepted.
    Approved,
    /// Rejected (only ever by a person).
    Rejected,
}
