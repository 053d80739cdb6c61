//! A resource's dead properties as one JSON object beside it (the sidecar
//! form of `edgedav_rules::props::sidecar`).

use super::*;

impl S3Backend {
    pub(super) async fn load_properties(&self, path: &str) -> Result<Option<Vec<Property>>> {
        let inner = &self.0;
        let output = match inner
            .client
            .get_object()
            .bucket(&inner.bucket)
            .key(self.props_key(path)?)
            .send()
            .await
        {
            Ok(output) => output,
            Err(e) => {
                let failure = failure("GetObject", e);
                return if failure.is_not_found() {
                    Ok(None)
                } else {
                    Err(failure.into_error())
                };
            }
        };
        let bytes = output
            .body
            .collect()
            .await
            .map_err(|e| Error::Io(format!("S3 GetObject body: {e}")))?
            .into_bytes();
        let properties = props::decode(&bytes)
            .map_err(|e| Error::Io(format!("corrupt property object for {path}: {e}")))?;
        Ok(Some(properties))
    }

    pub(super) async fn store_properties(
        &self,
        path: &str,
        properties: Vec<Property>,
    ) -> Result<()> {
        let key = self.props_key(path)?;
        if properties.is_empty() {
            let failed = self.delete_keys(vec![key]).await;
            return match failed.into_iter().next() {
                Some((_, error)) => Err(error),
                None => Ok(()),
            };
        }
        let body = props::encode(path, properties);
        let inner = &self.0;
        inner
            .client
            .put_object()
            .bucket(&inner.bucket)
            .key(key)
            .content_type("application/json")
            .content_length(body.len() as i64)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| failure("PutObject", e).into_error())?;
        Ok(())
    }

    /// Gives `to` the dead properties of `from` (removing those `to` had when
    /// `replacing` an existing resource).
    pub(super) async fn copy_properties(
        &self,
        from: &str,
        to: &str,
        replacing: bool,
    ) -> Result<()> {
        let (from_key, to_key) = (self.props_key(from)?, self.props_key(to)?);
        match self.copy_object(&from_key, &to_key, 0).await {
            Ok(()) => Ok(()),
            Err(Error::NotFound) if replacing => match self.delete_keys(vec![to_key]).await.pop() {
                Some((_, error)) => Err(error),
                None => Ok(()),
            },
            Err(Error::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    // ------------------------------------------------------------ trees
}
