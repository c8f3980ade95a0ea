//! The `#[oauth_required]` attribute of oauthost. Use it through `oauthost::oauth_required`.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote};
use syn::{
    ext::IdentExt, parse::Parser, punctuated::Punctuated, spanned::Spanned, FnArg, ItemFn, LitStr,
    Meta, Token,
};

/// Protects an axum handler with an OAuth 2.0 scope.
///
/// - `#[oauth_required(scope = "my_polls:my_stats")]`: the token must grant that scope.
/// - `#[oauth_required(scope_auto)]`: the scope is `<app>:<handler name>`, the app being the
///   crate's name unless `app = "..."` is given.
/// - `#[oauth_required]`: any valid token.
///
/// The handler gains a first argument, an extractor, so its router's state must give an
/// `oauthost::server::Oauthost` through `FromRef`. The handler is recorded for the
/// `syncscopes` command.
#[proc_macro_attribute]
pub fn oauth_required(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(attr.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

#[derive(Default)]
struct Args {
    scope: Option<LitStr>,
    scope_auto: Option<Span>,
    app: Option<LitStr>,
}

fn string_value(meta: &Meta) -> syn::Result<LitStr> {
    match meta {
        Meta::NameValue(pair) => match &pair.value {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(lit),
                ..
            }) => Ok(lit.clone()),
            other => Err(syn::Error::new(other.span(), "expected a string literal")),
        },
        other => Err(syn::Error::new(other.span(), "expected `name = \"value\"`")),
    }
}

fn check_identifier(lit: &LitStr, what: &str) -> syn::Result<()> {
    let value = lit.value();
    let valid = !value.is_empty()
        && value.len() <= 100
        && value
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '"' | '\'' | '\\'));
    if valid {
        Ok(())
    } else {
        Err(syn::Error::new(
            lit.span(),
            format!("invalid {what} {value:?}: use 1 to 100 printable ASCII characters without spaces, quotes or backslashes"),
        ))
    }
}

fn parse_args(attr: TokenStream2) -> syn::Result<Args> {
    let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(attr)?;
    let mut args = Args::default();
    for meta in metas {
        let path = meta.path();
        if path.is_ident("scope") {
            if args.scope.is_some() {
                return Err(syn::Error::new(path.span(), "`scope` is given twice"));
            }
            let lit = string_value(&meta)?;
            check_identifier(&lit, "scope")?;
            args.scope = Some(lit);
        } else if path.is_ident("scope_auto") {
            if !matches!(meta, Meta::Path(_)) {
                return Err(syn::Error::new(meta.span(), "`scope_auto` takes no value"));
            }
            args.scope_auto = Some(path.span());
        } else if path.is_ident("app") {
            let lit = string_value(&meta)?;
            check_identifier(&lit, "app name")?;
            args.app = Some(lit);
        } else {
            return Err(syn::Error::new(
                path.span(),
                "unknown argument: expected `scope = \"app:view\"`, `scope_auto` or `app = \"name\"`",
            ));
        }
    }
    if let (Some(_), Some(span)) = (&args.scope, args.scope_auto) {
        return Err(syn::Error::new(
            span,
            "use either `scope = \"...\"` or `scope_auto`, not both",
        ));
    }
    Ok(args)
}

fn expand(attr: TokenStream2, item: TokenStream2) -> syn::Result<TokenStream2> {
    let args = parse_args(attr)?;
    let mut function: ItemFn = syn::parse2(item)?;
    if let Some(receiver) = function.sig.receiver() {
        return Err(syn::Error::new(
            receiver.span(),
            "#[oauth_required] protects free `async fn` handlers, not methods",
        ));
    }
    if function.sig.asyncness.is_none() {
        return Err(syn::Error::new(
            function.sig.fn_token.span(),
            "#[oauth_required] protects axum handlers, which are `async fn`s",
        ));
    }
    let name = &function.sig.ident;
    let handler = name.unraw().to_string();
    let app = match &args.app {
        Some(app) => quote!(#app),
        None => quote!(::core::env!("CARGO_CRATE_NAME")),
    };
    let scope = match (&args.scope, args.scope_auto) {
        (Some(scope), _) => Some(quote!(#scope)),
        (None, Some(span)) => {
            // The scope `scope_auto` derives must be a valid identifier too: check it now,
            // with the crate's name as rustc is given it.
            let app_name = match &args.app {
                Some(app) => app.value(),
                None => std::env::var("CARGO_CRATE_NAME").unwrap_or_default(),
            };
            let derived = LitStr::new(&format!("{app_name}:{handler}"), span);
            check_identifier(&derived, "derived scope")
                .map_err(|e| syn::Error::new(name.span(), e.to_string()))?;
            Some(quote!(::core::concat!(#app, ":", #handler)))
        }
        (None, None) => None,
    };
    let vis = &function.vis;
    let (marker_item, guard_type, scope_value) = match &scope {
        Some(scope) => {
            let marker = format_ident!("__oauthost_scope_of_{}", name);
            (
                quote! {
                    #[doc(hidden)]
                    #[allow(non_camel_case_types)]
                    #vis struct #marker;
                    impl ::oauthost::web::bearer::RequiredScope for #marker {
                        const SCOPE: &'static str = #scope;
                    }
                },
                quote!(::oauthost::web::bearer::RequireScope<#marker>),
                quote!(::core::option::Option::Some(#scope)),
            )
        }
        None => (
            quote!(),
            quote!(::oauthost::web::bearer::Authorized),
            quote!(::core::option::Option::None),
        ),
    };
    let guard: FnArg = syn::parse2(quote!(_: #guard_type))?;
    function.sig.inputs.insert(0, guard);
    Ok(quote! {
        #marker_item
        ::oauthost::__private::inventory::submit! {
            ::oauthost::web::bearer::ProtectedHandler {
                app: #app,
                handler: #handler,
                scope: #scope_value,
            }
        }
        #function
    })
}
