//! Keeping the tables small: deleting dead codes, tokens, sessions and login counters in
//! batches, from the `purge` command or a background task of `serve`.

use std::time::Duration;

use super::{seconds, Oauthost, ServerResult};
use crate::store::PurgeReport;

/// How long dead tokens are kept, so that a replayed refresh token or code is still
/// recognised (and its family revoked) for that long: one day.
pub const TOKEN_RETENTION: Duration = Duration::from_secs(24 * 3600);

impl Oauthost {
    /// Deletes everything dead, `batch` rows of each kind at a time, pausing `pause` between
    /// batches so that requests are never held up for long. Returns what it deleted.
    pub async fn purge(&self, batch: u32, pause: Duration) -> ServerResult<PurgeReport> {
        let mut total = PurgeReport::default();
        loop {
            let now = self.now();
            let round = self
                .store()
                .purge(
                    now,
                    now - seconds(TOKEN_RETENTION),
                    now - seconds(self.settings().login_throttle.window),
                    batch,
                )
                .await?;
            total.codes += round.codes;
            total.tokens += round.tokens;
            total.sessions += round.sessions;
            total.login_failures += round.login_failures;
            let full = [
                round.codes,
                round.tokens,
                round.sessions,
                round.login_failures,
            ]
            .into_iter()
            .any(|deleted| deleted >= u64::from(batch));
            if !full {
                return Ok(total);
            }
            tokio::time::sleep(pause).await;
        }
    }

    /// Purges every `every`, forever: the background task of `serve --purge-every`.
    pub async fn purge_periodically(self, every: Duration, batch: u32) {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match self.purge(batch, Duration::from_millis(50)).await {
                Ok(report) if report.total() > 0 => tracing::info!(?report, "purged dead rows"),
                Ok(_) => {}
                Err(error) => tracing::error!(%error, "purge failed"),
            }
        }
    }
}
