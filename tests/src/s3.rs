//! A real S3-compatible server for the photo store's S3 backend: s3rver
//! (installed by `deploy/ensure-s3-test-server.sh`, which `make test` runs),
//! started per test on a free port with its own data directory and bucket.
//! It speaks the S3 REST API and refuses unknown access keys; it does not
//! verify version-4 signatures themselves (real S3 and MinIO do).

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::Context as _;

/// The credentials s3rver accepts.
pub const ACCESS_KEY_ID: &str = "S3RVER";
pub const SECRET_ACCESS_KEY: &str = "S3RVER";

/// A running s3rver; killed when dropped.
pub struct S3Server {
    pub endpoint: String,
    pub bucket: String,
    pub data_dir: PathBuf,
    child: Child,
}

fn s3rver_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("DISPATCH311_S3RVER") {
        return Ok(PathBuf::from(path));
    }
    let home = std::env::var_os("HOME").context("HOME is not set")?;
    let binary = PathBuf::from(home).join(".cache/dispatch311-tools/node_modules/.bin/s3rver");
    anyhow::ensure!(
        binary.exists(),
        "s3rver is missing at {}: run deploy/ensure-s3-test-server.sh (`make test` does)",
        binary.display()
    );
    Ok(binary)
}

impl S3Server {
    /// Starts s3rver with one empty bucket, `bucket`, and waits until it answers.
    pub async fn start(data_dir: PathBuf, bucket: &str) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&data_dir)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log = std::fs::File::create(data_dir.with_extension("log"))?;
        let child = Command::new(s3rver_binary()?)
            .args(["--directory"])
            .arg(&data_dir)
            .args(["--address", "127.0.0.1", "--port", &port.to_string()])
            .args(["--configure-bucket", bucket])
            .stdout(log.try_clone()?)
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .context("cannot start s3rver")?;
        let server = Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            bucket: bucket.to_string(),
            data_dir,
            child,
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "s3rver not listening after 30s: {}",
                std::fs::read_to_string(server.data_dir.with_extension("log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(server)
    }

    /// The environment that points a service's photo store at `prefix` in
    /// this server's bucket, with `access_key_id` as its key.
    pub fn photo_store_env(&self, prefix: &str, access_key_id: &str) -> Vec<(String, String)> {
        [
            (
                "DISPATCH311_PHOTO_STORE",
                format!("s3://{}/{prefix}", self.bucket),
            ),
            ("AWS_ENDPOINT", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", access_key_id.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY.into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
