//! The OpenAPI 3.1 description of the REST API, generated from the handlers'
//! `#[utoipa::path]` annotations and the bodies' `ToSchema` derives, so it cannot drift
//! from the code the way a hand-written file would. Served at `GET /api/openapi.json`,
//! with an offline Swagger UI at `/docs` (the UI's files are compiled into the binary).
//! `tests/js/test/openapi.test.js` checks that every route of `router()` is described;
//! `tests/openapi/` runs schemathesis against a live server with it.
use axum::Router;
use serde::Serialize;
use utoipa::{
    IntoResponses, Modify, OpenApi, PartialSchema, ToSchema,
    openapi::{
        RefOr, Schema,
        schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type},
        security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
};
use utoipa_swagger_ui::SwaggerUi;

use super::{
    attachments, auth, blocks, conversations, groups, health, keys, message_changes, messages, mutes,
    presence, search, users,
};
use crate::{state::AppState, wire::Iso};

/// Where the document is served.
pub const DOCUMENT_PATH: &str = "/api/openapi.json";
/// Where the API reference page is served.
pub const DOCS_PATH: &str = "/docs";

/// The name of the Bearer security scheme the annotations refer to.
pub const BEARER: &str = "bearer";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "realtime-chat REST API",
        description = "The REST half of realtime-chat; messages themselves travel over Socket.IO \
                       (see docs/PROTOCOL.md and docs/asyncapi.yaml). Every error is `{ \"error\": \"…\" }` (the attachment endpoints add a `code`).",
    ),
    paths(
        health::health,
        auth::register,
        auth::login,
        auth::logout,
        auth::logout_all,
        auth::change_password,
        users::me,
        conversations::list,
        mutes::get,
        mutes::put,
        messages::history,
        messages::mark_read,
        messages::receipts,
        message_changes::edit,
        message_changes::delete,
        message_changes::react,
        message_changes::changes,
        attachments::upload,
        attachments::download,
        attachments::thumbnail,
        search::search,
        presence::presence,
        blocks::list,
        blocks::block,
        blocks::unblock,
        groups::create,
        groups::get,
        groups::update,
        groups::add_members,
        groups::remove_member,
        groups::set_role,
        groups::leave,
        keys::publish,
        keys::status,
        keys::remove,
        keys::add_prekeys,
        keys::bundles,
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerScheme),
    tags(
        (name = "health", description = "Liveness and database reachability"),
        (name = "auth", description = "Accounts and tokens"),
        (name = "users", description = "The caller"),
        (name = "conversations", description = "The caller's conversation list, and muting one"),
        (name = "messages", description = "History, read marks, receipts, edits, deletes, reactions and changes"),
        (name = "attachments", description = "Files for messages: upload, download, thumbnails"),
        (name = "presence", description = "Who is online"),
        (name = "blocks", description = "Blocked users"),
        (name = "groups", description = "Group conversations"),
        (name = "keys", description = "End-to-end encryption: the public key directory"),
    )
)]
pub struct ApiDoc;

/// Every REST error: the status says what kind, `error` says what in words.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// A human-readable reason; never SQL text or internal detail.
    pub error: String,
    /// A machine-readable code (`DomainError::code()`, as sockets get it), given by the
    /// attachment endpoints: e.g. `attachment_too_large`, `unsupported_attachment_type`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

// The error answers several operations share, named once for the annotations.

/// 401 on every operation that takes a token.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum Unauthenticated {
    /// Missing, malformed, expired or revoked token, or its user is gone.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
}

/// The refusals of a JSON request body.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum BadBody {
    /// Not valid JSON, or a field missing or of the wrong type.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// Body over 64 KiB.
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// `Content-Type` is not `application/json`.
    #[response(status = 415)]
    NotJson(ErrorBody),
}

/// A missing or malformed query or path parameter.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum BadParameter {
    /// Missing, non-numeric or out-of-range parameter.
    #[response(status = 400)]
    BadRequest(ErrorBody),
}

/// Missing, or the caller may not see it (one answer, so ids cannot be probed).
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum NotFound {
    /// Not found, or not visible to the caller.
    #[response(status = 404)]
    NotFound(ErrorBody),
}

/// A well-formed request that breaks a rule.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum Unprocessable {
    /// Validation failed (text with U+0000 included).
    #[response(status = 422)]
    Unprocessable(ErrorBody),
}

/// A group member lacking the role for the change.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum Forbidden {
    /// The caller's role does not allow it.
    #[response(status = 403)]
    Forbidden(ErrorBody),
}

/// A per-user rate (`RATE_LOOKUPS_PER_SEC` for searches and key-bundle fetches) is spent.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum RateLimited {
    /// Too many such requests; retry after `Retry-After` seconds.
    #[response(status = 429, headers(("Retry-After" = u32, description = "seconds to wait")))]
    TooMany(ErrorBody),
}

/// Password hashing is bounded: past its queue the request is refused at once.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum HashingBusy {
    /// Too many password checks at once; retry after `Retry-After` seconds.
    #[response(status = 503, headers(("Retry-After" = u32, description = "seconds to wait")))]
    Busy(ErrorBody),
}

/// `GET /health`'s body (built with `json!` in the handler, described here).
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `unavailable` with status 503.
    #[schema(examples("ok"))]
    pub status: String,
    /// `connected`, or `disconnected` with status 503.
    #[schema(examples("connected"))]
    pub database: String,
    /// This node's id (`NODE_ID`, or one chosen at start), as in its logs.
    #[schema(examples("a1b2c3d4"))]
    pub node: String,
    /// `unused` (no `REDIS_URL`: one node), `connected`, or `down` (the node still
    /// serves its own clients, so the status stays 200).
    #[schema(examples("connected"))]
    pub redis: String,
}

/// `DELETE /api/groups/{id}/members/{user_id}` answers the group, or `{ success: true }`
/// when the caller removed themself (which is leaving).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum RemoveMemberAnswer {
    Group(groups::GroupBody),
    Left(groups::Done),
}

// A timestamp on the wire: an ISO-8601 UTC string with milliseconds.
impl PartialSchema for Iso {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .into()
    }
}

impl ToSchema for Iso {}

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        // utoipa copies Cargo.toml's license, which this crate does not set: no empty one.
        openapi.info.license = None;
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A token from `POST /api/auth/register` or `POST /api/auth/login`",
                    ))
                    .build(),
            ),
        );
    }
}

/// `GET /api/openapi.json` and the Swagger UI at `/docs` (served from the binary, no CDN).
pub fn routes() -> Router<AppState> {
    SwaggerUi::new(DOCS_PATH)
        .url(DOCUMENT_PATH, ApiDoc::openapi())
        .into()
}
