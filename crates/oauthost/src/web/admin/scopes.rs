//! Scopes: list, search, filter by status, add, edit, enable, disable and delete.

use axum::{
    body::Bytes,
    extract::{rejection::BytesRejection, Path, RawQuery, State},
    http::{HeaderMap, StatusCode},
    response::Response,
};
use minijinja::{context, Value};
use oauthost_core::{params::Params, scope::ScopeId};

use super::{
    fields::{checkbox, text, FieldErrors},
    listing::{back_to, posted_ids, yes_no, yes_no_choices, Listing},
    try_or_fail, Staff,
};
use crate::{
    store::{
        admin::{ScopeFilter, ScopeSort},
        StoreError,
    },
    toolbox,
    web::WebState,
};

/// `GET /admin/scopes/`.
pub(crate) async fn list(
    State(state): State<WebState>,
    mut staff: Staff,
    query: RawQuery,
) -> Response {
    let listing: Listing<ScopeSort> = Listing::parse(&state.path("/admin/"), "scopes/", query);
    let filter = ScopeFilter {
        search: listing.search.clone(),
        enabled: yes_no(listing.get("enabled")),
    };
    let store = state.server.store();
    let page = try_or_fail!(
        staff,
        &state,
        store
            .scope_page(&filter, listing.order, listing.page_request())
            .await
    );
    let rows: Vec<Value> = page
        .items
        .iter()
        .map(|scope| {
            context! {
                id => scope.id,
                identifier => scope.identifier.as_str(),
                title => scope.title,
                enabled => scope.enabled,
            }
        })
        .collect();
    let response = staff.page(
        &state,
        StatusCode::OK,
        "admin/scopes",
        "Scopes",
        context! {
            section => "scopes",
            rows => rows,
            columns => [
                listing.column(ScopeSort::Title, "Title"),
                listing.column(ScopeSort::Identifier, "Identifier"),
                listing.column(ScopeSort::Status, "Status"),
            ],
            filters => [listing.filter("enabled", "By status", &yes_no_choices("Enabled", "Disabled"))],
            pagination => listing.pagination(page.total),
        },
    );
    staff.respond(&state, response).await
}

/// `POST /admin/scopes/`: an action on the ticked scopes. Enabling and disabling happen at
/// once; deleting asks for confirmation first.
pub(crate) async fn bulk(
    State(state): State<WebState>,
    mut staff: Staff,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let params = match staff.form(&state, &headers, body) {
        Ok(params) => params,
        Err(response) => return staff.respond(&state, response).await,
    };
    let ids = posted_ids(&params, "ids");
    let back = back_to(&state, text(&params, "back"), "scopes/");
    if ids.is_empty() {
        staff.failure("Select one or more scopes first.");
        return staff.redirect(&state, &back).await;
    }
    let store = state.server.store();
    match text(&params, "action") {
        action @ ("enable" | "disable") => {
            let enabled = action == "enable";
            let changed =
                try_or_fail!(staff, &state, store.set_scopes_enabled(&ids, enabled).await);
            staff.success(format!("{changed} scope(s) {action}d."));
            staff.redirect(&state, &back).await
        }
        "delete" => {
            let mut scopes = Vec::new();
            for id in ids.iter().copied() {
                if let Some(scope) = try_or_fail!(staff, &state, store.scope_by_key(id).await) {
                    scopes.push(context! { id => scope.id, title => scope.title, identifier => scope.identifier.as_str() });
                }
            }
            let blocking = try_or_fail!(staff, &state, store.clients_restricted_to(&ids).await);
            let response = staff.page(
                &state,
                StatusCode::OK,
                "admin/scopes_delete",
                "Delete scopes",
                context! { section => "scopes", scopes => scopes, blocking => blocking },
            );
            staff.respond(&state, response).await
        }
        _ => {
            staff.failure("Choose an action: enable, disable or delete.");
            staff.redirect(&state, &back).await
        }
    }
}

/// `POST /admin/scopes/delete/`: deletes the scopes confirmed on the confirmation page.
pub(crate) async fn delete(
    State(state): State<WebState>,
    mut staff: Staff,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let params = match staff.form(&state, &headers, body) {
        Ok(params) => params,
        Err(response) => return staff.respond(&state, response).await,
    };
    let ids = posted_ids(&params, "ids");
    match state.server.store().delete_scopes(&ids).await {
        Ok(deleted) => staff.success(format!("{deleted} scope(s) deleted.")),
        Err(StoreError::Refused(reason)) => staff.failure(format!("Nothing deleted: {reason}.")),
        Err(error) => return staff.failed(&state, error).await,
    }
    staff.redirect(&state, "scopes/").await
}

/// The values of the scope form.
struct ScopeForm {
    identifier: String,
    title: String,
    enabled: bool,
}

impl ScopeForm {
    fn read(params: &Params) -> Self {
        Self {
            identifier: text(params, "identifier").trim().to_owned(),
            title: text(params, "title").to_owned(),
            enabled: checkbox(params, "enabled"),
        }
    }

    /// The identifier and title, or the errors to show.
    fn validate(&self, errors: &mut FieldErrors) -> Option<(ScopeId, String)> {
        let identifier = errors.check("identifier", self.identifier.parse::<ScopeId>());
        let title = errors.check("title", toolbox::check_title("scope title", &self.title));
        Some((identifier?, title?.to_owned()))
    }

    fn page(
        &self,
        state: &WebState,
        staff: &mut Staff,
        id: Option<i64>,
        errors: &FieldErrors,
    ) -> Response {
        let status = if errors.is_empty() {
            StatusCode::OK
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        let title = if id.is_some() {
            "Edit scope"
        } else {
            "Add scope"
        };
        staff.page(
            state,
            status,
            "admin/scope_form",
            title,
            context! {
                section => "scopes",
                id => id,
                form => context! {
                    identifier => self.identifier,
                    title => self.title,
                    enabled => self.enabled,
                },
                errors => errors.to_value(),
            },
        )
    }
}

/// `GET /admin/scopes/add/`.
pub(crate) async fn add_form(State(state): State<WebState>, mut staff: Staff) -> Response {
    let form = ScopeForm {
        identifier: String::new(),
        title: String::new(),
        enabled: true,
    };
    let response = form.page(&state, &mut staff, None, &FieldErrors::default());
    staff.respond(&state, response).await
}

/// `POST /admin/scopes/add/`.
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
    let form = ScopeForm::read(&params);
    let mut errors = FieldErrors::default();
    if let Some((identifier, title)) = form.validate(&mut errors) {
        let store = state.server.store();
        match toolbox::add_scope(
            store.as_ref(),
            identifier.as_str(),
            Some(&title),
            form.enabled,
        )
        .await
        {
            Ok(scope) => {
                staff.success(format!("Scope \"{}\" added.", scope.title));
                return staff.redirect(&state, "scopes/").await;
            }
            Err(error) => try_or_fail!(
                staff,
                &state,
                errors.taken(error, &[("scope", "identifier")])
            ),
        }
    }
    let response = form.page(&state, &mut staff, None, &errors);
    staff.respond(&state, response).await
}

/// `GET /admin/scopes/{id}/`.
pub(crate) async fn edit_form(
    State(state): State<WebState>,
    mut staff: Staff,
    Path(id): Path<i64>,
) -> Response {
    let Some(scope) = try_or_fail!(staff, &state, state.server.store().scope_by_key(id).await)
    else {
        return staff.not_found(&state, "scope").await;
    };
    let form = ScopeForm {
        identifier: scope.identifier.to_string(),
        title: scope.title,
        enabled: scope.enabled,
    };
    let response = form.page(&state, &mut staff, Some(id), &FieldErrors::default());
    staff.respond(&state, response).await
}

/// `POST /admin/scopes/{id}/`.
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
    let form = ScopeForm::read(&params);
    let mut errors = FieldErrors::default();
    if let Some((identifier, title)) = form.validate(&mut errors) {
        let store = state.server.store();
        match store
            .update_scope(id, &identifier, &title, form.enabled)
            .await
        {
            Ok(true) => {
                staff.success(format!("Scope \"{title}\" saved."));
                return staff.redirect(&state, "scopes/").await;
            }
            Ok(false) => return staff.not_found(&state, "scope").await,
            Err(error) => try_or_fail!(
                staff,
                &state,
                errors.taken(error.into(), &[("scope", "identifier")])
            ),
        }
    }
    let response = form.page(&state, &mut staff, Some(id), &errors);
    staff.respond(&state, response).await
}
