//! `serve`: runs the server.

use std::{net::SocketAddr, path::PathBuf};

use axum::Router;
use clap::Args;

use super::{App, CliError, GlobalOptions};
use crate::{
    server::{Oauthost, Settings},
    store::{self, Backend, DynStore, StoreError},
    web::{self, Templates},
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
    /// Serve https with this certificate chain (PEM); needs --tls-key.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Trust X-Forwarded-Proto (and X-Forwarded-For) from a TLS-terminating proxy. Only
    /// behind a proxy that sets them: clients could forge them otherwise.
    #[arg(long)]
    pub trust_forwarded_proto: bool,
    /// Issuer identifier for server metadata, e.g. `https://auth.example.com` (default: from
    /// each request's Host).
    #[arg(long)]
    pub issuer: Option<String>,
    /// Mount the endpoints under this path, e.g. /oauth.
    #[arg(long, default_value = "")]
    pub mount_path: String,
    /// Switch off the implicit grant (response_type=token).
    #[arg(long)]
    pub no_implicit_grant: bool,
    /// Switch off the password grant.
    #[arg(long)]
    pub no_password_grant: bool,
    /// Refuse PKCE's plain method (S256 only).
    #[arg(long)]
    pub no_pkce_plain: bool,
    /// Refuse access tokens in the query string (Authorization header and form body only).
    #[arg(long)]
    pub no_query_tokens: bool,
    /// Purge dead codes, tokens and sessions every this many seconds, in the background
    /// (0, the default: never; run `purge` from cron instead).
    #[arg(long, default_value_t = 0)]
    pub purge_every: u64,
    /// Keep validated access tokens in memory this many seconds, so that checking one again
    /// costs no database query (0, the default: no cache). Revocation clears an entry at
    /// once, on every instance (PostgreSQL: LISTEN/NOTIFY); this bounds staleness only for
    /// changes the server cannot see, such as another process writing a SQLite file.
    #[arg(long, default_value_t = 0, value_name = "SECS")]
    pub token_cache_ttl: u64,
    /// With the cache on PostgreSQL, trust a cached token only once this instance has read
    /// every change committed before the request (one round trip shared by concurrent
    /// requests): a revocation on any instance is then refused everywhere from the moment
    /// it commits, at some cost in throughput. Without it, another instance refuses the
    /// token once it reads the revocation's notification (usually well under a millisecond).
    #[arg(long)]
    pub strict_revocation: bool,
    /// Replace a page template: NAME=FILE, NAME one of login, logout, authorize,
    /// authorize_error, authorize_proceed, forbidden, restricted (also
    /// `OAUTHOST_TEMPLATE_<NAME>=FILE`).
    #[arg(long = "template", value_name = "NAME=FILE")]
    pub templates: Vec<String>,
}

impl ServeArgs {
    /// The server settings these arguments ask for.
    pub fn settings(&self, global: &GlobalOptions) -> Settings {
        Settings {
            debug: global.debug,
            tls: self.tls_cert.is_some(),
            trust_forwarded_proto: self.trust_forwarded_proto,
            implicit_grant: !self.no_implicit_grant,
            password_grant: !self.no_password_grant,
            pkce_plain: !self.no_pkce_plain,
            query_tokens: !self.no_query_tokens,
            issuer: self.issuer.clone(),
            mount_path: self.mount_path.trim_end_matches('/').to_owned(),
            token_cache_ttl: std::time::Duration::from_secs(self.token_cache_ttl),
            strict_revocation: self.strict_revocation,
            ..Settings::default()
        }
    }

    /// The page templates: built-in, replaced by `--template` and `OAUTHOST_TEMPLATE_*`.
    pub fn templates(&self) -> Result<Templates, CliError> {
        let mut files = Vec::new();
        for spec in &self.templates {
            let (name, path) = spec.split_once('=').ok_or_else(|| {
                CliError::Usage(format!("--template expects NAME=FILE, not {spec:?}"))
            })?;
            files.push((name.to_owned(), PathBuf::from(path)));
        }
        Ok(Templates::from_env_and_files(
            files
                .iter()
                .map(|(name, path)| (name.as_str(), path.as_path())),
        )?)
    }
}

/// Opens the database, bringing an SQLite schema up to date unless told not to; refuses an
/// outdated PostgreSQL schema.
pub(super) async fn open_for_serving(
    global: &GlobalOptions,
    no_migrate: bool,
) -> Result<DynStore, CliError> {
    let store = store::connect(&global.database_url).await?;
    let pending = store.pending_migrations().await?;
    if !pending.is_empty() {
        if store.backend() == Backend::Sqlite && !no_migrate {
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
    Ok(store)
}

/// Serves `app` on the address of `args`, over TLS when asked, until interrupted. Prints
/// `... listening on http(s)://ADDRESS ...` once listening.
pub async fn serve_app(
    global: &GlobalOptions,
    args: &ServeArgs,
    app: Router,
) -> Result<(), CliError> {
    let listener = std::net::TcpListener::bind(&args.bind).map_err(|source| CliError::Bind {
        address: args.bind.clone(),
        source,
    })?;
    listener.set_nonblocking(true).map_err(CliError::Serve)?;
    let address = listener.local_addr().map_err(CliError::Serve)?;
    let scheme = if args.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    println!(
        "oauthost listening on {scheme}://{address} ({})",
        store::redact_url(&global.database_url)
    );
    if global.debug {
        tracing::warn!("debug mode: plain http is allowed; never use it in production");
    }
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    let handle = axum_server::Handle::new();
    let shutdown = handle.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        shutdown.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
    });
    match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                .await
                .map_err(|source| CliError::Tls(source.to_string()))?;
            axum_server::from_tcp_rustls(listener, config)
                .handle(handle)
                .serve(service)
                .await
        }
        _ => {
            axum_server::from_tcp(listener)
                .handle(handle)
                .serve(service)
                .await
        }
    }
    .map_err(CliError::Serve)
}

pub(super) async fn serve(
    global: &GlobalOptions,
    args: ServeArgs,
    application: &dyn App,
) -> Result<(), CliError> {
    let templates = args.templates()?;
    let store = open_for_serving(global, args.no_migrate).await?;
    if store.backend() == Backend::Sqlite && !args.no_migrate {
        for line in application
            .migrate(&global.database_url)
            .await
            .map_err(CliError::App)?
        {
            tracing::info!("{line}");
        }
    }
    let server = Oauthost::builder(store.clone())
        .settings(args.settings(global))
        .templates(templates)
        .build();
    if args.purge_every > 0 {
        let purger = server.clone();
        let every = std::time::Duration::from_secs(args.purge_every);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                match purger
                    .purge(1000, std::time::Duration::from_millis(10))
                    .await
                {
                    Ok(report) => tracing::info!(?report, "purged"),
                    Err(error) => tracing::warn!(%error, "purge failed"),
                }
            }
        });
    }
    let routes = application
        .routes(&server, &global.database_url)
        .await
        .map_err(CliError::App)?;
    let app = server
        .router()
        .merge(server.admin_router())
        .merge(web::health_router(store))
        .merge(routes);
    serve_app(global, &args, app).await
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
