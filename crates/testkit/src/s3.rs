//! An S3 endpoint over a folder ([`S3Server`], s3s-fs behind hyper on a loopback port), with
//! fixed credentials, that counts completed uploads per key so tests can prove a file was
//! uploaded exactly once.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;

/// The access key the server accepts.
pub const ACCESS_KEY: &str = "studio-test";
/// Its secret.
pub const SECRET_KEY: &str = "studio-test-secret";

/// An S3 endpoint over a folder, counting successful uploads (`PUT` of a whole object, or the
/// completion of a multipart upload) per key.
pub struct S3Server {
    /// `http://127.0.0.1:{port}`.
    pub endpoint: String,
    uploads: Arc<Mutex<HashMap<String, u32>>>,
    task: tokio::task::JoinHandle<()>,
}

impl S3Server {
    /// Serves the buckets under `root` (a folder per bucket) on a free loopback port.
    pub async fn start(root: &Path) -> S3Server {
        let fs = s3s_fs::FileSystem::new(root).expect("s3s-fs root");
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = builder.build();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let uploads = Arc::new(Mutex::new(HashMap::new()));
        let counts = uploads.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let (service, counts) = (service.clone(), counts.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let (service, counts) = (service.clone(), counts.clone());
                            let method = req.method().clone();
                            let path = req.uri().path().to_owned();
                            let query = req.uri().query().unwrap_or("").to_owned();
                            async move {
                                let response = hyper::service::Service::call(&service, req).await?;
                                let whole_put =
                                    method == hyper::Method::PUT && !query.contains("partNumber");
                                let completed =
                                    method == hyper::Method::POST && query.contains("uploadId");
                                if response.status().is_success() && (whole_put || completed) {
                                    *counts.lock().unwrap().entry(path).or_insert(0) += 1;
                                }
                                Ok::<_, s3s::HttpError>(response)
                            }
                        },
                    );
                    let _ = ConnBuilder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(socket), svc)
                        .await;
                });
            }
        });
        S3Server {
            endpoint: format!("http://{addr}"),
            uploads,
            task,
        }
    }

    /// Completed uploads of keys whose path ends with `suffix`, summed.
    pub fn uploads_ending_with(&self, suffix: &str) -> HashMap<String, u32> {
        self.uploads
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, _)| k.ends_with(suffix))
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}
