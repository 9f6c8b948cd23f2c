//! Attachment bytes, through `object_store`: the local disk or an S3-compatible bucket.
//!
//! Content is addressed by its SHA-256 (`blobs/<hex>`), so equal uploads share one
//! object. An upload is first written under `incoming/<random>` while it is hashed, then
//! moved to its address (see `store::attachments::record`, which does it under the
//! blob's row lock so the orphan sweep cannot race it).
use std::{ops::Range, sync::Arc};

use bytes::Bytes;
use futures_util::{StreamExt, stream::BoxStream};
use object_store::{
    GetOptions, GetRange, ObjectStore, ObjectStoreExt, WriteMultipart, aws::AmazonS3Builder,
    local::LocalFileSystem, path::Path,
};

use crate::config::{AttachmentStorage, S3Settings};

/// Where attachment bytes are kept; cheap to clone.
#[derive(Clone, Debug)]
pub struct Blobs {
    store: Arc<dyn ObjectStore>,
}

/// An upload being written under a temporary key.
pub struct Incoming {
    key: Path,
    writer: WriteMultipart,
}

/// A stored upload, not yet at its address.
#[derive(Debug, Clone)]
pub struct Staged {
    key: Path,
}

/// A stream of an object's bytes (or of a range of them).
pub type ByteStream = BoxStream<'static, anyhow::Result<Bytes>>;

impl Blobs {
    /// Opens the configured storage (creating the local folder if needed).
    pub fn open(storage: &AttachmentStorage) -> anyhow::Result<Blobs> {
        let store: Arc<dyn ObjectStore> = match storage {
            AttachmentStorage::Local(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
                Arc::new(LocalFileSystem::new_with_prefix(dir)?)
            }
            AttachmentStorage::S3(s3) => Arc::new(s3_store(s3)?),
        };
        Ok(Blobs { store })
    }

    /// Starts writing an upload under a fresh temporary key.
    pub async fn incoming(&self) -> anyhow::Result<Incoming> {
        let key = Path::from(format!("incoming/{:032x}", rand::random::<u128>()));
        let upload = self.store.put_multipart(&key).await?;
        Ok(Incoming {
            key,
            writer: WriteMultipart::new(upload),
        })
    }

    /// Moves a staged upload to the address of its content (replacing an equal object).
    pub async fn settle(&self, staged: &Staged, sha256: &str) -> anyhow::Result<()> {
        Ok(self.store.rename(&staged.key, &blob_key(sha256)).await?)
    }

    /// Drops a staged upload whose content is already stored.
    pub async fn discard(&self, staged: &Staged) {
        if let Err(e) = self.store.delete(&staged.key).await {
            tracing::warn!(error = %e, key = %staged.key, "could not remove a staged upload");
        }
    }

    /// Removes the object of a content no attachment needs any more, and its thumbnail.
    pub async fn remove(&self, sha256: &str) -> anyhow::Result<()> {
        for key in [thumbnail_key(sha256), blob_key(sha256)] {
            match self.store.delete(&key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Deletes staged uploads older than `cutoff`: those of a node that stopped between
    /// storing an upload and recording it. Returns how many went.
    pub async fn purge_incoming(&self, cutoff: chrono::DateTime<chrono::Utc>) -> anyhow::Result<usize> {
        let stale: Vec<Path> = self
            .store
            .list(Some(&Path::from("incoming")))
            .filter_map(
                |meta| async move { meta.ok().filter(|m| m.last_modified < cutoff).map(|m| m.location) },
            )
            .collect()
            .await;
        for key in &stale {
            match self.store.delete(key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(stale.len())
    }

    /// A content's bytes, whole (bounded by the upload limit); None if it is gone.
    pub async fn read_all(&self, sha256: &str) -> anyhow::Result<Option<Bytes>> {
        match self.store.get(&blob_key(sha256)).await {
            Ok(got) => Ok(Some(got.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The cached thumbnail of a content, if made already.
    pub async fn thumbnail(&self, sha256: &str) -> anyhow::Result<Option<Bytes>> {
        match self.store.get(&thumbnail_key(sha256)).await {
            Ok(got) => Ok(Some(got.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Caches a content's thumbnail (equal contents make equal thumbnails, so a race
    /// between two makers writes the same bytes twice).
    pub async fn keep_thumbnail(&self, sha256: &str, bytes: Bytes) -> anyhow::Result<()> {
        self.store.put(&thumbnail_key(sha256), bytes.into()).await?;
        Ok(())
    }

    /// Reads a content's bytes, all of them or `range`; None if it is gone.
    pub async fn read(&self, sha256: &str, range: Option<Range<u64>>) -> anyhow::Result<Option<ByteStream>> {
        let options = GetOptions {
            range: range.map(GetRange::Bounded),
            ..Default::default()
        };
        match self.store.get_opts(&blob_key(sha256), options).await {
            Ok(got) => Ok(Some(
                got.into_stream().map(|r| r.map_err(anyhow::Error::from)).boxed(),
            )),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

impl Incoming {
    /// Appends bytes (buffered into parts; waits when too many parts are in flight).
    pub async fn write(&mut self, bytes: Bytes) -> anyhow::Result<()> {
        self.writer.wait_for_capacity(4).await?;
        self.writer.put(bytes);
        Ok(())
    }

    /// Completes the object.
    pub async fn finish(self) -> anyhow::Result<Staged> {
        self.writer.finish().await?;
        Ok(Staged { key: self.key })
    }

    /// Gives up: nothing stays behind.
    pub async fn abort(self) {
        if let Err(e) = self.writer.abort().await {
            tracing::warn!(error = %e, key = %self.key, "could not abort an upload");
        }
    }
}

fn blob_key(sha256: &str) -> Path {
    Path::from(format!("blobs/{sha256}"))
}

fn thumbnail_key(sha256: &str) -> Path {
    Path::from(format!("thumbnails/{sha256}"))
}

fn s3_store(s3: &S3Settings) -> anyhow::Result<object_store::aws::AmazonS3> {
    // The usual AWS_* variables first, then ours on top.
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(&s3.bucket)
        .with_allow_http(s3.allow_http);
    if let Some(endpoint) = &s3.endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    if let Some(region) = &s3.region {
        builder = builder.with_region(region);
    }
    if let Some(key) = &s3.access_key_id {
        builder = builder.with_access_key_id(key);
    }
    if let Some(secret) = &s3.secret_access_key {
        builder = builder.with_secret_access_key(secret);
    }
    Ok(builder.build()?)
}

#[cfg(test)]
impl Blobs {
    /// Storage in memory, for unit tests.
    pub fn in_memory() -> Blobs {
        Blobs {
            store: Arc::new(object_store::memory::InMemory::new()),
        }
    }
}
