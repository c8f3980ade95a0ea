//! The command line, as library code.
//!
//! The `oauthost` binary is a few lines over [`main`]. An application's own binary reuses
//! the same commands, the way Django apps share `manage.py`: it parses [`Cli`] (or flattens
//! [`Command`] into its own clap enum) and calls [`Cli::run`] or [`run_command`].
//!
//! The subcommands, flags and their output are a public contract:
//!
//! ```text
//! oauthost [--database-url URL] [--debug] <COMMAND>
//!   migrate
//!   serve [--bind ADDR] [--no-migrate] [--tls-cert FILE --tls-key FILE]
//!         [--trust-forwarded-proto] [--issuer URL] [--mount-path PATH]
//!         [--no-implicit-grant] [--no-password-grant] [--no-pkce-plain]
//!         [--no-query-tokens] [--purge-every SECS] [--token-cache-ttl SECS]
//!         [--strict-revocation]
//!         [--template NAME=FILE]...
//!   user create USERNAME (--password P | --password-stdin) [--staff]
//!   user list
//!   scope add IDENTIFIER [--title T] [--disabled]
//!   scope list
//!   client register --title T [--id ID] [--redirect-uri URI]... --owner USERNAME
//!                   [--scope S]... [--confidential] [--secret S] [--token-lifetime SECS]
//!                   [--no-register-unknown-scopes] [--no-fragment] [--description D]
//!                   [--link URL] [--grant-type G]...
//!   client list
//!   purge [--batch-size N]
//!   syncscopes APP...
//! ```

mod serve;
mod table;

use std::{
    io::{self, BufRead, Write},
    process::ExitCode,
};

use clap::{builder::BoolishValueParser, Args, Parser, Subcommand};
use oauthost_core::client::GrantType;
use serde_json::json;
pub use serve::{serve_app, ServeArgs};
use time::format_description::well_known::Rfc3339;

use axum::Router;

use crate::{
    server::Oauthost,
    store::{self, DynStore, StoreError},
    toolbox::{self, ClientRegistration, ToolboxError},
};

/// Why a command failed. Printed as one line on standard error.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The input was refused.
    #[error(transparent)]
    Toolbox(#[from] ToolboxError),
    /// The password could not be read.
    #[error("cannot read the password from standard input: {0}")]
    Stdin(#[source] io::Error),
    /// The server could not listen.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address asked for.
        address: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The server stopped with an error.
    #[error("server error: {0}")]
    Serve(#[source] io::Error),
    /// Page templates could not be loaded.
    #[error(transparent)]
    Templates(#[from] crate::web::TemplateError),
    /// The TLS certificate or key could not be used.
    #[error("cannot use the TLS certificate and key: {0}")]
    Tls(String),
    /// The arguments do not make sense together.
    #[error("{0}")]
    Usage(String),
    /// The application failed.
    #[error("{0}")]
    App(AppError),
    /// The server's logic failed.
    #[error(transparent)]
    Server(#[from] crate::server::ServerError),
    /// `syncscopes` was given an app this binary does not contain.
    #[error("unknown app {name:?}: it is not part of this binary (apps here: {known})")]
    UnknownApp {
        /// The app asked for.
        name: String,
        /// The apps this binary has.
        known: String,
    },
    /// Standard output could not be written.
    #[error("cannot write the output: {0}")]
    Output(#[from] io::Error),
}

/// Options every subcommand takes.
#[derive(Debug, Clone, Args)]
pub struct GlobalOptions {
    /// Database to use: sqlite://PATH (created when missing) or postgres://USER@HOST/DB.
    #[arg(
        long,
        global = true,
        env = "OAUTHOST_DATABASE_URL",
        default_value = "sqlite://oauthost.db",
        hide_env_values = true
    )]
    pub database_url: String,
    /// Debug mode (the seed's DEBUG): plain http allowed, more detail in error pages.
    #[arg(
        long,
        global = true,
        env = "OAUTHOST_DEBUG",
        value_parser = BoolishValueParser::new()
    )]
    pub debug: bool,
}

/// `oauthost`: an OAuth 2.0 authorization server.
#[derive(Debug, Parser)]
#[command(name = "oauthost", version, about, propagate_version = true)]
pub struct Cli {
    /// Options of every subcommand.
    #[command(flatten)]
    pub global: GlobalOptions,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Create or update the database tables.
    Migrate,
    /// Run the server.
    Serve(ServeArgs),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage scopes.
    #[command(subcommand)]
    Scope(ScopeCommand),
    /// Manage clients.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Delete expired and revoked codes and tokens, expired sessions and old login
    /// counters, in batches.
    Purge {
        /// Rows of each kind deleted per statement.
        #[arg(long, default_value_t = 1000)]
        batch_size: u32,
    },
    /// Create the scopes of the `#[oauth_required]` handlers of the named apps.
    Syncscopes {
        /// Apps (crates) linked into this binary, e.g. polls.
        #[arg(required = true)]
        apps: Vec<String>,
    },
}

/// `user` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum UserCommand {
    /// Create a user.
    Create {
        /// Login name: letters, digits and @ . + - _.
        username: String,
        /// The password (visible to other local users in the process list: prefer
        /// --password-stdin).
        #[arg(
            long,
            required_unless_present = "password_stdin",
            conflicts_with = "password_stdin"
        )]
        password: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Allow the user into the admin site.
        #[arg(long)]
        staff: bool,
    },
    /// List users.
    List,
}

/// `scope` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum ScopeCommand {
    /// Add a scope.
    Add {
        /// Identifier, usually app:view (e.g. polls:index).
        identifier: String,
        /// Readable title (default: built from the identifier).
        #[arg(long)]
        title: Option<String>,
        /// Create it disabled.
        #[arg(long)]
        disabled: bool,
    },
    /// List scopes, by title.
    List,
}

/// `client` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum ClientCommand {
    /// Register a client; prints it as JSON, with its secret for a confidential client.
    Register(Box<RegisterArgs>),
    /// List clients, by title.
    List,
}

/// Arguments of `client register`.
#[derive(Debug, Clone, Args)]
pub struct RegisterArgs {
    /// Unique title.
    #[arg(long)]
    pub title: String,
    /// Public client identifier (default: 43 random characters).
    #[arg(long = "id")]
    pub id: Option<String>,
    /// A redirection endpoint (repeat for several).
    #[arg(long = "redirect-uri")]
    pub redirect_uris: Vec<String>,
    /// Username of the registering user.
    #[arg(long)]
    pub owner: String,
    /// A scope the client is restricted to (repeat for several; none: every enabled scope).
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
    /// A confidential client, which authenticates with a secret.
    #[arg(long)]
    pub confidential: bool,
    /// The secret of a confidential client (default: a generated 256-bit secret).
    #[arg(long, requires = "confidential")]
    pub secret: Option<String>,
    /// Access token lifetime in seconds.
    #[arg(long, default_value_t = u64::from(toolbox::DEFAULT_TOKEN_LIFETIME))]
    pub token_lifetime: u64,
    /// Refuse scopes that do not exist instead of creating them.
    #[arg(long)]
    pub no_register_unknown_scopes: bool,
    /// The client does not accept a `#` fragment in a redirect (hash_sign_supported off).
    #[arg(long)]
    pub no_fragment: bool,
    /// Description shown to operators.
    #[arg(long, default_value = "")]
    pub description: String,
    /// The client's home page.
    #[arg(long)]
    pub link: Option<String>,
    /// A grant type the client may use (repeat for several; default: all).
    #[arg(long = "grant-type")]
    pub grant_types: Vec<GrantType>,
}

impl Cli {
    /// Runs the command.
    pub async fn run(self) -> Result<(), CliError> {
        run_command(&self.global, self.command).await
    }
}

/// An application's part in the command line: its own tables and routes, beside oauthost's,
/// in the same database (as a Django app's models and URLs join its project's).
#[async_trait::async_trait]
pub trait App: Send + Sync {
    /// Creates or updates the application's tables, after oauthost's; returns lines to
    /// print. Must be safe to run again.
    async fn migrate(&self, database_url: &str) -> Result<Vec<String>, AppError>;
    /// The application's routes, which `serve` merges with oauthost's.
    async fn routes(&self, oauthost: &Oauthost, database_url: &str) -> Result<Router, AppError>;
}

/// An application's error, reported on one line.
pub type AppError = Box<dyn std::error::Error + Send + Sync>;

/// The command line without an application: oauthost's own.
struct NoApp;

#[async_trait::async_trait]
impl App for NoApp {
    async fn migrate(&self, _: &str) -> Result<Vec<String>, AppError> {
        Ok(Vec::new())
    }

    async fn routes(&self, _: &Oauthost, _: &str) -> Result<Router, AppError> {
        Ok(Router::new())
    }
}

/// Runs one command with the given global options.
pub async fn run_command(global: &GlobalOptions, command: Command) -> Result<(), CliError> {
    run_app_command(global, command, &NoApp).await
}

/// Runs one command for a binary that adds `app` to oauthost.
pub async fn run_app_command(
    global: &GlobalOptions,
    command: Command,
    app: &dyn App,
) -> Result<(), CliError> {
    match command {
        Command::Serve(args) => serve::serve(global, args, app).await,
        Command::Migrate => {
            migrate(&connect(global).await?).await?;
            for line in app
                .migrate(&global.database_url)
                .await
                .map_err(CliError::App)?
            {
                writeln!(io::stdout(), "{line}")?;
            }
            Ok(())
        }
        Command::Purge { batch_size } => {
            let server = Oauthost::new(connect(global).await?);
            let report = server
                .purge(batch_size.max(1), std::time::Duration::from_millis(10))
                .await?;
            writeln!(
                io::stdout(),
                "Purged {} codes, {} tokens, {} sessions and {} login counters.",
                report.codes,
                report.tokens,
                report.sessions,
                report.login_failures
            )?;
            Ok(())
        }
        Command::Syncscopes { apps } => {
            for line in syncscopes(&connect(global).await?, &apps).await? {
                writeln!(io::stdout(), "{line}")?;
            }
            Ok(())
        }
        Command::User(command) => user(&connect(global).await?, command).await,
        Command::Scope(command) => scope(&connect(global).await?, command).await,
        Command::Client(command) => client(global, &connect(global).await?, command).await,
    }
}

async fn connect(global: &GlobalOptions) -> Result<DynStore, CliError> {
    Ok(store::connect(&global.database_url).await?)
}

async fn migrate(store: &DynStore) -> Result<(), CliError> {
    let applied = store.migrate().await?;
    let mut out = io::stdout().lock();
    if applied.is_empty() {
        writeln!(
            out,
            "No migrations to apply: the database schema is up to date."
        )?;
    }
    for migration in applied {
        writeln!(
            out,
            "Applied migration {}: {}",
            migration.version, migration.description
        )?;
    }
    Ok(())
}

fn read_password_line() -> Result<String, CliError> {
    let mut line = String::new();
    io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(CliError::Stdin)?;
    let trimmed = line.strip_suffix('\n').unwrap_or(&line);
    Ok(trimmed.strip_suffix('\r').unwrap_or(trimmed).to_owned())
}

async fn user(store: &DynStore, command: UserCommand) -> Result<(), CliError> {
    match command {
        UserCommand::Create {
            username,
            password,
            password_stdin,
            staff,
        } => {
            let password = match password {
                Some(password) if !password_stdin => password,
                _ => read_password_line()?,
            };
            let user = toolbox::create_user(&**store, &username, &password, staff).await?;
            let role = if user.is_staff { "staff user" } else { "user" };
            writeln!(io::stdout(), "Created {role} {:?}.", user.username)?;
        }
        UserCommand::List => {
            let users = store.list_users().await?;
            table::print(
                ["USERNAME", "STAFF", "ACTIVE", "CREATED"],
                users.iter().map(|u| {
                    [
                        u.username.clone(),
                        yes_no(u.is_staff),
                        yes_no(u.is_active),
                        u.created_at.format(&Rfc3339).unwrap_or_default(),
                    ]
                }),
            )?;
        }
    }
    Ok(())
}

fn yes_no(flag: bool) -> String {
    if flag { "yes" } else { "no" }.to_owned()
}

async fn scope(store: &DynStore, command: ScopeCommand) -> Result<(), CliError> {
    match command {
        ScopeCommand::Add {
            identifier,
            title,
            disabled,
        } => {
            let scope =
                toolbox::add_scope(&**store, &identifier, title.as_deref(), !disabled).await?;
            let status = if scope.enabled { "enabled" } else { "disabled" };
            writeln!(
                io::stdout(),
                "Created scope {} ({:?}, {status}).",
                scope.identifier,
                scope.title
            )?;
        }
        ScopeCommand::List => {
            let scopes = store.list_scopes().await?;
            table::print(
                ["IDENTIFIER", "TITLE", "STATUS"],
                scopes.iter().map(|s| {
                    [
                        s.identifier.to_string(),
                        s.title.clone(),
                        if s.enabled { "enabled" } else { "disabled" }.to_owned(),
                    ]
                }),
            )?;
        }
    }
    Ok(())
}

async fn client(
    global: &GlobalOptions,
    store: &DynStore,
    command: ClientCommand,
) -> Result<(), CliError> {
    match command {
        ClientCommand::Register(args) => {
            let mut registration = ClientRegistration::new(&args.title, &args.owner)
                .scopes(&args.scopes)
                .register_unknown_scopes(!args.no_register_unknown_scopes)
                .token_lifetime(args.token_lifetime)
                .public(!args.confidential)
                .hash_sign_supported(!args.no_fragment)
                .description(&args.description)
                .allow_insecure_http(global.debug);
            for uri in &args.redirect_uris {
                registration = registration.redirect_uri(uri);
            }
            if let Some(id) = &args.id {
                registration = registration.identifier(id);
            }
            if let Some(secret) = &args.secret {
                registration = registration.secret(secret);
            }
            if let Some(link) = &args.link {
                registration = registration.link(link);
            }
            if !args.grant_types.is_empty() {
                registration = registration.grant_types(args.grant_types.iter().copied());
            }
            let registered = toolbox::register_client(&**store, registration).await?;
            for uri in &registered.insecure_redirect_uris {
                eprintln!(
                    "warning: redirect URI {uri} uses plain http to a remote host; \
                     accepted only because of debug mode"
                );
            }
            let client = &registered.client;
            let mut output = json!({
                "client_id": client.identifier,
                "title": client.title,
                "client_type": client.client_type,
                "registrant": args.owner,
                "redirect_uris": registered.redirect_uris,
                "scopes": registered.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
                "token_lifetime": client.token_lifetime,
                "hash_sign_supported": client.hash_sign_supported,
                "grant_types": client.grant_types.iter().collect::<Vec<_>>(),
            });
            if let Some(secret) = &registered.secret {
                output["client_secret"] = json!(secret.expose());
            }
            writeln!(io::stdout(), "{output}")?;
        }
        ClientCommand::List => {
            let clients = store.list_clients().await?;
            table::print(
                ["TITLE", "CLIENT_ID", "TYPE", "REGISTRANT", "CREATED"],
                clients.iter().map(|c| {
                    [
                        c.client.title.clone(),
                        c.client.identifier.clone(),
                        c.client.client_type.to_string(),
                        c.registrant.clone(),
                        c.client.created_at.format(&Rfc3339).unwrap_or_default(),
                    ]
                }),
            )?;
        }
    }
    Ok(())
}

/// Creates the scopes of the `#[oauth_required]` handlers of `apps` that do not exist yet,
/// and returns what it did, a line each. An app this binary does not contain is an error,
/// reported before anything is written.
pub async fn syncscopes(store: &DynStore, apps: &[String]) -> Result<Vec<String>, CliError> {
    let known = crate::web::bearer::known_apps();
    if let Some(unknown) = apps.iter().find(|app| !known.contains(&app.as_str())) {
        return Err(CliError::UnknownApp {
            name: unknown.clone(),
            known: if known.is_empty() {
                "none".into()
            } else {
                known.join(", ")
            },
        });
    }
    // Every identifier is checked before anything is written.
    let mut plan: Vec<(&String, Vec<oauthost_core::scope::ScopeId>)> = Vec::new();
    for app in apps {
        let mut scopes = crate::web::bearer::protected_handlers()
            .filter(|handler| handler.app == app)
            .filter_map(|handler| handler.scope)
            .map(|scope| scope.parse().map_err(ToolboxError::from))
            .collect::<Result<Vec<oauthost_core::scope::ScopeId>, _>>()?;
        scopes.sort_unstable();
        scopes.dedup();
        plan.push((app, scopes));
    }
    let mut report = Vec::new();
    for (app, scopes) in plan {
        if scopes.is_empty() {
            report.push(format!(
                "App {app:?} has no protected handlers with a scope."
            ));
            continue;
        }
        for scope_id in scopes {
            if store.find_scope(&scope_id).await?.is_some() {
                report.push(format!("Scope {scope_id} exists; skipped."));
                continue;
            }
            let scope = toolbox::add_scope(&**store, scope_id.as_str(), None, true).await?;
            report.push(format!(
                "Created scope {} ({:?}).",
                scope.identifier, scope.title
            ));
        }
    }
    Ok(report)
}

/// Logs to standard error; `OAUTHOST_LOG` sets the filter (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("OAUTHOST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(io::IsTerminal::is_terminal(&io::stderr()))
        .with_writer(io::stderr)
        .try_init();
}

/// `error: ...` on one line.
fn report(error: &CliError) {
    let message = error.to_string().replace(['\n', '\r'], " ");
    eprintln!("error: {message}");
}

/// Parses the process's arguments, runs the command and returns its exit status: what the
/// `oauthost` binary does.
pub fn main() -> ExitCode {
    main_for("oauthost", &NoApp)
}

/// [`main`] for an application's own binary called `name`, which adds `app`'s tables and
/// routes to oauthost's.
pub fn main_for(name: &'static str, app: &dyn App) -> ExitCode {
    use clap::{CommandFactory, FromArgMatches};
    let matches = Cli::command().name(name).bin_name(name).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    init_tracing();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run_app_command(&cli.global, cli.command, app)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            report(&error);
            ExitCode::FAILURE
        }
    }
}
