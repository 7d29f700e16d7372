//! `credential: workload_identity`: the federated token a CI system or Kubernetes writes to a file
//! (`AZURE_FEDERATED_TOKEN_FILE`, wire-facts A10), sent as the client assertion of a client-credentials
//! request. The file is re-read for every token: the platform rotates it (hourly on AKS), and a token
//! older than its `exp` is refused by Entra with AADSTS700024.

use std::path::PathBuf;

use super::Secret;

/// The file holding the federated token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederatedTokenFile {
    pub path: PathBuf,
}

impl FederatedTokenFile {
    /// The token the file holds now (surrounding whitespace dropped). Errors name the file only.
    pub fn read(&self) -> Result<Secret, String> {
        let text = std::fs::read_to_string(&self.path).map_err(|e| {
            format!(
                "cannot read the federated token file {}: {e}",
                self.path.display()
            )
        })?;
        let t = text.trim();
        if t.is_empty() {
            return Err(format!(
                "the federated token file {} is empty",
                self.path.display()
            ));
        }
        Ok(Secret::new(t))
    }
}
