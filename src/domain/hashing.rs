//! Password hashing with bounded memory: argon2id needs 19 MiB per hash, so an
//! unbounded number at once (a login flood) grows the heap by gigabytes, and the
//! allocator keeps it. At most `concurrency` hashes run at once; at most `queue` more
//! wait; anyone beyond is told to come back later.
use std::sync::Arc;

use tokio::sync::Semaphore;

use super::{DomainError, DomainResult};

#[derive(Clone)]
pub struct Hasher {
    /// Running plus waiting; None when the limit is off.
    admitted: Option<Arc<Semaphore>>,
    running: Option<Arc<Semaphore>>,
}

impl Hasher {
    /// `concurrency` 0 turns the limit off.
    pub fn new(concurrency: usize, queue: usize) -> Self {
        if concurrency == 0 {
            return Hasher {
                admitted: None,
                running: None,
            };
        }
        Hasher {
            admitted: Some(Arc::new(Semaphore::new(concurrency + queue))),
            running: Some(Arc::new(Semaphore::new(concurrency))),
        }
    }

    /// Runs `work` (a hash or a verification) on a blocking thread when a slot is free;
    /// `Busy` when the queue is full.
    pub async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> DomainResult<T> {
        let _admitted = match &self.admitted {
            Some(s) => Some(s.clone().try_acquire_owned().map_err(|_| DomainError::Busy)?),
            None => None,
        };
        let _running = match &self.running {
            Some(s) => Some(
                s.clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| DomainError::Unavailable)?,
            ),
            None => None,
        };
        Ok(tokio::task::spawn_blocking(work)
            .await
            .map_err(anyhow::Error::from)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn beyond_running_and_queued_the_answer_is_busy() {
        let hasher = Hasher::new(1, 1);
        let slow = || std::thread::sleep(Duration::from_millis(300));
        let (a, b) = (hasher.clone(), hasher.clone());
        let first = tokio::spawn(async move { a.run(slow).await });
        let second = tokio::spawn(async move { b.run(slow).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(matches!(hasher.run(|| ()).await, Err(DomainError::Busy)));
        assert!(first.await.unwrap().is_ok() && second.await.unwrap().is_ok());
        assert!(hasher.run(|| ()).await.is_ok(), "slots come back");
        assert!(Hasher::new(0, 0).run(|| 1).await.is_ok(), "0 turns the limit off");
    }
}
