//! The seed's example app: polls whose views are protected by oauthost, built only on
//! oauthost's public API.
//!
//! | view | scope |
//! |---|---|
//! | `GET /polls/` | `polls:index` (`scope_auto`) |
//! | `GET /polls/{id}/` | `polls:detail` (`scope_auto`) |
//! | `GET /polls/{id}/results/` | `polls:results` (`scope_auto`) |
//! | `GET /polls/{id}/stats/` | `my_polls:my_stats` (explicit) |
//! | `POST /polls/{id}/vote/` | `polls:vote` (`scope_auto`), `choice=<id>` in the body |

mod db;
mod views;

use axum::Router;
use oauthost::{
    cli::{App, AppError},
    server::Oauthost,
};

pub use db::Polls;
pub use views::router;

oauthost::declare_app!();

/// The polls app, as the command line sees it: its tables and its routes.
#[derive(Debug, Clone, Copy, Default)]
pub struct PollsApp;

#[async_trait::async_trait]
impl App for PollsApp {
    async fn migrate(&self, database_url: &str) -> Result<Vec<String>, AppError> {
        let polls = Polls::connect(database_url).await?;
        Ok(polls.migrate().await?)
    }

    async fn routes(&self, oauthost: &Oauthost, database_url: &str) -> Result<Router, AppError> {
        let polls = Polls::connect(database_url).await?;
        Ok(router(oauthost.clone(), polls))
    }
}
