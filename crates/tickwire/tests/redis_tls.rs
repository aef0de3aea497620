//! `rediss://` is TLS for real (rustls, ring): a CA and certificates made
//! with the `openssl` binary at test time, a redis-server with `--tls-port`.
//! The right CA writes; a wrong CA, a wrong server name and a plaintext port
//! are refused with exit 1 and a message naming the URL and the cause; mutual
//! TLS works with a client certificate and is refused without one.

use tickwire_testkit::prelude::*;

use std::path::{Path, PathBuf};
use std::process::Command;

use tickwire_testkit::redis_server::TlsFiles;

/// Runs openssl with `args` in `dir`; panics with its stderr on failure.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("these tests need the openssl binary: {e}"));
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed CA `<name>.crt` / `<name>.key` in `dir`.
fn make_ca(dir: &Path, name: &str) -> PathBuf {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    dir.join(format!("{name}.crt"))
}

/// A certificate `<name>.crt` / `<name>.key` signed by CA `ca`, valid for
/// localhost and 127.0.0.1, for servers and clients.
fn make_cert(dir: &Path, ca: &str, name: &str) -> (PathBuf, PathBuf) {
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={name}"),
        ],
    );
    let ext = format!("{name}.ext");
    std::fs::write(
        dir.join(&ext),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n\
         basicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth,clientAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            &format!("{name}.crt"),
            "-days",
            "2",
            "-extfile",
            &ext,
        ],
    );
    (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    )
}

/// The certificates of one test: a CA with a server and a client
/// certificate, and an unrelated CA.
struct Pki {
    dir: tempfile::TempDir,
    ca: PathBuf,
    other_ca: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
    server: TlsFiles,
}

fn pki(auth_clients: bool) -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let ca = make_ca(dir.path(), "ca");
    let other_ca = make_ca(dir.path(), "other-ca");
    let (cert, key) = make_cert(dir.path(), "ca", "server");
    let (client_cert, client_key) = make_cert(dir.path(), "ca", "client");
    Pki {
        server: TlsFiles {
            cert,
            key,
            ca: ca.clone(),
            auth_clients,
        },
        dir,
        ca,
        other_ca,
        client_cert,
        client_key,
    }
}

fn tls_redis(pki: &Pki) -> RedisServer {
    RedisServer::start_tls(pki.server.clone())
        .unwrap_or_else(|e| panic!("these tests need a redis-server built with TLS: {e}"))
}

/// A config file with `[redis.tls]` `tls_toml` (and one reconnect attempt,
/// so a refused connection is not retried for ever).
fn tls_config(pki: &Pki, name: &str, tls_toml: &str) -> PathBuf {
    tls_config_with(pki, name, "", tls_toml)
}

/// [`tls_config`] with more `[redis]` keys.
fn tls_config_with(pki: &Pki, name: &str, redis_toml: &str, tls_toml: &str) -> PathBuf {
    config_file(
        pki.dir.path(),
        name,
        &format!("[redis]\nreconnect_max_attempts = 1\n{redis_toml}[redis.tls]\n{tls_toml}"),
    )
}

fn sample(dir: &Path) -> PathBuf {
    let p = dir.join("t.jsonl");
    std::fs::write(
        &p,
        "{\"exchange\":\"NSE\",\"symbol\":\"SBIN\",\"ts\":1704080700100,\"ltp\":612.35,\"qty\":10}\n\
         {\"exchange\":\"NSE\",\"symbol\":\"SBIN\",\"ts\":1704080701100,\"ltp\":612.40,\"qty\":5}\n",
    )
    .unwrap();
    p
}

/// Replays the sample over `url` with config `cfg`: exit code and stderr.
fn replay(cfg: &Path, url: &str, input: &Path) -> (Option<i32>, String, String) {
    let (out, stdout, stderr) = run(tickwire!()
        .arg("--config")
        .arg(cfg)
        .args(["--redis", url, "replay", "--max"])
        .arg(input));
    (out.status.code(), stdout, stderr)
}

/// Entries in `ticks:SBIN` (prices DB 4), read on the plaintext port.
fn ticks_in_redis(server: &RedisServer) -> u64 {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use fred::prelude::*;
        let c = server.client(4).await.unwrap();
        c.xlen("ticks:SBIN").await.unwrap()
    })
}

fn toml_path(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}

#[test]
fn rediss_with_the_right_ca_writes_and_the_server_name_is_checked() {
    let pki = pki(false);
    let server = tls_redis(&pki);
    let url = server.tls_url().unwrap();
    let input = sample(pki.dir.path());
    let cfg = tls_config(
        &pki,
        "ok.toml",
        &format!("ca_file = {}\n", toml_path(&pki.ca)),
    );
    let (code, stdout, stderr) = replay(&cfg, &url, &input);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(summary_value(&stdout, "ticks written"), 2);
    assert_eq!(ticks_in_redis(&server), 2);

    // The certificate is for localhost and 127.0.0.1: another name is refused.
    let cfg = tls_config(
        &pki,
        "name.toml",
        &format!(
            "ca_file = {}\nserver_name = \"redis.example.com\"\n",
            toml_path(&pki.ca)
        ),
    );
    let (code, _, stderr) = replay(&cfg, &url, &input);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains(&url), "the URL is named: {stderr}");
    assert!(
        stderr.contains("NotValidForName") && stderr.contains("not valid for the host name"),
        "the cause is named: {stderr}"
    );
}

#[test]
fn a_certificate_from_another_ca_is_refused_and_nothing_is_written() {
    let pki = pki(false);
    let server = tls_redis(&pki);
    let url = server.tls_url().unwrap();
    let input = sample(pki.dir.path());
    let cfg = tls_config(
        &pki,
        "wrong.toml",
        &format!("ca_file = {}\n", toml_path(&pki.other_ca)),
    );
    let (code, _, stderr) = replay(&cfg, &url, &input);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains(&url), "the URL is named: {stderr}");
    assert!(
        stderr.contains("UnknownIssuer")
            && stderr.contains("not signed by the CA of redis.tls.ca_file"),
        "the cause is named: {stderr}"
    );
    assert_eq!(ticks_in_redis(&server), 0);
}

#[test]
fn rediss_to_a_plaintext_port_is_refused_never_sent_in_cleartext() {
    let pki = pki(false);
    let server = tls_redis(&pki);
    // The server's plaintext port, with a password in the URL: the handshake
    // fails, so no AUTH (nor anything else) goes out in the clear.
    let url = format!("rediss://:s3cret@127.0.0.1:{}", server.port());
    let input = sample(pki.dir.path());
    // Redis waits for more of what it takes for a command: the handshake
    // times out (after 1 s here).
    let cfg = tls_config_with(
        &pki,
        "plain.toml",
        "connect_timeout_ms = 1000\n",
        &format!("ca_file = {}\n", toml_path(&pki.ca)),
    );
    let (code, _, stderr) = replay(&cfg, &url, &input);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("rediss://:***@127.0.0.1:{}", server.port())),
        "the URL is named, its password hidden: {stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");
    assert!(
        stderr.contains("refused TLS") && stderr.contains("tls-port"),
        "the cause is named: {stderr}"
    );
    assert_eq!(ticks_in_redis(&server), 0);
}

#[test]
fn mutual_tls_writes_with_a_client_certificate_and_is_refused_without() {
    let pki = pki(true);
    let server = tls_redis(&pki);
    let url = server.tls_url().unwrap();
    let input = sample(pki.dir.path());

    let cfg = tls_config(
        &pki,
        "anon.toml",
        &format!("ca_file = {}\n", toml_path(&pki.ca)),
    );
    let (code, _, stderr) = replay(&cfg, &url, &input);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains(&url), "the URL is named: {stderr}");
    assert!(
        stderr.contains("wants a client certificate"),
        "the cause is named: {stderr}"
    );
    assert_eq!(ticks_in_redis(&server), 0);

    let cfg = tls_config(
        &pki,
        "mtls.toml",
        &format!(
            "ca_file = {}\ncert_file = {}\nkey_file = {}\n",
            toml_path(&pki.ca),
            toml_path(&pki.client_cert),
            toml_path(&pki.client_key)
        ),
    );
    let (code, stdout, stderr) = replay(&cfg, &url, &input);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(summary_value(&stdout, "ticks written"), 2);
    assert_eq!(ticks_in_redis(&server), 2);
}

#[test]
fn bad_tls_config_names_every_bad_field() {
    let pki = pki(false);
    let cfg = tls_config(
        &pki,
        "bad.toml",
        &format!(
            "ca_file = {}\ncert_file = {}\n",
            toml_path(&pki.dir.path().join("nope.crt")),
            toml_path(&pki.client_cert)
        ),
    );
    let input = sample(pki.dir.path());
    let (code, _, stderr) = replay(&cfg, "redis://127.0.0.1:1", &input);
    assert_eq!(code, Some(1), "{stderr}");
    for field in ["redis.tls", "redis.tls.ca_file", "redis.tls.key_file"] {
        assert!(
            stderr.contains(&format!("`{field}`")),
            "{field} not named in:\n{stderr}"
        );
    }
}
