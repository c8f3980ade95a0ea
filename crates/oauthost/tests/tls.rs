//! `oauthost serve --tls-cert --tls-key`: https served directly, with rustls.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::process::Command;

use oauthost_testkit::ServerProcess;

const BIN: &str = env!("CARGO_BIN_EXE_oauthost");

#[tokio::test]
async fn serves_https_and_marks_cookies_secure() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    let db = format!("sqlite://{}", dir.path().join("db.sqlite").display());

    let server = ServerProcess::start(
        BIN,
        &[
            "--database-url",
            &db,
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--tls-cert",
            cert_path.to_str().unwrap(),
            "--tls-key",
            key_path.to_str().unwrap(),
        ],
        &[],
    );
    let address = server.base_url().trim_start_matches("http://").to_owned();
    let port = address.rsplit(':').next().unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .resolve("localhost", address.parse().unwrap())
        .build()
        .unwrap();

    let metadata: serde_json::Value = client
        .get(format!(
            "https://localhost:{port}/.well-known/oauth-authorization-server"
        ))
        .send()
        .await
        .expect("an https answer without debug mode")
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["issuer"], format!("https://localhost:{port}"));

    let login = client
        .get(format!("https://localhost:{port}/login/"))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let cookie = login.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );

    let plain = reqwest::get(format!("http://{address}/login/")).await;
    assert!(
        plain.map(|r| !r.status().is_success()).unwrap_or(true),
        "no plain http on the TLS port"
    );
}

#[test]
fn refuses_unusable_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("bogus.pem");
    std::fs::write(&bogus, "not a certificate").unwrap();
    let db = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let output = Command::new(BIN)
        .args(["--database-url", &db, "serve", "--bind", "127.0.0.1:0"])
        .args([
            "--tls-cert",
            bogus.to_str().unwrap(),
            "--tls-key",
            bogus.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("error: cannot use the TLS certificate and key"),
        "{stderr}"
    );
}
