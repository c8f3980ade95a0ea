use oauthost::oauth_required;

#[oauth_required(scope_auto)]
fn index() -> &'static str {
    "index"
}

fn main() {}
