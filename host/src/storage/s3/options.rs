//! The command line's description of an S3 store.

/// How `edgedav serve` reaches an S3 bucket.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct S3Options {
    /// Serve this S3 bucket instead of a local directory (`--root` is then
    /// ignored). Credentials come from the standard AWS chain
    /// (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, profile, IMDS…).
    #[arg(id = "s3_bucket", long = "s3-bucket", value_name = "NAME")]
    pub bucket: Option<String>,
    /// Serve only the keys below this prefix of the bucket.
    #[arg(
        id = "s3_prefix",
        long = "s3-prefix",
        value_name = "P",
        requires = "s3_bucket"
    )]
    pub prefix: Option<String>,
    /// Endpoint of an S3-compatible store, e.g. `http://127.0.0.1:3900`
    /// (default: AWS, or `AWS_ENDPOINT_URL`).
    #[arg(
        id = "s3_endpoint",
        long = "s3-endpoint",
        value_name = "URL",
        requires = "s3_bucket"
    )]
    pub endpoint: Option<String>,
    /// Region (default: from the AWS configuration, else us-east-1).
    #[arg(
        id = "s3_region",
        long = "s3-region",
        value_name = "R",
        requires = "s3_bucket"
    )]
    pub region: Option<String>,
    /// Use path-style addressing (ENDPOINT/BUCKET/KEY), which most
    /// S3-compatible stores need.
    #[arg(id = "s3_path_style", long = "s3-path-style", requires = "s3_bucket")]
    pub path_style: bool,
    /// Log every S3 request with the running count (for tests and
    /// benchmarks).
    #[arg(
        id = "s3_log_requests",
        long = "s3-log-requests",
        requires = "s3_bucket"
    )]
    pub log_requests: bool,
}
