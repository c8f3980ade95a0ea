//! What every listing shares: the query string (`q` search, `o` sort, `p` page, filters),
//! sortable column headers, pagination and filter links that keep the other choices.

use axum::extract::RawQuery;
use minijinja::{context, Value};
use oauthost_core::params::Params;

use super::PER_PAGE;
use crate::{
    store::admin::{Order, PageRequest, SortKey},
    web::{forms, WebState},
};

/// A listing's query string, parsed. Unknown sort columns and bad page numbers fall back to
/// the defaults; filter values are read by each page.
pub(crate) struct Listing<S: SortKey> {
    /// The listing's path under the admin root, such as `tokens/`.
    base: String,
    /// Every parameter of the query string, in order.
    params: Vec<(String, String)>,
    /// The search box.
    pub(crate) search: String,
    /// The sort order.
    pub(crate) order: Order<S>,
    /// The 1-based page number.
    pub(crate) page: i64,
}

impl<S: SortKey> Listing<S> {
    /// Parses the query string of the listing at `base`.
    pub(crate) fn parse(admin: &str, base: &str, RawQuery(query): RawQuery) -> Self {
        let parsed = forms::query(query.as_deref()).unwrap_or_default();
        let params: Vec<(String, String)> = parsed
            .iter()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
        let value = |name: &str| value_of(&parsed, name);
        let order = value("o")
            .and_then(|o| {
                let (name, descending) = match o.strip_prefix('-') {
                    Some(name) => (name, true),
                    None => (o, false),
                };
                S::from_name(name).map(|by| Order { by, descending })
            })
            .unwrap_or(S::DEFAULT);
        let page = value("p")
            .and_then(|p| p.parse::<i64>().ok())
            .filter(|p| *p >= 1)
            .unwrap_or(1);
        Self {
            base: format!("{admin}{base}"),
            search: value("q").unwrap_or_default().trim().to_owned(),
            order,
            page,
            params,
        }
    }

    /// The value of filter `name`, if given and not empty.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .rev()
            .find(|(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Which rows to read.
    pub(crate) fn page_request(&self) -> PageRequest {
        PageRequest {
            offset: (self.page - 1).saturating_mul(PER_PAGE),
            limit: PER_PAGE,
        }
    }

    /// This listing's URL with `changes` applied: `Some` sets a parameter, `None` removes
    /// it. Any change but a page change goes back to the first page.
    pub(crate) fn url_with(&self, changes: &[(&str, Option<&str>)]) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        let changed = |name: &str| changes.iter().any(|(n, _)| *n == name);
        let resets_page = changes.iter().any(|(n, _)| *n != "p");
        for (name, value) in &self.params {
            if changed(name) || (resets_page && name == "p") || value.is_empty() {
                continue;
            }
            query.append_pair(name, value);
        }
        for (name, value) in changes {
            if let Some(value) = value {
                query.append_pair(name, value);
            }
        }
        let query = query.finish();
        if query.is_empty() {
            self.base.clone()
        } else {
            format!("{}?{query}", self.base)
        }
    }

    /// The current query's parameters other than `except`, for hidden fields of a form
    /// (the search box keeps the filters).
    pub(crate) fn hidden(&self, except: &[&str]) -> Vec<Value> {
        self.params
            .iter()
            .filter(|(name, value)| !except.contains(&name.as_str()) && !value.is_empty())
            .map(|(name, value)| context! { name => name, value => value })
            .collect()
    }

    /// A sortable column header: its label, the URL that sorts by it (or reverses the
    /// order when it is the current column), and the current direction.
    pub(crate) fn column(&self, key: S, label: &str) -> Value {
        let active = self.order.by == key;
        let descending_next = active && !self.order.descending;
        let o = if descending_next {
            format!("-{}", key.name())
        } else {
            key.name().to_owned()
        };
        context! {
            label => label,
            url => self.url_with(&[("o", Some(&o))]),
            active => active,
            descending => active && self.order.descending,
        }
    }

    /// One filter: a title and its choices `(value, label)`, each with the URL that picks
    /// it; the first choice, "All", removes the filter.
    pub(crate) fn filter(&self, name: &str, title: &str, choices: &[(String, String)]) -> Value {
        let current = self.get(name);
        let mut links = vec![context! {
            label => "All",
            url => self.url_with(&[(name, None)]),
            selected => current.is_none(),
        }];
        links.extend(choices.iter().map(|(value, label)| {
            context! {
                label => label,
                url => self.url_with(&[(name, Some(value))]),
                selected => current == Some(value.as_str()),
            }
        }));
        context! { title => title, links => links }
    }

    /// The pagination bar for `total` rows.
    pub(crate) fn pagination(&self, total: i64) -> Value {
        let pages = ((total + PER_PAGE - 1) / PER_PAGE).max(1);
        let page = self.page;
        let link = |p: i64| self.url_with(&[("p", Some(&p.to_string()))]);
        let first = (page - 1).saturating_mul(PER_PAGE) + 1;
        context! {
            total => total,
            page => page,
            pages => pages,
            first => (first <= total).then_some(first),
            last => (page.saturating_mul(PER_PAGE)).min(total),
            // Past the end, "previous" leads back to the last page.
            previous => (page > 1).then(|| link((page - 1).min(pages))),
            next => (page < pages).then(|| link(page + 1)),
            search => self.search.clone(),
            search_hidden => self.hidden(&["q", "p"]),
            action => self.base.clone(),
            here => self.url_with(&[]),
        }
    }
}

fn value_of<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    params
        .iter()
        .filter(|(n, _)| *n == name)
        .map(|(_, v)| v)
        .last()
}

/// Where a form's `back` field sends the operator after an action: the page under the admin
/// root it came from (never another site), or `default`.
pub(crate) fn back_to(state: &WebState, posted: &str, default: &str) -> String {
    let admin = state.path("/admin/");
    match posted.strip_prefix(&admin) {
        Some(rest)
            if !rest.starts_with('/')
                && !rest.contains("//")
                && !rest.chars().any(|c| c.is_control() || c == '\\') =>
        {
            rest.to_owned()
        }
        _ => default.to_owned(),
    }
}

/// A yes/no filter value (`yes`, `no`).
pub(crate) fn yes_no(value: Option<&str>) -> Option<bool> {
    match value {
        Some("yes") => Some(true),
        Some("no") => Some(false),
        _ => None,
    }
}

/// The choices of a yes/no filter.
pub(crate) fn yes_no_choices(yes: &str, no: &str) -> Vec<(String, String)> {
    vec![("yes".into(), yes.into()), ("no".into(), no.into())]
}

/// The database keys posted in field `name` (checkboxes); values that are not keys are
/// ignored.
pub(crate) fn posted_ids(params: &Params, name: &str) -> Vec<i64> {
    params.all(name).filter_map(|v| v.parse().ok()).collect()
}

/// A time as the admin site shows it, in UTC.
pub(crate) fn when(time: time::OffsetDateTime) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time.format(&format).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::admin::TokenSort;

    fn listing(query: &str) -> Listing<TokenSort> {
        Listing::parse("/admin/", "tokens/", RawQuery(Some(query.to_owned())))
    }

    #[test]
    fn reads_search_sort_and_page() {
        let l = listing("q=+alice+&o=-client&p=3&status=active");
        assert_eq!(l.search, "alice");
        assert_eq!(l.order.by, TokenSort::Client);
        assert!(l.order.descending);
        assert_eq!(l.page_request().offset, 2 * PER_PAGE);
        assert_eq!(l.get("status"), Some("active"));
    }

    #[test]
    fn bad_values_fall_back_to_defaults() {
        let l = listing("o=password&p=-4");
        assert_eq!(l.order, TokenSort::DEFAULT);
        assert_eq!(l.page, 1);
    }

    #[test]
    fn links_keep_other_choices_and_reset_the_page() {
        let l = listing("status=active&p=2&q=a%26b");
        assert_eq!(
            l.url_with(&[("client", Some("7"))]),
            "/admin/tokens/?status=active&q=a%26b&client=7"
        );
        assert_eq!(
            l.url_with(&[("p", Some("3"))]),
            "/admin/tokens/?status=active&q=a%26b&p=3"
        );
        assert_eq!(
            l.url_with(&[("status", None), ("q", None)]),
            "/admin/tokens/"
        );
    }

    #[test]
    fn sorting_by_the_current_column_reverses_it() {
        let l = listing("o=issued");
        let header = l.column(TokenSort::Issued, "Issued");
        assert_eq!(
            header.get_attr("url").unwrap().to_string(),
            "/admin/tokens/?o=-issued"
        );
        let header = l.column(TokenSort::Client, "Client");
        assert_eq!(
            header.get_attr("url").unwrap().to_string(),
            "/admin/tokens/?o=client"
        );
    }
}
