//! Users: list, search, filter, add, and edit (active, staff, set password), with the
//! command line's rules for usernames and passwords.

use axum::{
    body::Bytes,
    extract::{rejection::BytesRejection, Path, RawQuery, State},
    http::{HeaderMap, StatusCode},
    response::Response,
};
use minijinja::{context, Value};
use oauthost_core::password;

use super::{
    fields::{checkbox, text, FieldErrors},
    listing::{when, yes_no, yes_no_choices, Listing},
    try_or_fail, Staff,
};
use crate::{
    store::admin::{UserFilter, UserSort},
    toolbox,
    web::WebState,
};

/// `GET /admin/users/`.
pub(crate) async fn list(
    State(state): State<WebState>,
    mut staff: Staff,
    query: RawQuery,
) -> Response {
    let listing: Listing<UserSort> = Listing::parse(&state.path("/admin/"), "users/", query);
    let filter = UserFilter {
        search: listing.search.clone(),
        staff: yes_no(listing.get("staff")),
        active: yes_no(listing.get("active")),
    };
    let page = try_or_fail!(
        staff,
        &state,
        state
            .server
            .store()
            .user_page(&filter, listing.order, listing.page_request())
            .await
    );
    let rows: Vec<Value> = page
        .items
        .iter()
        .map(|u| {
            context! {
                id => u.id,
                username => u.username,
                is_staff => u.is_staff,
                is_active => u.is_active,
                created => when(u.created_at),
            }
        })
        .collect();
    let response = staff.page(
        &state,
        StatusCode::OK,
        "admin/users",
        "Users",
        context! {
            section => "users",
            rows => rows,
            columns => [
                listing.column(UserSort::Username, "Username"),
                listing.column(UserSort::Staff, "Staff"),
                listing.column(UserSort::Active, "Active"),
                listing.column(UserSort::Created, "Created"),
            ],
            filters => [
                listing.filter("staff", "By staff status", &yes_no_choices("Staff", "Not staff")),
                listing.filter("active", "By activity", &yes_no_choices("Active", "Inactive")),
            ],
            pagination => listing.pagination(page.total),
        },
    );
    staff.respond(&state, response).await
}

/// The user form's values. Passwords are never sent back to the browser.
struct UserForm {
    username: String,
    is_staff: bool,
    is_active: bool,
}

fn user_page(
    state: &WebState,
    staff: &mut Staff,
    id: Option<i64>,
    form: &UserForm,
    errors: &FieldErrors,
) -> Response {
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    staff.page(
        state,
        status,
        "admin/user_form",
        if id.is_some() { "Edit user" } else { "Add user" },
        context! {
            section => "users",
            id => id,
            form => context! {
                username => form.username,
                is_staff => form.is_staff,
                is_active => form.is_active,
            },
            errors => errors.to_value(),
        },
    )
}

/// The new password of a form, checked: both fields must match. `None` when the field is
/// empty and `required` is false.
fn new_password(
    params: &oauthost_core::params::Params,
    errors: &mut FieldErrors,
    required: bool,
) -> Option<String> {
    let first = text(params, "password");
    let second = text(params, "password2");
    if first.is_empty() && !required {
        return None;
    }
    errors.check("password", password::check_rules(first))?;
    if first != second {
        errors.add("password2", "the two passwords do not match");
        return None;
    }
    Some(first.to_owned())
}

/// `GET /admin/users/add/`.
pub(crate) async fn add_form(State(state): State<WebState>, mut staff: Staff) -> Response {
    let form = UserForm {
        username: String::new(),
        is_staff: false,
        is_active: true,
    };
    let response = user_page(&state, &mut staff, None, &form, &FieldErrors::default());
    staff.respond(&state, response).await
}

/// `POST /admin/users/add/`.
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
    let form = UserForm {
        username: text(&params, "username").trim().to_owned(),
        is_staff: checkbox(&params, "is_staff"),
        is_active: checkbox(&params, "is_active"),
    };
    let mut errors = FieldErrors::default();
    errors.check("username", toolbox::check_username(&form.username));
    let password = new_password(&params, &mut errors, true);
    if let (true, Some(password)) = (errors.is_empty(), password) {
        let store = state.server.store();
        let created = toolbox::create_user_with_status(
            store.as_ref(),
            &form.username,
            &password,
            form.is_staff,
            form.is_active,
        )
        .await;
        match created {
            Ok(user) => {
                staff.success(format!("User \"{}\" added.", user.username));
                return staff.redirect(&state, "users/").await;
            }
            Err(error) => try_or_fail!(staff, &state, errors.taken(error, &[("username", "username")])),
        }
    }
    let response = user_page(&state, &mut staff, None, &form, &errors);
    staff.respond(&state, response).await
}

/// `GET /admin/users/{id}/`.
pub(crate) async fn edit_form(
    State(state): State<WebState>,
    mut staff: Staff,
    Path(id): Path<i64>,
) -> Response {
    let Some(user) = try_or_fail!(staff, &state, state.server.store().user_by_id(id).await) else {
        return staff.not_found(&state, "user").await;
    };
    let form = UserForm {
        username: user.username,
        is_staff: user.is_staff,
        is_active: user.is_active,
    };
    let response = user_page(&state, &mut staff, Some(id), &form, &FieldErrors::default());
    staff.respond(&state, response).await
}

/// `POST /admin/users/{id}/`: saves active and staff, and the password when one is given.
/// Operators cannot take their own access away.
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
    let store = state.server.store();
    let Some(user) = try_or_fail!(staff, &state, store.user_by_id(id).await) else {
        return staff.not_found(&state, "user").await;
    };
    let form = UserForm {
        username: user.username.clone(),
        is_staff: checkbox(&params, "is_staff"),
        is_active: checkbox(&params, "is_active"),
    };
    let mut errors = FieldErrors::default();
    if id == staff.user.id && !(form.is_staff && form.is_active) {
        errors.add(
            "is_staff",
            "you cannot remove your own staff status or deactivate yourself",
        );
    }
    let password = new_password(&params, &mut errors, false);
    if errors.is_empty() {
        let hash = match password {
            Some(password) => {
                let hashed =
                    tokio::task::spawn_blocking(move || password::hash(&password)).await;
                match hashed {
                    Ok(Ok(hash)) => Some(hash),
                    Ok(Err(error)) => return staff.failed(&state, error).await,
                    Err(error) => return staff.failed(&state, error).await,
                }
            }
            None => None,
        };
        try_or_fail!(
            staff,
            &state,
            store
                .update_user(id, form.is_active, form.is_staff, hash.as_deref())
                .await
        );
        staff.success(format!("User \"{}\" saved.", user.username));
        return staff.redirect(&state, "users/").await;
    }
    let response = user_page(&state, &mut staff, Some(id), &form, &errors);
    staff.respond(&state, response).await
}
