use oauthost::oauth_required;

#[oauth_required(scope = "polls index")]
async fn index() -> &'static str {
    "index"
}

fn main() {}
