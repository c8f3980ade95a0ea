use oauthost::oauth_required;

#[oauth_required(scope_auto)]
async fn résumé() -> &'static str {
    "cv"
}

fn main() {}
