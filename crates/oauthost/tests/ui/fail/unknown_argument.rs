use oauthost::oauth_required;

#[oauth_required(scopes = "polls:index")]
async fn index() -> &'static str {
    "index"
}

fn main() {}
