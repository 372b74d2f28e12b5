//! `claribi-host bench` (filled in once the stand-in lands).
use claribi_host::errors::HostError;
pub async fn run(_iterations: usize) -> Result<(), HostError> {
    Err(HostError::Usage("bench is not available yet".into()))
}
