//! Group commit: writes that many requests make at once are gathered and written together
//! by one task, in one statement, instead of each waiting its turn for the database (SQLite
//! has one writer at a time; PostgreSQL pays a round trip per statement).
//!
//! Nothing waits to fill a batch: the writer takes whatever is queued when it is free, so a
//! lone request is written at once, and under load a batch is what arrived during the
//! previous write.

use std::future::Future;

use tokio::sync::{mpsc, oneshot};

use oauthost_core::{error::OAuthError, secret::SecretHash};

use super::{AuthorizationCode, CodeCheck, CodeExchange, NewToken, StoreResult, Token};

/// A queue of refresh token rotations: the old token's id and the token replacing it;
/// answered with the new token as stored, or `None` when the old one was already rotated
/// or revoked.
pub(crate) type RotationQueue = WriteQueue<(i64, NewToken), Option<Token>>;

/// The question the writer of a batch of code exchanges asks a request about the code it
/// consumed for it: the token to issue, or why not (the request's [`CodeCheck`]).
pub(crate) type CodeQuestion = (
    AuthorizationCode,
    oneshot::Sender<Result<NewToken, OAuthError>>,
);

/// A code presented for exchange, queued for the writer.
#[derive(Debug)]
pub(crate) struct CodeExchangeJob {
    /// The code's hash.
    pub(crate) code_hash: SecretHash,
    /// The client presenting it.
    pub(crate) client_id: i64,
    /// Where the writer asks for the token to issue; asked again if a failed batch is
    /// retried one by one.
    pub(crate) questions: mpsc::UnboundedSender<CodeQuestion>,
}

impl CodeExchangeJob {
    /// Asks the request for the token to issue for `code` (which its check sees first),
    /// at once; the future waits for the answer. A request gone meanwhile (its client hung
    /// up) is answered for with a refusal: the code stays consumed, and no token is issued.
    pub(crate) fn ask(
        &self,
        code: &AuthorizationCode,
    ) -> impl Future<Output = Result<NewToken, OAuthError>> {
        let (answer, answered) = oneshot::channel();
        let asked = self.questions.send((code.clone(), answer)).is_ok();
        async move {
            if !asked {
                return Err(withdrawn());
            }
            answered.await.unwrap_or_else(|_| Err(withdrawn()))
        }
    }
}

fn withdrawn() -> OAuthError {
    OAuthError::invalid_grant("The token request was withdrawn")
}

/// A queue of code exchanges.
pub(crate) type ExchangeQueue = WriteQueue<CodeExchangeJob, CodeExchange>;

/// Waits for `exchange` (a write through an [`ExchangeQueue`]) while answering the
/// writer's questions with `check`.
pub(crate) async fn answering<F>(
    exchange: F,
    mut questions: mpsc::UnboundedReceiver<CodeQuestion>,
    check: CodeCheck<'_>,
) -> F::Output
where
    F: Future,
{
    tokio::pin!(exchange);
    loop {
        tokio::select! {
            outcome = &mut exchange => return outcome,
            Some((code, answer)) = questions.recv() => {
                // The writer may have given up waiting; nothing to do then.
                let _ = answer.send(check(&code));
            }
        }
    }
}

/// Items written together at most.
pub(crate) const MAX_BATCH: usize = 64;

type Job<T, R> = (T, oneshot::Sender<StoreResult<R>>);

/// A queue of items to write, drained by a writer task.
pub(crate) struct WriteQueue<T, R> {
    sender: mpsc::UnboundedSender<Job<T, R>>,
}

impl<T, R> std::fmt::Debug for WriteQueue<T, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteQueue")
            .field("open", &!self.sender.is_closed())
            .finish()
    }
}

impl<T: Send + 'static, R: Send + 'static> WriteQueue<T, R> {
    /// Starts the writer task on the current tokio runtime. `write` gets up to
    /// [`MAX_BATCH`] items and must answer one result per item, in their order.
    pub(crate) fn start<W, F>(write: W) -> Self
    where
        W: Fn(Vec<T>) -> F + Send + 'static,
        F: Future<Output = Vec<StoreResult<R>>> + Send,
    {
        let (sender, mut receiver) = mpsc::unbounded_channel::<Job<T, R>>();
        tokio::spawn(async move {
            while let Some((item, reply)) = receiver.recv().await {
                let mut items = vec![item];
                let mut replies = vec![reply];
                while items.len() < MAX_BATCH {
                    let Ok((item, reply)) = receiver.try_recv() else {
                        break;
                    };
                    items.push(item);
                    replies.push(reply);
                }
                let results = write(items).await;
                for (reply, result) in replies.into_iter().zip(results) {
                    // The request may have been cancelled meanwhile; its row stays written.
                    let _ = reply.send(result);
                }
            }
        });
        Self { sender }
    }

    /// Writes `item` with whatever else is queued; `None` when the writer task is gone
    /// (its runtime shut down), and the item was not written.
    pub(crate) async fn write(&self, item: T) -> Option<StoreResult<R>> {
        let (reply, answer) = oneshot::channel();
        self.sender.send((item, reply)).ok()?;
        answer.await.ok()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[tokio::test]
    async fn concurrent_items_are_written_together_and_each_gets_its_own_result() {
        let batches: Arc<Mutex<Vec<usize>>> = Arc::default();
        let seen = Arc::clone(&batches);
        let queue = Arc::new(WriteQueue::start(move |items: Vec<u32>| {
            seen.lock().unwrap().push(items.len());
            async move {
                // Slow enough for the others to queue up behind the first.
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                items.into_iter().map(|n| Ok(n * 10)).collect()
            }
        }));
        let writes: Vec<_> = (0..10)
            .map(|n| {
                let queue = Arc::clone(&queue);
                tokio::spawn(async move { queue.write(n).await })
            })
            .collect();
        for (n, write) in (0..10).zip(writes) {
            assert_eq!(write.await.unwrap().unwrap().unwrap(), n * 10);
        }
        let batches = batches.lock().unwrap().clone();
        assert_eq!(batches.iter().sum::<usize>(), 10);
        assert!(
            batches.len() < 10,
            "some were written together: {batches:?}"
        );
    }

    #[test]
    fn a_queue_whose_runtime_is_gone_says_so() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let queue = runtime.block_on(async {
            WriteQueue::start(|items: Vec<u32>| async move { items.into_iter().map(Ok).collect() })
        });
        drop(runtime);
        let other = tokio::runtime::Runtime::new().unwrap();
        assert!(other.block_on(queue.write(1)).is_none());
    }
}
