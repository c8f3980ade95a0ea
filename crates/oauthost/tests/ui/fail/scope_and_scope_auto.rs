use oauthost::oauth_required;

#[oauth_required(scope = "polls:index", scope_auto)]
async fn index() -> &'static str {
    "index"
}

fn main() {}
