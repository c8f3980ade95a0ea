//! The pages oauthost shows, as replaceable templates (the seed's `OAUTHOST_TEMPLATE_*`
//! settings).
//!
//! Templates use [minijinja](https://docs.rs/minijinja) (Jinja2 syntax, close to Django's);
//! every value is HTML-escaped unless marked safe. Each page can be replaced by name:
//!
//! | name | shown | variables (besides the common ones) |
//! |---|---|---|
//! | `login` | the login form | `action`, `next`, `username`, `error` |
//! | `logout` | the logout button | `action`, `next` |
//! | `authorize` | the consent page | `action`, `client` (`title`, `identifier`, `description`, `link`), `scopes` (each `identifier`, `title`; also as `scopes_obj`), `request_id` |
//! | `authorize_error` | an authorization request that cannot be redirected | `error`, `error_description` |
//! | `authorize_proceed` | a link to the client, for clients that cannot take `#` in a redirect | `action`, `client` |
//! | `forbidden` | plain http refused, a failed CSRF check | `message` |
//! | `restricted` | a protected page refused without a valid token | `message`, `error`, `error_description` |
//!
//! Common variables: `oauthost_title` (the page's title), `user` (the logged-in username, if
//! any), `csrf_input` (a ready hidden `<input>` carrying the CSRF token: put `{{ csrf_input }}`
//! in every form that posts), `csrf_token`, `debug`.
//! A replacement may extend `base.html`, the built-in layout.

use std::{collections::BTreeMap, path::Path, sync::Arc};

use minijinja::{Environment, Value};

/// The names of the pages that can be replaced.
pub const TEMPLATE_NAMES: [&str; 7] = [
    "login",
    "logout",
    "authorize",
    "authorize_error",
    "authorize_proceed",
    "forbidden",
    "restricted",
];

const BUILTIN: &[(&str, &str)] = &[
    ("base", include_str!("../../templates/base.html")),
    ("login", include_str!("../../templates/login.html")),
    ("logout", include_str!("../../templates/logout.html")),
    ("authorize", include_str!("../../templates/authorize.html")),
    (
        "authorize_error",
        include_str!("../../templates/authorize_error.html"),
    ),
    (
        "authorize_proceed",
        include_str!("../../templates/authorize_proceed.html"),
    ),
    ("forbidden", include_str!("../../templates/forbidden.html")),
    (
        "restricted",
        include_str!("../../templates/restricted.html"),
    ),
    (
        "admin/base",
        include_str!("../../templates/admin/base.html"),
    ),
    (
        "admin/index",
        include_str!("../../templates/admin/index.html"),
    ),
    (
        "admin/message",
        include_str!("../../templates/admin/message.html"),
    ),
    (
        "admin/macros",
        include_str!("../../templates/admin/macros.html"),
    ),
    (
        "admin/scopes",
        include_str!("../../templates/admin/scopes.html"),
    ),
    (
        "admin/scopes_delete",
        include_str!("../../templates/admin/scopes_delete.html"),
    ),
    (
        "admin/scope_form",
        include_str!("../../templates/admin/scope_form.html"),
    ),
    (
        "admin/clients",
        include_str!("../../templates/admin/clients.html"),
    ),
    (
        "admin/client_fields",
        include_str!("../../templates/admin/client_fields.html"),
    ),
    (
        "admin/client_add",
        include_str!("../../templates/admin/client_add.html"),
    ),
    (
        "admin/client",
        include_str!("../../templates/admin/client.html"),
    ),
    (
        "admin/client_delete",
        include_str!("../../templates/admin/client_delete.html"),
    ),
    (
        "admin/redirect_delete",
        include_str!("../../templates/admin/redirect_delete.html"),
    ),
    (
        "admin/shown_once",
        include_str!("../../templates/admin/shown_once.html"),
    ),
    (
        "admin/token_table",
        include_str!("../../templates/admin/token_table.html"),
    ),
    (
        "admin/code_table",
        include_str!("../../templates/admin/code_table.html"),
    ),
    (
        "admin/tokens",
        include_str!("../../templates/admin/tokens.html"),
    ),
    (
        "admin/codes",
        include_str!("../../templates/admin/codes.html"),
    ),
    (
        "admin/users",
        include_str!("../../templates/admin/users.html"),
    ),
    (
        "admin/user_form",
        include_str!("../../templates/admin/user_form.html"),
    ),
];

/// Why templates could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// No page has this name.
    #[error("unknown template {0:?}: the names are {names}", names = TEMPLATE_NAMES.join(", "))]
    UnknownName(String),
    /// A replacement file could not be read.
    #[error("cannot read template file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A template does not compile.
    #[error("template {name:?} is invalid: {source}")]
    Syntax {
        /// The template.
        name: String,
        /// The compiler's error.
        #[source]
        source: minijinja::Error,
    },
}

/// The set of page templates, built-in or replaced.
#[derive(Clone)]
pub struct Templates {
    env: Arc<Environment<'static>>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates").finish_non_exhaustive()
    }
}

impl Default for Templates {
    fn default() -> Self {
        Self::with_replacements(BTreeMap::<String, String>::new()).unwrap_or_else(|_| Self {
            env: Arc::new(Environment::new()),
        })
    }
}

impl Templates {
    /// The built-in pages with some replaced: `replacements` maps a name of
    /// [`TEMPLATE_NAMES`] to template source.
    pub fn with_replacements<I, K, V>(replacements: I) -> Result<Self, TemplateError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut sources: BTreeMap<String, String> = BUILTIN
            .iter()
            .map(|(name, source)| ((*name).to_owned(), (*source).to_owned()))
            .collect();
        for (name, source) in replacements {
            let name = name.into();
            if !TEMPLATE_NAMES.contains(&name.as_str()) {
                return Err(TemplateError::UnknownName(name));
            }
            sources.insert(name, source.into());
        }
        let mut env = Environment::new();
        for (name, source) in sources {
            let file = format!("{name}.html");
            env.add_template_owned(file, source)
                .map_err(|source| TemplateError::Syntax { name, source })?;
        }
        Ok(Self { env: Arc::new(env) })
    }

    /// The built-in pages with those named in `OAUTHOST_TEMPLATE_<NAME>` environment
    /// variables (for example `OAUTHOST_TEMPLATE_AUTHORIZE=/etc/oauthost/authorize.html`)
    /// and in `files` (name, path) replaced by the files' contents.
    pub fn from_env_and_files<'a>(
        files: impl IntoIterator<Item = (&'a str, &'a Path)>,
    ) -> Result<Self, TemplateError> {
        let mut paths: Vec<(String, std::path::PathBuf)> = TEMPLATE_NAMES
            .iter()
            .filter_map(|name| {
                let var = format!("OAUTHOST_TEMPLATE_{}", name.to_uppercase());
                std::env::var_os(var).map(|path| ((*name).to_owned(), path.into()))
            })
            .collect();
        paths.extend(
            files
                .into_iter()
                .map(|(name, path)| (name.to_owned(), path.to_owned())),
        );
        let mut replacements = Vec::with_capacity(paths.len());
        for (name, path) in paths {
            let source = std::fs::read_to_string(&path).map_err(|source| TemplateError::Io {
                path: path.display().to_string(),
                source,
            })?;
            replacements.push((name, source));
        }
        Self::with_replacements(replacements)
    }

    /// Renders page `name` with `context`.
    pub(crate) fn render(&self, name: &str, context: Value) -> Result<String, minijinja::Error> {
        self.env
            .get_template(&format!("{name}.html"))?
            .render(context)
    }
}

#[cfg(test)]
mod tests {
    use minijinja::context;

    use super::*;

    #[test]
    fn every_builtin_page_renders_and_escapes() {
        let templates = Templates::default();
        for name in TEMPLATE_NAMES {
            let html = templates
                .render(
                    name,
                    context! {
                        oauthost_title => "<b>x</b>",
                        message => "<script>",
                        error_description => "<i>",
                        client => context! { title => "<script>" },
                        scopes => vec![context! { identifier => "a", title => "<script>" }],
                    },
                )
                .unwrap();
            assert!(
                html.contains("&lt;b&gt;x") && !html.contains("<b>x"),
                "{name}: {html}"
            );
            assert!(!html.contains("<script>"), "{name}");
        }
    }

    #[test]
    fn pages_can_be_replaced_by_name_only() {
        let templates = Templates::with_replacements([("forbidden", "NO: {{ message }}")]).unwrap();
        let html = templates
            .render("forbidden", context! { message => "a&b" })
            .unwrap();
        assert_eq!(html, "NO: a&amp;b");
        assert!(matches!(
            Templates::with_replacements([("base", "x")]),
            Err(TemplateError::UnknownName(_))
        ));
        assert!(matches!(
            Templates::with_replacements([("login", "{% if %}")]),
            Err(TemplateError::Syntax { .. })
        ));
    }
}
