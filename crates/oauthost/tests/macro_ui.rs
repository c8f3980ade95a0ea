//! Good and bad uses of `#[oauth_required]`: the good compile, the bad fail with a clear
//! message (`tests/ui/fail/*.stderr`).

#[test]
fn oauth_required_uses() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
