//! Clients: list, search, add, edit, delete; on a client's page its redirect endpoints,
//! codes and tokens inline, and the "generate new secret" and "issue a token" actions,
//! whose values are shown once.

use axum::{
    body::Bytes,
    extract::{rejection::BytesRejection, Path, RawQuery, State},
    http::{HeaderMap, StatusCode},
    response::Response,
};
use minijinja::{context, Value};
use oauthost_core::{
    client::{ClientType, GrantType, GrantTypes},
    params::Params,
    redirect::RedirectUri,
    scope::ScopeList,
    secret::Secret,
};

use super::{
    fields::{checkbox, text, FieldErrors},
    listing::{when, Listing},
    tokens::{code_rows, token_rows},
    try_or_fail, Staff,
};
use crate::{
    store::{
        admin::{
            ClientChanges, ClientFilter, ClientSort, CodeFilter, CodeSort, PageRequest, SortKey,
            TokenFilter, TokenSort,
        },
        Client, Scope, StoreError,
    },
    toolbox::{self, ClientRegistration, ToolboxError, DEFAULT_TOKEN_LIFETIME},
    web::WebState,
};

/// How many codes and tokens a client's page shows inline (the listings show them all).
const INLINE_ROWS: i64 = 10;

/// `GET /admin/clients/`.
pub(crate) async fn list(
    State(state): State<WebState>,
    mut staff: Staff,
    query: RawQuery,
) -> Response {
    let listing: Listing<ClientSort> = Listing::parse(&state.path("/admin/"), "clients/", query);
    let filter = ClientFilter {
        search: listing.search.clone(),
        client_type: listing.get("type").and_then(|t| t.parse().ok()),
    };
    let page = try_or_fail!(
        staff,
        &state,
        state
            .server
            .store()
            .client_page(&filter, listing.order, listing.page_request())
            .await
    );
    let rows: Vec<Value> = page
        .items
        .iter()
        .map(|summary| {
            let client = &summary.client;
            context! {
                id => client.id,
                title => client.title,
                identifier => client.identifier,
                client_type => client.client_type.as_str(),
                registrant => summary.registrant,
                created => when(client.created_at),
            }
        })
        .collect();
    let types = [ClientType::Confidential, ClientType::Public]
        .map(|t| (t.as_str().to_owned(), super::fields::sentence(t.as_str())));
    let response = staff.page(
        &state,
        StatusCode::OK,
        "admin/clients",
        "Clients",
        context! {
            section => "clients",
            rows => rows,
            columns => [
                listing.column(ClientSort::Title, "Title"),
                listing.column(ClientSort::Identifier, "Identifier"),
                listing.column(ClientSort::Type, "Type"),
                listing.column(ClientSort::Registrant, "Registrant"),
                listing.column(ClientSort::Created, "Created"),
            ],
            filters => [listing.filter("type", "By type", &types)],
            pagination => listing.pagination(page.total),
        },
    );
    staff.respond(&state, response).await
}

/// The client form's values, as entered.
struct ClientForm {
    title: String,
    identifier: String,
    client_type: String,
    description: String,
    link: String,
    token_lifetime: String,
    scope_ids: Vec<i64>,
    hash_sign_supported: bool,
    grant_types: Vec<String>,
    /// Only when adding: one URI per line.
    redirect_uris: String,
}

/// A client form that passed validation.
struct ValidClient {
    changes: ClientChanges,
    /// Identifiers of the chosen scopes.
    scopes: Vec<String>,
    redirect_uris: Vec<String>,
}

impl ClientForm {
    fn read(params: &Params) -> Self {
        Self {
            title: text(params, "title").to_owned(),
            identifier: text(params, "identifier").trim().to_owned(),
            client_type: text(params, "client_type").to_owned(),
            description: text(params, "description").to_owned(),
            link: text(params, "link").trim().to_owned(),
            token_lifetime: text(params, "token_lifetime").trim().to_owned(),
            scope_ids: super::listing::posted_ids(params, "scopes"),
            hash_sign_supported: checkbox(params, "hash_sign_supported"),
            grant_types: params.all("grant_types").map(str::to_owned).collect(),
            redirect_uris: text(params, "redirect_uris").to_owned(),
        }
    }

    fn blank() -> Self {
        Self {
            title: String::new(),
            identifier: String::new(),
            client_type: ClientType::Confidential.as_str().to_owned(),
            description: String::new(),
            link: String::new(),
            token_lifetime: DEFAULT_TOKEN_LIFETIME.to_string(),
            scope_ids: Vec::new(),
            hash_sign_supported: true,
            grant_types: GrantTypes::default()
                .iter()
                .map(|g| g.as_str().to_owned())
                .collect(),
            redirect_uris: String::new(),
        }
    }

    fn of(client: &Client, scopes: &[Scope]) -> Self {
        Self {
            title: client.title.clone(),
            identifier: client.identifier.clone(),
            client_type: client.client_type.as_str().to_owned(),
            description: client.description.clone(),
            link: client.link.clone().unwrap_or_default(),
            token_lifetime: client.token_lifetime.to_string(),
            scope_ids: scopes.iter().map(|s| s.id).collect(),
            hash_sign_supported: client.hash_sign_supported,
            grant_types: client
                .grant_types
                .iter()
                .map(|g| g.as_str().to_owned())
                .collect(),
            redirect_uris: String::new(),
        }
    }

    /// The checked values, or `None` with every error recorded. `adding` also checks the
    /// redirect URIs (edited inline afterwards); `all_scopes` are the scopes that exist.
    fn validate(
        &self,
        errors: &mut FieldErrors,
        all_scopes: &[Scope],
        adding: bool,
        debug: bool,
    ) -> Option<ValidClient> {
        let title = errors.check("title", toolbox::check_title("client title", &self.title));
        let identifier = if self.identifier.is_empty() && adding {
            Some(String::new())
        } else {
            errors
                .check(
                    "identifier",
                    toolbox::check_client_identifier(&self.identifier),
                )
                .map(|()| self.identifier.clone())
        };
        let client_type = errors.check("client_type", self.client_type.parse::<ClientType>());
        let lifetime = match self.token_lifetime.parse::<u64>() {
            Ok(seconds) => errors.check("token_lifetime", toolbox::check_token_lifetime(seconds)),
            Err(_) => {
                errors.add(
                    "token_lifetime",
                    format!(
                        "the token lifetime must be a whole number of seconds, not {:?}",
                        self.token_lifetime
                    ),
                );
                None
            }
        };
        let link = if self.link.is_empty() {
            Some(None)
        } else {
            errors
                .check("link", toolbox::check_link(&self.link))
                .map(|()| Some(self.link.clone()))
        };
        let grants: Option<GrantTypes> = errors
            .check(
                "grant_types",
                self.grant_types
                    .iter()
                    .map(|g| g.parse::<GrantType>())
                    .collect::<Result<GrantTypes, _>>(),
            )
            .filter(|grants| {
                let some = grants.iter().next().is_some();
                if !some {
                    errors.add("grant_types", ToolboxError::NoGrantType);
                }
                some
            });
        let mut scopes = Vec::new();
        for id in &self.scope_ids {
            match all_scopes.iter().find(|s| s.id == *id) {
                Some(scope) => scopes.push(scope.identifier.to_string()),
                None => errors.add("scopes", format!("there is no scope with key {id}")),
            }
        }
        let mut redirect_uris = Vec::new();
        if adding {
            for uri in self
                .redirect_uris
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
            {
                if let Some(uri) = errors.check("redirect_uris", RedirectUri::parse(uri, debug)) {
                    redirect_uris.push(uri.as_str().to_owned());
                }
            }
        }
        if !errors.is_empty() {
            return None;
        }
        Some(ValidClient {
            changes: ClientChanges {
                identifier: identifier?,
                title: title?.to_owned(),
                client_type: client_type?,
                description: self.description.clone(),
                link: link?,
                token_lifetime: lifetime?,
                hash_sign_supported: self.hash_sign_supported,
                grant_types: grants?,
                scope_ids: self.scope_ids.clone(),
            },
            scopes,
            redirect_uris,
        })
    }

    fn to_value(&self, all_scopes: &[Scope]) -> Value {
        let scopes: Vec<Value> = all_scopes
            .iter()
            .map(|s| {
                context! {
                    id => s.id,
                    title => s.title,
                    identifier => s.identifier.as_str(),
                    selected => self.scope_ids.contains(&s.id),
                }
            })
            .collect();
        let grants: Vec<Value> = GrantType::ALL
            .iter()
            .map(|g| {
                context! {
                    name => g.as_str(),
                    checked => self.grant_types.iter().any(|c| c == g.as_str()),
                }
            })
            .collect();
        context! {
            title => self.title,
            identifier => self.identifier,
            client_type => self.client_type,
            description => self.description,
            link => self.link,
            token_lifetime => self.token_lifetime,
            hash_sign_supported => self.hash_sign_supported,
            scopes => scopes,
            grants => grants,
            redirect_uris => self.redirect_uris,
        }
    }
}

/// Every scope, for the restriction's multiple select.
async fn every_scope(state: &WebState) -> Result<Vec<Scope>, StoreError> {
    state.server.store().list_scopes().await
}

fn status_of(errors: &FieldErrors) -> StatusCode {
    if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    }
}

fn add_page(
    state: &WebState,
    staff: &mut Staff,
    form: &ClientForm,
    all_scopes: &[Scope],
    errors: &FieldErrors,
) -> Response {
    staff.page(
        state,
        status_of(errors),
        "admin/client_add",
        "Add client",
        context! {
            section => "clients",
            form => form.to_value(all_scopes),
            errors => errors.to_value(),
        },
    )
}

/// `GET /admin/clients/add/`.
pub(crate) async fn add_form(State(state): State<WebState>, mut staff: Staff) -> Response {
    let all_scopes = try_or_fail!(staff, &state, every_scope(&state).await);
    let response = add_page(
        &state,
        &mut staff,
        &ClientForm::blank(),
        &all_scopes,
        &FieldErrors::default(),
    );
    staff.respond(&state, response).await
}

/// `POST /admin/clients/add/`: registers the client; a confidential client's generated
/// secret is shown once.
pub(crate) async fn add(
    State(state): State<WebState>,
    mut staff: Staff,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let params = match staff.form(&state, &headers, body) {
        Ok(params) => params,
        Err(response) => return staff.respond(&state, response).await,
    };
    let all_scopes = try_or_fail!(staff, &state, every_scope(&state).await);
    let form = ClientForm::read(&params);
    let mut errors = FieldErrors::default();
    let debug = state.server.settings().debug;
    if let Some(valid) = form.validate(&mut errors, &all_scopes, true, debug) {
        let c = valid.changes;
        let mut registration = ClientRegistration::new(c.title, staff.user.username.clone())
            .public(c.client_type == ClientType::Public)
            .description(c.description)
            .token_lifetime(c.token_lifetime.unsigned_abs())
            .hash_sign_supported(c.hash_sign_supported)
            .grant_types(c.grant_types.iter())
            .scopes(valid.scopes)
            .register_unknown_scopes(false)
            .allow_insecure_http(debug);
        if !c.identifier.is_empty() {
            registration = registration.identifier(c.identifier);
        }
        if let Some(link) = c.link {
            registration = registration.link(link);
        }
        for uri in valid.redirect_uris {
            registration = registration.redirect_uri(uri);
        }
        match toolbox::register_client(state.server.store().as_ref(), registration).await {
            Ok(registered) => {
                let client = registered.client;
                staff.success(format!("Client \"{}\" registered.", client.title));
                return match registered.secret {
                    Some(secret) => {
                        let response = shown_once(
                            &state,
                            &mut staff,
                            &client,
                            "Client secret",
                            &[("The client's secret", &secret)],
                        );
                        staff.respond(&state, response).await
                    }
                    None => {
                        staff
                            .redirect(&state, &format!("clients/{}/", client.id))
                            .await
                    }
                };
            }
            Err(error) => try_or_fail!(
                staff,
                &state,
                errors.taken(
                    error,
                    &[
                        ("client title", "title"),
                        ("client identifier", "identifier")
                    ]
                )
            ),
        }
    }
    let response = add_page(&state, &mut staff, &form, &all_scopes, &errors);
    staff.respond(&state, response).await
}

/// The page showing a new secret or token once: it is not stored in clear and cannot be
/// shown again.
fn shown_once(
    state: &WebState,
    staff: &mut Staff,
    client: &Client,
    title: &str,
    values: &[(&str, &Secret)],
) -> Response {
    let values: Vec<Value> = values
        .iter()
        .map(|(what, secret)| context! { what => what, value => secret.expose() })
        .collect();
    staff.page(
        state,
        StatusCode::OK,
        "admin/shown_once",
        title,
        context! {
            section => "clients",
            client => context! { id => client.id, title => client.title, identifier => client.identifier },
            values => values,
        },
    )
}

/// One of the small forms of the client page (add a redirect URI, issue a token) as
/// entered, with its error.
#[derive(Default)]
struct InlineForm {
    /// The text field (the URI, the username).
    value: String,
    /// The ticked scopes (issuing a token).
    scopes: Vec<String>,
    error: Option<String>,
}

impl InlineForm {
    fn failed(value: impl Into<String>, scopes: Vec<String>, error: impl ToString) -> Self {
        Self {
            value: value.into(),
            scopes,
            error: Some(super::fields::sentence(&error.to_string())),
        }
    }

    fn to_value(&self) -> Value {
        context! { value => self.value, scopes => self.scopes, error => self.error }
    }
}

/// The client page's small forms.
#[derive(Default)]
struct InlineForms {
    redirect: InlineForm,
    token: InlineForm,
}

#[allow(clippy::too_many_arguments)]
async fn client_page(
    state: &WebState,
    staff: &mut Staff,
    client: &Client,
    form: &ClientForm,
    errors: &FieldErrors,
    forms: &InlineForms,
) -> Result<Response, StoreError> {
    let store = state.server.store();
    let all_scopes = every_scope(state).await?;
    let endpoints = store.redirect_endpoints(client.id).await?;
    let now = state.server.now();
    let inline = PageRequest {
        offset: 0,
        limit: INLINE_ROWS,
    };
    let tokens = store
        .token_page(
            &TokenFilter {
                search: String::new(),
                client_id: Some(client.id),
                kind: None,
                status: None,
                issued: Default::default(),
                now,
            },
            TokenSort::DEFAULT,
            inline,
        )
        .await?;
    let codes = store
        .code_page(
            &CodeFilter {
                client_id: Some(client.id),
                ..CodeFilter::default()
            },
            CodeSort::DEFAULT,
            inline,
        )
        .await?;
    let client_scopes = store.client_scopes(client.id).await?;
    let allowed: Vec<&Scope> = if client_scopes.is_empty() {
        all_scopes.iter().filter(|s| s.enabled).collect()
    } else {
        client_scopes.iter().filter(|s| s.enabled).collect()
    };
    let status =
        if errors.is_empty() && forms.redirect.error.is_none() && forms.token.error.is_none() {
            StatusCode::OK
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
    Ok(staff.page(
        state,
        status,
        "admin/client",
        &client.title,
        context! {
            section => "clients",
            client => context! {
                id => client.id,
                title => client.title,
                identifier => client.identifier,
                client_type => client.client_type.as_str(),
                has_secret => client.secret_hash.is_some(),
                created => when(client.created_at),
            },
            form => form.to_value(&all_scopes),
            errors => errors.to_value(),
            endpoints => endpoints.iter().map(|e| context! { id => e.id, uri => e.uri }).collect::<Vec<_>>(),
            redirect => forms.redirect.to_value(),
            token_form => forms.token.to_value(),
            tokens => token_rows(&tokens.items, now),
            tokens_total => tokens.total,
            codes => code_rows(&codes.items, now),
            codes_total => codes.total,
            issuable_scopes => allowed.iter().map(|s| context! { identifier => s.identifier.as_str(), title => s.title }).collect::<Vec<_>>(),
        },
    ))
}

/// Loads the client `id`, or returns the 404 page from the handler.
macro_rules! client_or_404 {
    ($staff:ident, $state:expr, $id:expr) => {
        match try_or_fail!(
            $staff,
            $state,
            $state.server.store().find_client_by_key($id).await
        ) {
            Some(client) => client,
            None => return $staff.not_found($state, "client").await,
        }
    };
}

/// `GET /admin/clients/{id}/`: the client's page.
pub(crate) async fn edit_form(
    State(state): State<WebState>,
    mut staff: Staff,
    Path(id): Path<i64>,
) -> Response {
    let client = client_or_404!(staff, &state, id);
    let scopes = try_or_fail!(staff, &state, state.server.store().client_scopes(id).await);
    let form = ClientForm::of(&client, &scopes);
    let response = try_or_fail!(
        staff,
        &state,
        client_page(
            &state,
            &mut staff,
            &client,
            &form,
            &FieldErrors::default(),
            &InlineForms::default()
        )
        .await
    );
    staff.respond(&state, response).await
}

/// `POST /admin/clients/{id}/`: saves the client's settings.
pub(crate) async fn edit(
    State(state): State<WebState>,
    mut staff: Staff,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let params = match staff.form(&state, &headers, body) {
        Ok(params) => params,
        Err(response) => return staff.respond(&state, response).await,
    };
    let client = client_or_404!(staff, &state, id);
    let all_scopes = try_or_fail!(staff, &state, every_scope(&state).await);
    let form = ClientForm::read(&params);
    let mut errors = FieldErrors::default();
    let debug = state.server.settings().debug;
    if let Some(valid) = form.validate(&mut errors, &all_scopes, false, debug) {
        if valid.changes.client_type == ClientType::Public && client.secret_hash.is_some() {
            errors.add(
                "client_type",
                "this client has a secret: a public client cannot keep one",
            );
        } else {
            match state.server.store().update_client(id, &valid.changes).await {
                Ok(true) => {
                    staff.success(format!("Client \"{}\" saved.", valid.changes.title));
                    let needs_secret = valid.changes.client_type == ClientType::Confidential
                        && client.secret_hash.is_none();
                    if !needs_secret {
                        return staff.redirect(&state, &format!("clients/{id}/")).await;
                    }
                    // Now confidential: it needs a secret, shown once.
                    let secret = Secret::generate();
                    try_or_fail!(
                        staff,
                        &state,
                        state
                            .server
                            .store()
                            .set_client_secret(id, Some(&secret.hash()))
                            .await
                    );
                    let response = shown_once(
                        &state,
                        &mut staff,
                        &client,
                        "Client secret",
                        &[("The client is now confidential; its new secret", &secret)],
                    );
                    return staff.respond(&state, response).await;
                }
                Ok(false) => return staff.not_found(&state, "client").await,
                Err(error) => try_or_fail!(
                    staff,
                    &state,
                    errors.taken(
                        error.into(),
                        &[
                            ("client title", "title"),
                            ("client identifier", "identifier")
                        ]
                    )
                ),
            }
        }
    }
    let response = try_or_fail!(
        staff,
        &state,
        client_page(
            &state,
            &mut staff,
            &client,
            &form,
            &errors,
            &InlineForms::default()
        )
        .await
    );
    staff.respond(&state, response).await
}

/// `GET /admin/clients/{id}/delete/`: asks for confirmation.
pub(crate) async fn confirm_delete(
    State(state): State<WebState>,
    mut staff: Staff,
    Path(id): Path<i64>,
) -> Response {
    let client = client_or_404!(staff, &state, id);
    let response = staff.page(
        &state,
        StatusCode::OK,
        "admin/client_delete",
        "Delete client",
        context! {
            section => "clients",
            client => context! { id => client.id, title => client.title, identifier => client.identifier },
        },
    );
    staff.respond(&state, response).await
}

/// `POST /admin/clients/{id}/delete/`: deletes the client with its endpoints, codes and
/// tokens.
pub(crate) async fn delete(
    State(state): State<WebState>,
    mut staff: Staff,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Err(response) = staff.form(&state, &headers, body) {
        return staff.respond(&state, response).await;
    }
    let client = client_or_404!(staff, &state, id);
    try_or_fail!(staff, &state, state.server.store().delete_client(id).await);
    staff.success(format!("Client \"{}\" deleted.", client.title));
    staff.redirect(&state, "clients/").await
}

/// `POST /admin/clients/{id}/redirects/`: adds a redirect endpoint, validated as the
/// command line does.
pub(crate) async fn add_redirect(
    State(state): State<WebState>,
    mut staff: Staff,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let params = match staff.form(&state, &headers, body) {
        Ok(params) => params,
        Err(response) => return staff.respond(&state, response).await,
    };
    let client = client_or_404!(staff, &state, id);
    let value = text(&params, "uri").trim().to_owned();
    let error = match RedirectUri::parse(&value, state.server.settings().debug) {
        Ok(uri) => match state
            .server
            .store()
            .add_redirect_endpoint(id, uri.as_str())
            .await
        {
            Ok(_) => {
                staff.success(format!("Redirect URI {value} added."));
                return staff.redirect(&state, &format!("clients/{id}/")).await;
            }
            Err(StoreError::Duplicate { .. }) => {
                format!("the client already has the redirect URI {value:?}")
            }
            Err(error) => return staff.failed(&state, error).await,
        },
        Err(error) => error.to_string(),
    };
    let inline = InlineForms {
        redirect: InlineForm::failed(value, Vec::new(), error),
        ..InlineForms::default()
    };
    inline_failure(state, staff, &client, &inline).await
}

/// The client page again, showing what a small form refused and why.
async fn inline_failure(
    state: WebState,
    mut staff: Staff,
    client: &Client,
    inline: &InlineForms,
) -> Response {
    let scopes = try_or_fail!(
        staff,
        &state,
        state.server.store().client_scopes(client.id).await
    );
    let form = ClientForm::of(client, &scopes);
    let response = try_or_fail!(
        staff,
        &state,
        client_page(
            &state,
            &mut staff,
            client,
            &form,
            &FieldErrors::default(),
            inline
        )
        .await
    );
    staff.respond(&state, response).await
}

/// `GET /admin/clients/{id}/redirects/{endpoint}/delete/`: asks for confirmation.
pub(crate) async fn confirm_remove_redirect(
    State(state): State<WebState>,
    mut staff: Staff,
    Path((id, endpoint)): Path<(i64, i64)>,
) -> Response {
    let client = client_or_404!(staff, &state, id);
    let endpoints = try_or_fail!(
        staff,
        &state,
        state.server.store().redirect_endpoints(id).await
    );
    let Some(found) = endpoints.into_iter().find(|e| e.id == endpoint) else {
        return staff.not_found(&state, "redirect URI").await;
    };
    let response = staff.page(
        &state,
        StatusCode::OK,
        "admin/redirect_delete",
        "Remove redirect URI",
        context! {
            section => "clients",
            client => context! { id => client.id, title => client.title },
            endpoint => endpoint,
            uri => found.uri,
        },
    );
    staff.respond(&state, response).await
}

/// `POST /admin/clients/{id}/redirects/{endpoint}/delete/`.
pub(crate) async fn remove_redirect(
    State(state): State<WebState>,
    mut staff: Staff,
    Path((id, endpoint)): Path<(i64, i64)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Err(response) = staff.form(&state, &headers, body) {
        return staff.respond(&state, response).await;
    }
    let removed = try_or_fail!(
        staff,
        &state,
        state
            .server
            .store()
            .remove_redirect_endpoint(id, endpoint)
            .await
    );
    if removed {
        staff.success("Redirect URI removed.");
    } else {
        staff.failure("That redirect URI was already gone.");
    }
    staff.redirect(&state, &format!("clients/{id}/")).await
}

/// `POST /admin/clients/{id}/secret/`: replaces a confidential client's secret and shows
/// the new one once.
pub(crate) async fn new_secret(
    State(state): State<WebState>,
    mut staff: Staff,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Err(response) = staff.form(&state, &headers, body) {
        return staff.respond(&state, response).await;
    }
    let client = client_or_404!(staff, &state, id);
    if client.client_type == ClientType::Public {
        staff.failure("A public client has no secret.");
        return staff.redirect(&state, &format!("clients/{id}/")).await;
    }
    let secret = Secret::generate();
    try_or_fail!(
        staff,
        &state,
        state
            .server
            .store()
            .set_client_secret(id, Some(&secret.hash()))
            .await
    );
    tracing::info!(client = %client.identifier, by = %staff.user.username, "client secret replaced");
    let response = shown_once(
        &state,
        &mut staff,
        &client,
        "New client secret",
        &[(
            "The client's new secret (the old one no longer works)",
            &secret,
        )],
    );
    staff.respond(&state, response).await
}

/// `POST /admin/clients/{id}/token/`: issues a token to the client, for a user or for the
/// client itself, and shows it once.
pub(crate) async fn issue_token(
    State(state): State<WebState>,
    mut staff: Staff,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let params = match staff.form(&state, &headers, body) {
        Ok(params) => params,
        Err(response) => return staff.respond(&state, response).await,
    };
    let client = client_or_404!(staff, &state, id);
    let store = state.server.store();
    let username = text(&params, "username").trim().to_owned();
    let chosen: Vec<String> = params.all("scope").map(str::to_owned).collect();
    let refuse = |error: String| InlineForms {
        token: InlineForm::failed(username.clone(), chosen.clone(), error),
        ..InlineForms::default()
    };
    let user_id = if username.is_empty() {
        None
    } else {
        match try_or_fail!(staff, &state, store.find_user(&username).await) {
            Some(user) if user.is_active => Some(user.id),
            _ => {
                let inline = refuse(format!("no active user is called {username:?}"));
                return inline_failure(state, staff, &client, &inline).await;
            }
        }
    };
    let Ok(scope) = chosen
        .iter()
        .map(|s| s.parse())
        .collect::<Result<ScopeList, _>>()
    else {
        let inline = refuse("a chosen scope is not a valid scope identifier".into());
        return inline_failure(state, staff, &client, &inline).await;
    };
    let issued = match state
        .server
        .issue_token_manually(&client, user_id, scope)
        .await
    {
        Ok(issued) => issued,
        Err(crate::server::ServerError::OAuth(error)) => {
            let inline = refuse(error.description);
            return inline_failure(state, staff, &client, &inline).await;
        }
        Err(error) => return staff.failed(&state, error).await,
    };
    tracing::info!(client = %client.identifier, by = %staff.user.username, "token issued from the admin site");
    let whom = if username.is_empty() {
        "the client itself".to_owned()
    } else {
        username
    };
    let access = format!(
        "An access token for {whom}, valid for {} seconds",
        issued.expires_in
    );
    let mut values = vec![(access.as_str(), &issued.access_token)];
    if let Some(refresh) = &issued.refresh_token {
        values.push(("Its refresh token", refresh));
    }
    let response = shown_once(&state, &mut staff, &client, "New access token", &values);
    staff.respond(&state, response).await
}
