use oauthost::oauth_required;

struct Views;

impl Views {
    #[oauth_required(scope_auto)]
    async fn index(&self) -> &'static str {
        "index"
    }
}

fn main() {}
