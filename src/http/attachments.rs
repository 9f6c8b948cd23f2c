//! `POST /api/attachments` (upload), `GET /api/attachments/{id}` (download) and
//! `GET /api/attachments/{id}/thumbnail`. The rules (types, size, who may read) live in
//! `domain::attachments`; this module speaks HTTP: multipart or raw bodies, ranges,
//! caching and download headers.
use axum::{
    Json,
    body::Body,
    extract::{FromRequest, Multipart, Path, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use futures_util::{StreamExt, TryStreamExt};
use http_body_util::Limited;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::{
    byte_range::{Requested, requested},
    error::ApiError,
    extract::{AuthUser, QueryParams, path_id},
    openapi::ErrorBody,
};
use crate::{
    domain::{
        DomainError,
        attachments::{
            Attachment, Uploaded,
            intake::BodyError,
            rules::{AttachmentName, IdempotencyKey},
        },
    },
    state::AppState,
};

/// Room for a multipart body's boundaries and part headers beyond the file itself.
const MULTIPART_OVERHEAD: u64 = 64 * 1024;

/// An attachment's metadata, as uploads answer it and messages carry it.
#[derive(Serialize, ToSchema)]
pub struct AttachmentInfo {
    id: i64,
    /// The uploaded file's name (its last path segment, control characters replaced).
    name: String,
    /// Sniffed from the content, never taken from the name or the declared type.
    mime_type: String,
    /// Bytes.
    size: i64,
    /// Lower-case hex SHA-256 of the content (also the download's ETag).
    #[schema(pattern = "^[0-9a-f]{64}$")]
    sha256: String,
    /// Pixels, for images whose header says.
    #[serde(skip_serializing_if = "Option::is_none")]
    width: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    height: Option<i32>,
}

impl From<Attachment> for AttachmentInfo {
    fn from(a: Attachment) -> Self {
        AttachmentInfo {
            id: a.id,
            name: a.name,
            mime_type: a.mime_type,
            size: a.size,
            sha256: a.sha256,
            width: a.width,
            height: a.height,
        }
    }
}

/// The multipart form: one file part.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The file; its filename is the attachment's name.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// A raw body: the file's bytes.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
pub struct RawFile(Vec<u8>);

/// An attachment request's refusal: `{ error, code }`.
pub struct Refusal(ApiError);

impl<E: Into<ApiError>> From<E> for Refusal {
    fn from(e: E) -> Self {
        Refusal(e.into())
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let code = match &self.0 {
            ApiError::Domain(d) => d.code(),
            ApiError::BadRequest(_) => "invalid_payload",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::PayloadTooLarge => "attachment_too_large",
            ApiError::UnsupportedMediaType => "unsupported_attachment_type",
        };
        let error = self.0.to_string();
        // The same status, words, logging and headers as every REST error, plus the code.
        let mut response = self.0.into_response();
        *response.body_mut() = Body::from(json!({ "error": error, "code": code }).to_string());
        response
    }
}

pub type Answer = Result<Response, Refusal>;

/// `POST /api/attachments`
#[utoipa::path(
    post,
    path = "/api/attachments",
    tag = "attachments",
    params(
        ("name" = Option<String>, Query, description = "the file name, for a raw body (a multipart part's filename wins); without one the name is `attachment.<type>`. Only its last path segment is kept, control characters become `_`, at most 255 bytes"),
        ("Idempotency-Key" = Option<String>, Header, description = "a retry with the same key answers the first upload (200); the same key with other content is 409", pattern = "^[!-~]{1,255}$"),
    ),
    request_body(
        description = "the file: a multipart form with one file part, or the raw bytes with any other Content-Type",
        content(
            (UploadForm = "multipart/form-data"),
            (RawFile = "application/octet-stream"),
        )
    ),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "stored", body = AttachmentInfo),
        (status = 200, description = "a repeat of an earlier upload (same Idempotency-Key, or without one the same name and content): that attachment", body = AttachmentInfo),
        (status = 400, description = "a malformed multipart body, a form without a file part, an empty file, or a malformed Idempotency-Key", body = ErrorBody),
        (status = 409, description = "the Idempotency-Key was used for different content", body = ErrorBody),
        (status = 413, description = "larger than ATTACHMENT_MAX_BYTES (25 MB by default)", body = ErrorBody),
        (status = 415, description = "the content (sniffed, whatever its name or declared type) is not an accepted type: images, PDF, audio, video", body = ErrorBody),
        crate::http::openapi::Unauthenticated,
    )
)]
pub async fn upload(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    params: QueryParams,
    request: Request,
) -> Answer {
    let key = match request.headers().get("idempotency-key") {
        None => None,
        Some(v) => Some(IdempotencyKey::parse(v.to_str().unwrap_or("\u{1}"))?),
    };
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        });
    let max = state.attachments.max_bytes();
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    // Refused before a byte is read when the length says it all.
    if declared.is_some_and(|n| n > max + if multipart { MULTIPART_OVERHEAD } else { 0 }) {
        return Err(DomainError::AttachmentTooLarge(max).into());
    }
    let named = params.text("name").and_then(AttachmentName::tidy);
    let uploaded = if multipart {
        // The file part is limited as it streams; the whole form (other parts too) here.
        let request = request.map(|body| Body::new(Limited::new(body, (max + MULTIPART_OVERHEAD) as usize)));
        let mut form = Multipart::from_request(request, &state)
            .await
            .map_err(|e| ApiError::BadRequest(format!("malformed multipart body: {}", e.body_text())))?;
        let field = loop {
            match form.next_field().await {
                Ok(Some(field)) if field.file_name().is_some() || field.name() == Some("file") => {
                    break field;
                }
                Ok(Some(_)) => continue,
                Ok(None) => return Err(ApiError::BadRequest("the form has no file part".into()).into()),
                Err(e) => return Err(multipart_refusal(e, max).into()),
            }
        };
        let name = field.file_name().and_then(AttachmentName::tidy).or(named);
        let body = field.map_err(|e| BodyError(e.body_text()));
        state
            .attachments
            .upload(me, name, key, std::pin::pin!(body))
            .await?
    } else {
        let body = request
            .into_body()
            .into_data_stream()
            .map_err(|e| BodyError(e.to_string()));
        state
            .attachments
            .upload(me, named, key, std::pin::pin!(body))
            .await?
    };
    let Uploaded { attachment, created } = uploaded;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(AttachmentInfo::from(attachment))).into_response())
}

fn multipart_refusal(e: axum::extract::multipart::MultipartError, max: u64) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        DomainError::AttachmentTooLarge(max).into()
    } else {
        ApiError::BadRequest(format!("malformed multipart body: {}", e.body_text()))
    }
}

/// `GET /api/attachments/{id}`
#[utoipa::path(
    get,
    path = "/api/attachments/{id}",
    tag = "attachments",
    params(
        ("id" = i64, Path, minimum = 1),
        ("Range" = Option<String>, Header, description = "one byte range (`bytes=0-99`, `bytes=100-`, `bytes=-100`); other forms are answered whole"),
        ("If-None-Match" = Option<String>, Header, description = "the ETag held: 304 if unchanged"),
    ),
    security(("bearer" = [])),
    responses(
        // One entry per accepted type (rules::ALLOWED_TYPES; a unit test keeps them equal).
        (status = 200, description = "the file, with its sniffed Content-Type, `Content-Disposition: attachment`, an ETag and `X-Content-Type-Options: nosniff`", content(
            (RawFile = "image/png"),
            (RawFile = "image/jpeg"),
            (RawFile = "image/gif"),
            (RawFile = "image/webp"),
            (RawFile = "image/avif"),
            (RawFile = "image/heif"),
            (RawFile = "application/pdf"),
            (RawFile = "audio/mpeg"),
            (RawFile = "audio/ogg"),
            (RawFile = "audio/x-wav"),
            (RawFile = "audio/x-flac"),
            (RawFile = "audio/m4a"),
            (RawFile = "audio/aac"),
            (RawFile = "video/mp4"),
            (RawFile = "video/webm"),
            (RawFile = "video/quicktime"),
        )),
        (status = 206, description = "the range asked for, with Content-Range", content(
            (RawFile = "image/png"),
            (RawFile = "image/jpeg"),
            (RawFile = "image/gif"),
            (RawFile = "image/webp"),
            (RawFile = "image/avif"),
            (RawFile = "image/heif"),
            (RawFile = "application/pdf"),
            (RawFile = "audio/mpeg"),
            (RawFile = "audio/ogg"),
            (RawFile = "audio/x-wav"),
            (RawFile = "audio/x-flac"),
            (RawFile = "audio/m4a"),
            (RawFile = "audio/aac"),
            (RawFile = "video/mp4"),
            (RawFile = "video/webm"),
            (RawFile = "video/quicktime"),
        )),
        (status = 304, description = "the If-None-Match ETag is current"),
        (status = 400, description = "the id is not a positive integer", body = ErrorBody),
        (status = 404, description = "no such attachment, or the caller neither uploaded it nor is a member of a conversation where a message carries it", body = ErrorBody),
        (status = 416, description = "the range starts past the end", body = ErrorBody),
        crate::http::openapi::Unauthenticated,
    )
)]
pub async fn download(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Answer {
    let id = path_id(&id, "attachment")?;
    let attachment = state.attachments.readable(me, id).await?;
    let etag = format!("\"{}\"", attachment.sha256);
    let mut common = HeaderMap::new();
    common.insert(header::ETAG, header_value(&etag));
    common.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    common.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    common.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    if holds(&headers, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, common).into_response());
    }
    let size = attachment.size as u64;
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, part) = match requested(range, size) {
        Requested::Whole => (StatusCode::OK, None),
        Requested::Part(part) => (StatusCode::PARTIAL_CONTENT, Some(part)),
        Requested::Unsatisfiable => {
            common.insert(header::CONTENT_RANGE, header_value(&format!("bytes */{size}")));
            let body = json!({ "error": "the range starts past the end of the attachment", "code": "range_not_satisfiable" });
            return Ok((StatusCode::RANGE_NOT_SATISFIABLE, common, Json(body)).into_response());
        }
    };
    let length = part.as_ref().map_or(size, |r| r.end - r.start);
    if let Some(r) = &part {
        common.insert(
            header::CONTENT_RANGE,
            header_value(&format!("bytes {}-{}/{size}", r.start, r.end - 1)),
        );
    }
    common.insert(header::CONTENT_TYPE, header_value(&attachment.mime_type));
    common.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    common.insert(header::CONTENT_DISPOSITION, disposition(&attachment.name));
    let bytes = state.attachments.bytes(&attachment, part).await?;
    let body = Body::from_stream(bytes.map(|chunk| chunk.map_err(std::io::Error::other)));
    Ok((status, common, body).into_response())
}

/// `GET /api/attachments/{id}/thumbnail`
#[utoipa::path(
    get,
    path = "/api/attachments/{id}/thumbnail",
    tag = "attachments",
    params(
        ("id" = i64, Path, minimum = 1),
        ("If-None-Match" = Option<String>, Header, description = "the ETag held: 304 if unchanged"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "a preview of a PNG, JPEG, GIF or WebP image, at most 256 pixels a side: JPEG, or PNG when the image has transparency; made once, then kept", content(
            (RawFile = "image/jpeg"),
            (RawFile = "image/png"),
        )),
        (status = 304, description = "the If-None-Match ETag is current"),
        (status = 400, description = "the id is not a positive integer", body = ErrorBody),
        (status = 404, description = "as for the download; also for an attachment of another type, or an image that does not decode", body = ErrorBody),
        crate::http::openapi::Unauthenticated,
    )
)]
pub async fn thumbnail(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Answer {
    let id = path_id(&id, "attachment")?;
    let attachment = state.attachments.readable(me, id).await?;
    let etag = format!("\"{}-thumbnail\"", attachment.sha256);
    let mut common = HeaderMap::new();
    common.insert(header::ETAG, header_value(&etag));
    common.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    common.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    if holds(&headers, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, common).into_response());
    }
    let (bytes, mime_type) = state.attachments.thumbnail(&attachment).await?;
    common.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime_type));
    Ok((StatusCode::OK, common, bytes).into_response())
}

/// Whether `If-None-Match` names `etag` (or `*`).
fn holds(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
}

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// `attachment; filename="…"; filename*=UTF-8''…`: an ASCII stand-in for old clients,
/// the exact name (RFC 6266 / 8187) for the rest.
fn disposition(name: &str) -> HeaderValue {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let exact = utf8_percent_encode(name, NON_ALPHANUMERIC);
    header_value(&format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{exact}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_download_documents_every_accepted_type() {
        use utoipa::OpenApi;
        let doc = serde_json::to_value(crate::http::openapi::ApiDoc::openapi()).unwrap();
        for status in ["200", "206"] {
            let content = &doc["paths"]["/api/attachments/{id}"]["get"]["responses"][status]["content"];
            let mut documented: Vec<&str> = content.as_object().unwrap().keys().map(String::as_str).collect();
            let mut allowed = crate::domain::attachments::rules::ALLOWED_TYPES.to_vec();
            documented.sort_unstable();
            allowed.sort_unstable();
            assert_eq!(documented, allowed, "{status}");
        }
    }

    #[test]
    fn the_disposition_names_the_file_in_ascii_and_exactly() {
        assert_eq!(
            disposition("résumé \"1\".pdf").to_str().unwrap(),
            "attachment; filename=\"r_sum_ _1_.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%221%22%2Epdf"
        );
    }
}
