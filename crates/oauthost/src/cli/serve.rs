//! `serve`: runs the server.

use clap::Args;
use tokio::net::TcpListener;

use super::{CliError, GlobalOptions};
use crate::{
    store::{self, Backend, StoreError},
    web,
};

/// Arguments of `serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub bind: String,
    /// Do not apply pending migrations at start (SQLite applies them by default;
    /// PostgreSQL never does: run `migrate`).
    #[arg(long)]
    pub no_migrate: bool,
}

pub(super) async fn serve(global: &GlobalOptions, args: ServeArgs) -> Result<(), CliError> {
    let store = store::connect(&global.database_url).await?;
    let pending = store.pending_migrations().await?;
    if !pending.is_empty() {
        if store.backend() == Backend::Sqlite && !args.no_migrate {
            for migration in store.migrate().await? {
                tracing::info!(
                    version = migration.version,
                    description = %migration.description,
                    "applied migration"
                );
            }
        } else {
            return Err(StoreError::MigrationsPending {
                count: pending.len(),
            }
            .into());
        }
    }
    let listener = TcpListener::bind(&args.bind)
        .await
        .map_err(|source| CliError::Bind {
            address: args.bind.clone(),
            source,
        })?;
    let address = listener.local_addr().map_err(CliError::Serve)?;
    println!(
        "oauthost listening on http://{address} ({} database {})",
        store.backend(),
        store::redact_url(&global.database_url)
    );
    if global.debug {
        tracing::warn!("debug mode: plain http is allowed; never use it in production");
    }
    axum::serve(listener, web::router(store))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(CliError::Serve)
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
