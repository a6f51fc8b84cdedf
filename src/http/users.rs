//! `/users`: user administration (ADMIN only). Deactivating a user revokes every refresh token
//! and tells the real-time side to close their sockets. Every change is audited.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::audit::{self, AuditEntry};
use crate::auth::refresh;
use crate::error::Error;
use crate::http::extract::{Admin, Json, Path, Query};
use crate::http::page::{self, Cursor, Page};
use crate::model::UserRole;
use crate::state::{AppState, HubSignal};
use crate::store::users::{self, UserRow, UserView};

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateUser {
    #[schema(max_length = 320, example = "ada@example.edu")]
    email: String,
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    #[schema(min_length = 8, max_length = 256)]
    password: String,
    role: UserRole,
}

/// Checks an email's shape (one `@`, something either side, no spaces, sane length).
pub fn validate_email(email: &str) -> Result<(), Error> {
    let e = email.trim();
    let ok = e.len() <= 320
        && !e.contains(char::is_whitespace)
        && e.split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.contains('@'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid("email", "not a valid email address"))
    }
}

/// Checks a display name.
pub fn validate_name(name: &str) -> Result<(), Error> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 200 {
        return Err(Error::invalid("name", "between 1 and 200 characters"));
    }
    Ok(())
}

/// Checks a new password (length only, as NIST SP 800-63B recommends).
pub fn validate_password(password: &str) -> Result<(), Error> {
    let n = password.chars().count();
    if !(8..=256).contains(&n) {
        return Err(Error::invalid("password", "between 8 and 256 characters"));
    }
    Ok(())
}

/// Create a user (ADMIN).
#[utoipa::path(post,
    path = "/api/v1/users",
    tag = "users",
    request_body = CreateUser,
    responses((status = 201, description = "Created", body = UserView),
        (status = 409, description = "`EMAIL_TAKEN`", body = crate::http::openapi::ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Json(body): Json<CreateUser>,
) -> Result<(StatusCode, Json<UserView>), Error> {
    validate_email(&body.email)?;
    validate_name(&body.name)?;
    validate_password(&body.password)?;
    let hash = state.hasher.hash(body.password).await?;
    let mut tx = state.db.begin().await?;
    let user = users::insert(&mut *tx, &body.email, &body.name, &hash, body.role).await?;
    audit::record(
        &mut *tx,
        AuditEntry {
            session_id: None,
            actor_id: Some(admin.user_id),
            target_user_id: Some(user.id),
            action_type: "USER_CREATED",
            reason: "",
            payload: Some(json!({"email": user.email, "role": user.role})),
        },
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(user.into())))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    role: Option<UserRole>,
    /// Part of the email or name, any case (picking candidates for an exam).
    q: Option<String>,
    // Not `#[serde(flatten)]`: flattening breaks number parsing in query strings.
    /// Items per page (1..=500, default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    cursor: Option<String>,
}

/// List users (ADMIN), optionally by role.
#[utoipa::path(get,
    path = "/api/v1/users",
    tag = "users",
    params(ListQuery),
    responses((status = 200, description = "A page of users", body = Page<UserView>)))]
async fn list(
    State(state): State<AppState>,
    Admin(_admin): Admin,
    Query(q): Query<ListQuery>,
) -> Result<Json<Page<UserView>>, Error> {
    let (limit, cursor) = page::parse(q.limit, q.cursor)?;
    let rows: Vec<UserRow> = sqlx::query_as(
        "SELECT * FROM users
          WHERE ($1::user_role IS NULL OR role = $1)
            AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3))
            AND ($5::text IS NULL OR email ILIKE $5 ESCAPE '\\' OR name ILIKE $5 ESCAPE '\\')
          ORDER BY created_at, id LIMIT $4",
    )
    .bind(q.role)
    .bind(cursor.map(|c| c.at))
    .bind(cursor.map(|c| c.id))
    .bind(limit + 1)
    .bind(search_pattern(q.q.as_deref())?)
    .fetch_all(&state.db)
    .await?;
    let page = Page::from_rows(rows, limit, |u| Cursor {
        at: u.created_at,
        id: u.id,
    });
    Ok(Json(Page {
        items: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// `%part%` for ILIKE, with the pattern characters of `part` escaped; none for an empty `q`.
fn search_pattern(q: Option<&str>) -> Result<Option<String>, Error> {
    let Some(q) = q.map(str::trim).filter(|q| !q.is_empty()) else {
        return Ok(None);
    };
    if q.chars().count() > 100 {
        return Err(Error::invalid("q", "at most 100 characters"));
    }
    let escaped: String = q
        .chars()
        .flat_map(|c| match c {
            '%' | '_' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    Ok(Some(format!("%{escaped}%")))
}

/// One user (ADMIN).
#[utoipa::path(get,
    path = "/api/v1/users/{id}",
    tag = "users",
    params(("id" = Uuid, Path, description = "User id")),
    responses((status = 200, description = "The user", body = UserView)))]
async fn show(
    State(state): State<AppState>,
    Admin(_admin): Admin,
    Path(id): Path<Uuid>,
) -> Result<Json<UserView>, Error> {
    let user = users::by_id(&state.db, id)
        .await?
        .ok_or(Error::NotFound { what: "user" })?;
    Ok(Json(user.into()))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UpdateUser {
    name: Option<String>,
    role: Option<UserRole>,
    is_active: Option<bool>,
    password: Option<String>,
}

/// Change a user (ADMIN): name, role, active. Deactivating revokes their refresh tokens and closes their sockets.
#[utoipa::path(patch,
    path = "/api/v1/users/{id}",
    tag = "users",
    params(("id" = Uuid, Path, description = "User id")),
    request_body = UpdateUser,
    responses((status = 200, description = "Updated", body = UserView)))]
async fn update(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(id): Path<Uuid>,
    Json(body): Json<UpdateUser>,
) -> Result<Json<UserView>, Error> {
    if let Some(n) = &body.name {
        validate_name(n)?;
    }
    if id == admin.user_id
        && (body.is_active == Some(false) || body.role.is_some_and(|r| r != UserRole::Admin))
    {
        return Err(Error::conflict(
            "CANNOT_DEMOTE_SELF",
            "an admin cannot deactivate or demote their own account",
        ));
    }
    let hash = match body.password {
        Some(p) => {
            validate_password(&p)?;
            Some(state.hasher.hash(p).await?)
        }
        None => None,
    };
    let mut tx = state.db.begin().await?;
    let before = sqlx::query_as::<_, UserRow>("SELECT * FROM users WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(Error::NotFound { what: "user" })?;
    let user: UserRow = sqlx::query_as(
        "UPDATE users SET name = COALESCE($2, name), role = COALESCE($3, role),
                is_active = COALESCE($4, is_active), password_hash = COALESCE($5, password_hash),
                updated_at = now()
          WHERE id = $1 RETURNING *",
    )
    .bind(id)
    .bind(body.name.as_deref().map(str::trim))
    .bind(body.role)
    .bind(body.is_active)
    .bind(hash.as_deref())
    .fetch_one(&mut *tx)
    .await?;
    // A deactivated user, a changed role or a new password: existing logins must end.
    let revoke =
        (before.is_active && !user.is_active) || before.role != user.role || hash.is_some();
    let revoked = if revoke {
        refresh::revoke_all_for_user(&mut tx, id).await?
    } else {
        vec![]
    };
    audit::record(
        &mut *tx,
        AuditEntry {
            session_id: None,
            actor_id: Some(admin.user_id),
            target_user_id: Some(id),
            action_type: if before.is_active && !user.is_active {
                "USER_DEACTIVATED"
            } else {
                "USER_UPDATED"
            },
            reason: "",
            payload: Some(json!({
                "name": body.name, "role": body.role, "isActive": body.is_active,
                "passwordChanged": hash.is_some(), "revokedTokens": revoked.len(),
            })),
        },
    )
    .await?;
    tx.commit().await?;
    state.active_users.remove(&id);
    if revoke {
        refresh::forget_cached(&state.redis, &state.keys, &revoked).await;
        state.signal(HubSignal::UserRevoked { user_id: id });
    }
    Ok(Json(user.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_and_password_rules() {
        assert!(validate_email("a@b.co").is_ok());
        assert!(validate_email(" A@B.CO ").is_ok());
        for bad in ["", "a", "a@b", "@b.co", "a b@c.de", "a@b@c.de"] {
            assert!(validate_email(bad).is_err(), "{bad}");
        }
        assert!(validate_password("12345678").is_ok());
        assert!(validate_password("1234567").is_err());
        assert!(validate_name("  ").is_err());
    }
}
