//! Files shared in conversations: uploads (typed by their content, limited in size,
//! stored once per content), who may download them, and the sweep of uploads no
//! message ever carried.
//!
//! A message carries an attachment by id (`send_message { attachment_id }`); only its
//! uploader may send it (checked by the writer with the rest of a send). Downloads are
//! for the uploader and the current members of a conversation where a message still
//! carries it; everyone else is told it does not exist.
pub mod intake;
pub mod rules;
mod sweep;
pub mod thumbnail;

use std::{ops::Range, time::Duration};

use futures_util::Stream;
use sea_orm::DatabaseConnection;

use super::{DomainError, DomainResult};
pub use crate::store::attachments::Attachment;
use crate::store::{
    self,
    attachments::{NewAttachment, Recorded},
    blobs::{Blobs, ByteStream},
};
use intake::BodyError;
use rules::{AttachmentName, IdempotencyKey};

/// The attachment service; cheap to clone.
#[derive(Clone)]
pub struct Attachments {
    db: DatabaseConnection,
    blobs: Blobs,
    max_bytes: u64,
}

/// An answered upload.
#[derive(Debug)]
pub struct Uploaded {
    pub attachment: Attachment,
    /// False when this upload repeated an earlier one (nothing new was stored).
    pub created: bool,
}

impl Attachments {
    pub fn new(db: DatabaseConnection, blobs: Blobs, max_bytes: u64) -> Self {
        Attachments { db, blobs, max_bytes }
    }

    /// The size limit of one upload, in bytes.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Stores an upload by `user` (named `name`, or after its type). Repeats (the same `key`; without one, the same name
    /// and content) answer the earlier attachment.
    pub async fn upload<S>(
        &self,
        user: i64,
        name: Option<AttachmentName>,
        key: Option<IdempotencyKey>,
        body: S,
    ) -> DomainResult<Uploaded>
    where
        S: Stream<Item = Result<bytes::Bytes, BodyError>> + Unpin,
    {
        let received = intake::receive(&self.blobs, body, self.max_bytes).await?;
        let dimension = |d: Option<u32>| d.and_then(|v| i32::try_from(v).ok());
        let new = NewAttachment {
            uploader_id: user,
            name: name
                .unwrap_or_else(|| AttachmentName::fallback(received.sniffed.mime_type))
                .as_str()
                .to_owned(),
            mime_type: received.sniffed.mime_type.to_owned(),
            size: received.size as i64,
            sha256: received.sha256,
            width: dimension(received.sniffed.dimensions.map(|d| d.0)),
            height: dimension(received.sniffed.dimensions.map(|d| d.1)),
            idempotency_key: key.map(|k| k.as_str().to_owned()),
        };
        let recorded = store::attachments::record(&self.db, &self.blobs, new, received.staged, store::now());
        match recorded.await? {
            Recorded::Created(attachment) => Ok(Uploaded {
                attachment,
                created: true,
            }),
            Recorded::Repeated(attachment) => Ok(Uploaded {
                attachment,
                created: false,
            }),
            Recorded::KeyReused => Err(DomainError::IdempotencyKeyReused),
        }
    }

    /// The attachment if `user` may download it; otherwise `AttachmentNotFound`, whether
    /// or not it exists.
    pub async fn readable(&self, user: i64, id: i64) -> DomainResult<Attachment> {
        store::attachments::readable(&self.db, id, user)
            .await?
            .ok_or(DomainError::AttachmentNotFound)
    }

    /// The bytes of a readable attachment, all or a range (already checked against its size).
    /// The sweep may remove an unsent upload's content between the check and the read:
    /// that is `AttachmentNotFound` too, as the next request would say.
    pub async fn bytes(
        &self,
        attachment: &Attachment,
        range: Option<Range<u64>>,
    ) -> DomainResult<ByteStream> {
        self.blobs
            .read(&attachment.sha256, range)
            .await?
            .ok_or(DomainError::AttachmentNotFound)
    }

    /// A small preview of an image attachment (made once per content, then cached in
    /// storage); `AttachmentNotFound` for types that have none.
    pub async fn thumbnail(&self, attachment: &Attachment) -> DomainResult<(bytes::Bytes, &'static str)> {
        if !thumbnail::THUMBNAILED_TYPES.contains(&attachment.mime_type.as_str()) {
            return Err(DomainError::AttachmentNotFound);
        }
        if let Some(cached) = self.blobs.thumbnail(&attachment.sha256).await? {
            // Made by this code: JPEG, or PNG for transparency.
            let mime = infer::get(&cached).map_or("image/jpeg", |k| k.mime_type());
            return Ok((cached, mime));
        }
        let original = self
            .blobs
            .read_all(&attachment.sha256)
            .await?
            .ok_or(DomainError::AttachmentNotFound)?;
        let made = tokio::task::spawn_blocking(move || thumbnail::make(&original))
            .await
            .map_err(anyhow::Error::from)?;
        let made = match made {
            Ok(made) => made,
            // Its header passed the sniffing, but the image itself does not decode.
            Err(e) => {
                tracing::debug!(error = %e, id = attachment.id, "no thumbnail for an undecodable image");
                return Err(DomainError::AttachmentNotFound);
            }
        };
        let bytes = bytes::Bytes::from(made.bytes);
        self.blobs
            .keep_thumbnail(&attachment.sha256, bytes.clone())
            .await?;
        Ok((bytes, made.mime_type))
    }

    /// Starts this node's sweep of uploads no message carried within `ttl`.
    pub fn spawn_sweeper(&self, ttl: Duration, every: Duration) {
        tokio::spawn(sweep::run(self.db.clone(), self.blobs.clone(), ttl, every));
    }
}
